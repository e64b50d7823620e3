package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"mixmatch/app/config"
	"mixmatch/app/dbtest"
	"mixmatch/app/k2k"
	"mixmatch/app/keystone"
	"mixmatch/app/proxy"
	"mixmatch/app/store"
)

// renewingTokens hands out a new K2K token after each Forget, as the exchanger
// does once its cache no longer holds the refused one.
type renewingTokens struct {
	tokens
	forgotten atomic.Int32
}

func (r *renewingTokens) Token(ctx context.Context, sp *config.SP, u *keystone.Token, ut, project string) (k2k.Scoped, error) {
	s, err := r.tokens.Token(ctx, sp, u, ut, project)
	s.Token = fmt.Sprintf("%s-%d", s.Token, r.forgotten.Load())
	return s, err
}

func (r *renewingTokens) Forget(context.Context, *config.SP, string, string) { r.forgotten.Add(1) }

// refusing answers 401 to every token but the ones it accepts, and records the
// tokens it was sent.
type refusing struct {
	accept map[string]bool
	mu     sync.Mutex
	tokens []string
}

func (f *refusing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.tokens = append(f.tokens, r.Header.Get("X-Auth-Token"))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !f.accept[r.Header.Get("X-Auth-Token")] {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error": {"code": 401, "message": "The request you have made requires authentication."}}`)
		return
	}
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id": %q}`, imageID)
}

func (f *refusing) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tokens...)
}

func refusingSetup(t *testing.T, accept ...string) (http.Handler, *refusing, *renewingTokens) {
	sp := &refusing{accept: map[string]bool{}}
	for _, a := range accept {
		sp.accept[a] = true
	}
	remote := httptest.NewServer(sp)
	t.Cleanup(remote.Close)
	local := newBackend(t, "default")
	rt := &renewingTokens{}
	h, _ := newProxy(t, spConf(map[string]string{"default": local.server.URL, "remote1": remote.URL}), dbtest.SQLite(t),
		proxy.Deps{Auth: testAuth(), Tokens: rt, Logger: slog.New(slog.DiscardHandler)})
	return h, sp, rt
}

func TestARefusedK2KTokenIsForgottenAndRenewedOnce(t *testing.T) {
	h, sp, rt := refusingSetup(t, "k2k-token-remote1-1")
	rec, _ := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil, "MM-SERVICE-PROVIDER", "remote1")
	if rec.Code != 201 || rt.forgotten.Load() != 1 {
		t.Fatalf("%d %s, %d forgotten; want the call to go through with a new token", rec.Code, rec.Body, rt.forgotten.Load())
	}
	if got := sp.sent(); strings.Join(got, ",") != "k2k-token-remote1-0,k2k-token-remote1-1" {
		t.Fatalf("the SP got %v, want the refused token then a new one", got)
	}
}

func TestARefusedK2KTokenIsRenewedOnlyOnce(t *testing.T) {
	h, sp, rt := refusingSetup(t)
	rec, _ := serveWith(t, h, "DELETE", "/image/v2/images/"+imageID, nil, "MM-SERVICE-PROVIDER", "remote1")
	if rec.Code != 401 || len(sp.sent()) != 2 || rt.forgotten.Load() != 2 {
		t.Fatalf("%d after %d calls and %d forgotten, want the SP's 401 after 2 calls", rec.Code, len(sp.sent()), rt.forgotten.Load())
	}
}

// A call with a body cannot go again; its 401 reaches the client, and the token
// is forgotten so that the client's next try gets a new one.
func TestARefusedK2KTokenOnAnUploadIsForgotten(t *testing.T) {
	h, sp, rt := refusingSetup(t, "k2k-token-remote1-1")
	rec, _ := serveWith(t, h, "POST", "/image/v2/images", strings.NewReader(`{"name": "x"}`), "MM-SERVICE-PROVIDER", "remote1")
	if rec.Code != 401 || len(sp.sent()) != 1 || rt.forgotten.Load() != 1 {
		t.Fatalf("%d after %d calls and %d forgotten", rec.Code, len(sp.sent()), rt.forgotten.Load())
	}
	rec, _ = serveWith(t, h, "POST", "/image/v2/images", strings.NewReader(`{"name": "x"}`), "MM-SERVICE-PROVIDER", "remote1")
	if rec.Code != 201 {
		t.Fatalf("the next upload: %d %s", rec.Code, rec.Body)
	}
}

