package proxy_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"mixmatch/app/reqlog"
	"mixmatch/app/store"
)

// canary is a server no call may reach: it is in no configuration, and only
// requests name it.
type canary struct {
	server *httptest.Server
	hits   atomic.Int32
}

func newCanary(t *testing.T) *canary {
	c := &canary{}
	c.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		w.Write([]byte(`{"images": [], "id": "canary"}`))
	}))
	t.Cleanup(c.server.Close)
	return c
}

// Where a call goes is decided by the configuration alone: no header, URL, query or
// body a client sends makes mixmatch contact another host.
func TestNoRequestChoosesWhereACallGoes(t *testing.T) {
	s := newSetup(t, true, "aggregation = true")
	s.backends["remote1"].has[imageKey] = true
	c := newCanary(t)
	cu, _ := url.Parse(c.server.URL)
	hostile := []struct {
		method, target, body string
		headers              []string
	}{
		{"GET", "/image/v2/images/" + imageID, "", []string{"Host", cu.Host}},
		{"GET", "/image/v2/images/" + imageID, "", []string{"X-Forwarded-Host", cu.Host, "Forwarded", "host=" + cu.Host,
			"X-Forwarded-Proto", "http", "X-Original-URL", c.server.URL, "X-HTTP-Method-Override", "DELETE"}},
		{"GET", c.server.URL + "/image/v2/images/" + imageID, "", nil},
		{"GET", "/image/v2/images/" + imageID, "", []string{"MM-SERVICE-PROVIDER", c.server.URL}},
		{"GET", "/image/v2/images/" + imageID, "", []string{"MM-SERVICE-PROVIDER", cu.Host}},
		{"GET", "/image/v2/images/" + imageID, "", []string{"MM-PROXY-LIST", c.server.URL}},
		{"GET", "/image/v2/images/" + imageID, "", []string{"MM-PROJECT-ID", "../../" + c.server.URL}},
		{"GET", "/image/v2/images?marker=" + url.QueryEscape(c.server.URL) + "&next=" + url.QueryEscape(c.server.URL), "", nil},
		{"GET", "/image/v2/images/" + url.PathEscape("//"+cu.Host+"/x"), "", nil},
		{"GET", "//" + cu.Host + "/image/v2/images", "", nil},
		{"GET", "/image/v2/images/" + imageID + "/%2e%2e/%2e%2e/%2e%2e/identity/v3/users", "", nil},
		{"POST", "/image/v2/images", `{"name": "x", "self": "` + c.server.URL + `", "locations": [{"url": "` +
			c.server.URL + `/x", "metadata": {}}], "direct_url": "` + c.server.URL + `"}`, nil},
		{"POST", "/volume/v3/8a1e/volumes", `{"volume": {"size": 1, "imageRef": "` + c.server.URL +
			`", "backup_id": "` + c.server.URL + `"}}`, []string{"MM-SERVICE-PROVIDER", "remote2"}},
		{"GET", "/image/v2/images/" + imageID, "", []string{"OpenStack-API-Version", c.server.URL, "Referer", c.server.URL,
			"Location", c.server.URL, "X-Auth-Url", c.server.URL}},
	}
	for _, h := range hostile {
		var body *strings.Reader
		if h.body != "" {
			body = strings.NewReader(h.body)
		} else {
			body = strings.NewReader("")
		}
		req := httptest.NewRequest(h.method, h.target, body)
		req.Header.Set("X-Auth-Token", localToken)
		for i := 0; i+1 < len(h.headers); i += 2 {
			if h.headers[i] == "Host" {
				req.Host = h.headers[i+1]
			}
			req.Header.Set(h.headers[i], h.headers[i+1])
		}
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, req)
		if strings.Contains(rec.Body.String(), `"canary"`) {
			t.Errorf("%s %s %v: answered by the canary", h.method, h.target, h.headers)
		}
	}
	if n := c.hits.Load(); n != 0 {
		t.Fatalf("the canary was contacted %d times", n)
	}
	for name, b := range s.backends {
		bu, _ := url.Parse(b.server.URL)
		calls := b.received()
		for _, c := range calls {
			if c.Host != bu.Host {
				t.Errorf("%s was called with Host %q", name, c.Host)
			}
			if strings.Contains(c.Path, "..") || strings.Contains(c.Path, "identity") {
				t.Errorf("%s was called at %s", name, c.Path)
			}
			for _, h := range []string{"X-Forwarded-Host", "Forwarded", "X-Forwarded-Proto", "X-Original-Url", "X-Http-Method-Override", "Referer"} {
				if v := c.Header.Get(h); v != "" {
					t.Errorf("%s received %s: %s", name, h, v)
				}
			}
		}
		if len(calls) == 0 {
			t.Errorf("%s was never called: the requests were refused before routing, which proves nothing", name)
		}
	}
}

