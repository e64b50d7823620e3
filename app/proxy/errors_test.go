package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"mixmatch/app/config"
	"mixmatch/app/fakecloud"
	"mixmatch/app/k2k"
	"mixmatch/app/keystone"
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

// refusingSetup puts remote1 behind a token check that honours only accept;
// sent reports the tokens remote1 received.
func refusingSetup(t *testing.T, accept ...string) (*setup, func() []string, *renewingTokens) {
	ok := map[string]bool{}
	for _, a := range accept {
		ok[a] = true
	}
	rt := &renewingTokens{}
	s := newSetup(t, withSPs("default", "remote1"), withTokens(rt), withTokenCheck("remote1", func(token string) (string, bool) {
		return remoteProject("remote1"), ok[token]
	}))
	s.backends["remote1"].Add(fakecloud.Images, remoteProject("remote1"), imageID, nil)
	sent := func() []string {
		var out []string
		for _, c := range s.backends["remote1"].Received() {
			out = append(out, c.Token)
		}
		return out
	}
	return s, sent, rt
}

func TestARefusedK2KTokenIsForgottenAndRenewedOnce(t *testing.T) {
	s, sent, rt := refusingSetup(t, "k2k-token-remote1-1")
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil, "MM-SERVICE-PROVIDER", "remote1")
	if rec.Code != 200 || rt.forgotten.Load() != 1 {
		t.Fatalf("%d %s, %d forgotten; want the call to go through with a new token", rec.Code, rec.Body, rt.forgotten.Load())
	}
	if got := sent(); strings.Join(got, ",") != "k2k-token-remote1-0,k2k-token-remote1-1" {
		t.Fatalf("the SP got %v, want the refused token then a new one", got)
	}
}

func TestARefusedK2KTokenIsRenewedOnlyOnce(t *testing.T) {
	s, sent, rt := refusingSetup(t)
	rec := s.do(t, "DELETE", "/image/v2/images/"+imageID, nil, "MM-SERVICE-PROVIDER", "remote1")
	if rec.Code != 401 || len(sent()) != 2 || rt.forgotten.Load() != 2 {
		t.Fatalf("%d after %d calls and %d forgotten, want the SP's 401 after 2 calls", rec.Code, len(sent()), rt.forgotten.Load())
	}
}

// A call with a body cannot go again; its 401 reaches the client, and the token
// is forgotten so that the client's next try gets a new one.
func TestARefusedK2KTokenOnAnUploadIsForgotten(t *testing.T) {
	s, sent, rt := refusingSetup(t, "k2k-token-remote1-1")
	rec := s.do(t, "POST", "/image/v2/images", strings.NewReader(`{"name": "x"}`), "MM-SERVICE-PROVIDER", "remote1",
		"Content-Type", "application/json")
	if rec.Code != 401 || len(sent()) != 1 || rt.forgotten.Load() != 1 {
		t.Fatalf("%d after %d calls and %d forgotten", rec.Code, len(sent()), rt.forgotten.Load())
	}
	rec = s.do(t, "POST", "/image/v2/images", strings.NewReader(`{"name": "x"}`), "MM-SERVICE-PROVIDER", "remote1",
		"Content-Type", "application/json")
	if rec.Code != 201 {
		t.Fatalf("the next upload: %d %s", rec.Code, rec.Body)
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
		s := newSetup(t, withSPs("default"), withEndpoint("default", sp.URL))
		rec := s.do(t, "POST", "/volume/v3/8a1e/volumes", strings.NewReader(`{"volume": {"size": 1}}`))
		sp.Close()
		if rec.Code != 202 || rec.Body.String() != tc.answer {
			t.Fatalf("%s: %d %s", tc.answer, rec.Code, rec.Body)
		}
		all, err := s.store.List(context.Background(), store.Filter{})
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
	s := newSetup(t, withSPs("default"), withEndpoint("default", addr), withLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil, "X-Openstack-Request-Id", "req-12345678-aaaa")
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