// countingAuth counts validations at the local Keystone.
type countingAuth struct {
	auth
	n atomic.Int32
}

func (c *countingAuth) Validate(ctx context.Context, token string) (*keystone.Token, error) {
	c.n.Add(1)
	return c.auth.Validate(ctx, token)
}

func TestAStaleMappingCostsOneValidation(t *testing.T) {
	s := newSetup(t, true)
	a := &countingAuth{auth: testAuth()}
	s.handler, s.store = newProxy(t, s.conf, dbtest.SQLite(t), proxy.Deps{Auth: a, Logger: slog.New(slog.DiscardHandler)})
	s.store.Upsert(context.Background(), store.Mapping{ResourceType: "images", ResourceID: imageID, ResourceSP: "remote1", ProjectID: "p"})
	s.backends["remote2"].has[imageKey] = true
	if rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil); rec.Code != 200 || a.n.Load() != 1 {
		t.Fatalf("%d after %d validations, want 200 after 1", rec.Code, a.n.Load())
	}
}

// A create answer is read for its resource's id only: an "id" beside Cinder's
// wrapper, or a wrapper that is not an object, records nothing wrong.
func TestCreateAnswersAreReadStrictly(t *testing.T) {
	for _, tc := range []struct{ answer, learned string }{
		{`{"id": "outer", "volume": {"id": "inner"}}`, "inner"},
		{`{"id": "outer", "volume": "not an object"}`, ""},
		{`{"volume": {"id": "inner", "volume": {"id": "deeper"}}}`, "inner"},
	} {
		sp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, tc.answer)
		}))
		h, st := newProxy(t, spConf(map[string]string{"default": sp.URL}), dbtest.SQLite(t),
			proxy.Deps{Auth: testAuth(), Logger: slog.New(slog.DiscardHandler)})
		rec, _ := serveWith(t, h, "POST", "/volume/v3/8a1e/volumes", strings.NewReader(`{"volume": {"size": 1}}`))
		sp.Close()
		if rec.Code != 202 || rec.Body.String() != tc.answer {
			t.Fatalf("%s: %d %s", tc.answer, rec.Code, rec.Body)
		}
		all, err := st.List(context.Background(), store.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range all {
			ids = append(ids, m.ResourceID)
		}
		if want := strings.Fields(tc.learned); fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Errorf("%s: learned %v, want %v", tc.answer, ids, want)
		}
	}
}

// Failures between mixmatch and the clouds answer the client with mixmatch's
// own words and the request id; the internal address stays in the log.
func TestGatewayErrorsNameNoInternalAddress(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	addr := gone.URL
	gone.Close()
	var logs syncBuffer
	h, _ := newProxy(t, spConf(map[string]string{"default": addr}), dbtest.SQLite(t),
		proxy.Deps{Auth: testAuth(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	rec, _ := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil, "X-Openstack-Request-Id", "req-12345678-aaaa")
	var body struct{ Error struct{ Message string } }
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 502 || strings.Contains(body.Error.Message, strings.TrimPrefix(addr, "http://")) ||
		!strings.Contains(body.Error.Message, "req-12345678-aaaa") {
		t.Fatalf("%d %q", rec.Code, body.Error.Message)
	}
	if !strings.Contains(logs.String(), strings.TrimPrefix(addr, "http://")) || !strings.Contains(logs.String(), "req-12345678-aaaa") {
		t.Fatalf("the log lacks the address or the request id: %s", logs.String())
	}
}