// MM-SERVICE-PROVIDER names a configured SP enabled for the service, nothing else:
// a disabled SP gets no call.
func TestServiceProviderHeaderNamesEnabledSPsOnly(t *testing.T) {
	local, remote1 := newBackend(t, "default"), newBackend(t, "remote1")
	remote1.has[imageKey] = true
	conf := spConf(map[string]string{"default": local.server.URL, "remote1": remote1.server.URL})
	conf = strings.Replace(conf, "[sp_remote1]\n", "[sp_remote1]\nenabled_services = volume\n", 1)
	h, _ := newHandler(t, conf)
	for _, name := range []string{"remote1", "Remote1", "remote1 ", "sp_remote1", "remote9", "default,remote1", "*"} {
		rec, _ := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil, "MM-SERVICE-PROVIDER", name)
		wantJSONError(t, "MM-SERVICE-PROVIDER "+name, rec, http.StatusBadRequest)
	}
	if got := remote1.received(); len(got) != 0 {
		t.Fatalf("the SP with image disabled was called: %+v", got)
	}
	if rec, _ := serveWith(t, h, "GET", "/volume/v3/8a1e/volumes/"+imageID, nil, "MM-SERVICE-PROVIDER", "remote1"); rec.Code != 200 {
		t.Fatalf("volume at remote1, where volume is enabled: %d %s", rec.Code, rec.Body)
	}
}

// securityCalls exercise every way a call reaches an SP: mapped, named by header,
// found by broadcast, aggregated, created, uploaded, deleted, and the failures.
func securityCalls(t *testing.T, s *setup) {
	ctx := context.Background()
	s.backends["remote1"].has[imageKey] = true
	s.backends["remote2"].has["5b1c7a7e00004c5d9e2f1a2b3c4d5e6f"] = true
	s.store.Upsert(ctx, store.Mapping{ResourceType: "volumes", ResourceID: imageID, ResourceSP: "remote2", ProjectID: "feed"})
	s.backends["remote2"].has[imageKey] = true
	extra := []string{"X-Service-Token", localToken, "X-Subject-Token", localToken}
	for _, c := range []struct{ method, path, body, sp string }{
		{"GET", "/image/v2/images/" + imageID, "", ""},
		{"GET", "/image/v2/images/5b1c7a7e-0000-4c5d-9e2f-1a2b3c4d5e6f", "", ""},
		{"GET", "/volume/v3/8a1e/volumes/" + imageID, "", ""},
		{"GET", "/image/v2/images", "", ""},
		{"GET", "/volume/v3/8a1e/volumes/detail", "", ""},
		{"POST", "/image/v2/images", `{"name": "x"}`, "remote1"},
		{"POST", "/volume/v3/8a1e/volumes", `{"volume": {"size": 1}}`, "remote2"},
		{"PUT", "/image/v2/images/" + imageID + "/file", "data", ""},
		{"DELETE", "/image/v2/images/" + imageID, "", ""},
		{"GET", "/image/v2/images/0e4d8e4a-1111-4c5d-9e2f-1a2b3c4d5e6f", "", ""}, // found nowhere
	} {
		headers := append([]string{"X-Auth-Token", localToken}, extra...)
		if c.sp != "" {
			headers = append(headers, "MM-SERVICE-PROVIDER", c.sp)
		}
		s.do(t, c.method, c.path, strings.NewReader(c.body), headers...)
	}
}

