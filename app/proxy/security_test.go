package proxy_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"mixmatch/app/fakecloud"
	"mixmatch/app/reqlog"
	"mixmatch/app/store"
)

// Where a call goes is decided by the configuration alone: no header, URL, query or
// body a client sends makes mixmatch contact another host.
func TestNoRequestChoosesWhereACallGoes(t *testing.T) {
	s := newSetup(t, withBroadcast(), withAggregation())
	s.backends["remote1"].Add(fakecloud.Images, "", imageID, nil)
	// A cloud in no configuration, which only requests name: were it contacted, its
	// answer would say "canary".
	c := newCloud(t, "canary")
	c.Add(fakecloud.Images, "", imageID, nil)
	cu, _ := url.Parse(c.URL())
	hostile := []struct {
		method, target, body string
		headers              []string
	}{
		{"GET", "/image/v2/images/" + imageID, "", []string{"Host", cu.Host}},
		{"GET", "/image/v2/images/" + imageID, "", []string{"X-Forwarded-Host", cu.Host, "Forwarded", "host=" + cu.Host,
			"X-Forwarded-Proto", "http", "X-Original-URL", c.URL(), "X-HTTP-Method-Override", "DELETE"}},
		{"GET", c.URL() + "/image/v2/images/" + imageID, "", nil},
		{"GET", "/image/v2/images/" + imageID, "", []string{"MM-SERVICE-PROVIDER", c.URL()}},
		{"GET", "/image/v2/images/" + imageID, "", []string{"MM-SERVICE-PROVIDER", cu.Host}},
		{"GET", "/image/v2/images/" + imageID, "", []string{"MM-PROXY-LIST", c.URL()}},
		{"GET", "/image/v2/images/" + imageID, "", []string{"MM-PROJECT-ID", "../../" + c.URL()}},
		{"GET", "/image/v2/images?marker=" + url.QueryEscape(c.URL()) + "&next=" + url.QueryEscape(c.URL()), "", nil},
		{"GET", "/image/v2/images/" + url.PathEscape("//"+cu.Host+"/x"), "", nil},
		{"GET", "//" + cu.Host + "/image/v2/images", "", nil},
		{"GET", "/image/v2/images/" + imageID + "/%2e%2e/%2e%2e/%2e%2e/identity/v3/users", "", nil},
		{"POST", "/image/v2/images", `{"name": "x", "self": "` + c.URL() + `", "locations": [{"url": "` +
			c.URL() + `/x", "metadata": {}}], "direct_url": "` + c.URL() + `"}`, nil},
		{"POST", "/volume/v3/8a1e/volumes", `{"volume": {"size": 1, "imageRef": "` + c.URL() +
			`", "backup_id": "` + c.URL() + `"}}`, []string{"MM-SERVICE-PROVIDER", "remote2"}},
		{"GET", "/image/v2/images/" + imageID, "", []string{"OpenStack-API-Version", c.URL(), "Referer", c.URL(),
			"Location", c.URL(), "X-Auth-Url", c.URL()}},
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
	if n := len(c.Received()); n != 0 {
		t.Fatalf("the canary was contacted %d times", n)
	}
	for name, b := range s.backends {
		bu, _ := url.Parse(b.URL())
		calls := b.Received()
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
	s := newSetup(t, withSPs("default", "remote1"), withSPOptionAt("remote1", "enabled_services", "volume"))
	h, remote1 := s.handler, s.backends["remote1"]
	remote1.Add(fakecloud.Images, "", imageID, nil)
	remote1.Add(fakecloud.Volumes, remoteProject("remote1"), imageID, nil)
	for _, name := range []string{"remote1", "Remote1", "remote1 ", "sp_remote1", "remote9", "default,remote1", "*"} {
		rec, _ := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil, "MM-SERVICE-PROVIDER", name)
		wantJSONError(t, "MM-SERVICE-PROVIDER "+name, rec, http.StatusBadRequest)
	}
	if got := remote1.Received(); len(got) != 0 {
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
	s.backends["remote1"].Add(fakecloud.Images, "", imageID, nil)
	s.backends["remote2"].Add(fakecloud.Images, "", "5b1c7a7e00004c5d9e2f1a2b3c4d5e6f", nil)
	s.store.Upsert(ctx, store.Mapping{ResourceType: "volumes", ResourceID: imageID, ResourceSP: "remote2", ProjectID: "feed"})
	s.backends["remote2"].Add(fakecloud.Volumes, "feed", imageID, nil)
	extra := []string{"X-Service-Token", localToken, "X-Subject-Token", localToken}
	for _, c := range []struct{ method, path, body, sp string }{
		{"GET", "/image/v2/images/" + imageID, "", ""},
		{"GET", "/image/v2/images/5b1c7a7e00004c5d9e2f1a2b3c4d5e6f", "", ""},
		{"GET", "/volume/v3/8a1e/volumes/" + imageID, "", ""},
		{"GET", "/image/v2/images", "", ""},
		{"GET", "/volume/v3/8a1e/volumes/detail", "", ""},
		{"POST", "/image/v2/images", `{"name": "x"}`, "remote1"},
		{"POST", "/volume/v3/8a1e/volumes", `{"volume": {"size": 1}}`, "remote2"},
		{"PUT", "/image/v2/images/" + imageID + "/file", "data", ""},
		{"DELETE", "/image/v2/images/" + imageID, "", ""},
		{"GET", "/image/v2/images/0e4d8e4a11114c5d9e2f1a2b3c4d5e6f", "", ""}, // found nowhere
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
	s := newSetup(t, withBroadcast(), withAggregation())
	securityCalls(t, s)
	for _, name := range []string{"remote1", "remote2"} {
		calls := s.backends[name].Received()
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
	s := newSetup(t, withBroadcast(), withAggregation(), withLogger(logger))
	s.backends["remote1"].FailNext(3, http.StatusServiceUnavailable) // errors are logged with their detail
	var answers strings.Builder
	s.handler = reqlog.Middleware(logger, nil, answerTap{s.handler, &answers})
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
	s := newSetup(t)
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