// The user's local token authenticates the user at the IdP and goes to the local
// cloud; a remote SP only ever sees the token K2K got there.
func TestLocalTokenNeverReachesARemoteSP(t *testing.T) {
	s := newSetup(t, true, "aggregation = true")
	securityCalls(t, s)
	for _, name := range []string{"remote1", "remote2"} {
		calls := s.backends[name].received()
		if len(calls) == 0 {
			t.Fatalf("%s was never called: the test proves nothing", name)
		}
		for _, c := range calls {
			for k, vs := range c.Header {
				for _, v := range vs {
					if strings.Contains(v, localToken) {
						t.Errorf("%s received the local token in %s (%s %s)", name, k, c.Method, c.Path)
					}
				}
			}
			if c.Token != "k2k-token-"+name {
				t.Errorf("%s received X-Auth-Token %q", name, c.Token)
			}
		}
	}
}

// No token, local or K2K, appears in a log line (debug included) or an answer.
func TestNoTokenInLogsOrAnswers(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := newSetup(t, true, "aggregation = true")
	s.backends["remote1"].failures = 3 // errors are logged with their detail
	user := testAuth()[localToken]
	h, st := newHandlerWith(t, spConf(map[string]string{"default": s.backends["default"].server.URL,
		"remote1": s.backends["remote1"].server.URL, "remote2": s.backends["remote2"].server.URL},
		"search_by_broadcast = true", "aggregation = true"), auth{localToken: user}, logger)
	var answers strings.Builder
	s.handler, s.store = reqlog.Middleware(logger, nil, answerTap{h, &answers}), st
	securityCalls(t, s)
	s.do(t, "GET", "/image/v2/images/"+imageID, nil, "X-Auth-Token", "not-a-valid-token")
	if strings.Count(logs.String(), "msg=request ") < 10 {
		t.Fatalf("nothing was logged: the test proves nothing:\n%s", logs.String())
	}
	for _, secret := range []string{localToken, "k2k-token-", "not-a-valid-token"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a log line holds %q:\n%s", secret, logs.String())
		}
		if strings.Contains(answers.String(), secret) {
			t.Errorf("an answer holds %q:\n%s", secret, answers.String())
		}
	}
}

// answerTap keeps every answer's headers and body.
type answerTap struct {
	h   http.Handler
	out *strings.Builder
}

func (a answerTap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, r)
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
		a.out.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
	a.out.Write(rec.Body.Bytes())
}

// Ids from requests and notifications are stored as data: a hostile one is kept as
// it came and harms no other row.
func TestHostileIDsAreStoredLiterally(t *testing.T) {
	s := newSetup(t, false)
	ctx := context.Background()
	if err := s.store.Upsert(ctx, store.Mapping{ResourceType: "images", ResourceID: imageID, ResourceSP: "remote1", ProjectID: "p"}); err != nil {
		t.Fatal(err)
	}
	hostile := `x'); DELETE FROM resource_mapping; --`
	err := s.store.Upsert(ctx, store.Mapping{ResourceType: "images", ResourceID: hostile, ResourceSP: "remote2", ProjectID: "p' OR '1'='1"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.store.Find(ctx, "images", hostile)
	// Ids are kept as mixmatch normalises every id (lower case, no dashes), no more.
	if err != nil || m.ResourceID != store.NormalizeID(hostile) || m.ResourceSP != "remote2" || m.ProjectID != store.NormalizeID("p' OR '1'='1") {
		t.Fatalf("the hostile row: %+v %v", m, err)
	}
	if m, err := s.store.Find(ctx, "images", imageID); err != nil || m.ResourceSP != "remote1" {
		t.Fatalf("the other row: %+v %v", m, err)
	}
	if rows, _ := s.store.List(ctx, store.Filter{Project: "p' OR '1'='1"}); len(rows) != 1 {
		t.Fatalf("a filter on the hostile project matched %d rows", len(rows))
	}
}
