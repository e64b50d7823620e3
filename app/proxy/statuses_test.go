package proxy_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"mixmatch/app/fakecloud"
	"mixmatch/app/proxy"
)

// Glance and Cinder route no collection with a trailing slash (404): such a call is
// no list to aggregate, and goes as written for the cloud to answer.
func TestTrailingSlashIsTheServicesToJudge(t *testing.T) {
	s := newAggregatingSetup(t)
	for _, path := range []string{"/image/v2/images/", "/volume/v3/8a1e/volumes/", "/volume/v3/8a1e/volumes/detail/"} {
		rec := s.do(t, "GET", path, nil)
		got := s.backends["default"].Received()
		if rec.Code != 404 || strings.Contains(rec.Body.String(), "default0") || got[len(got)-1].Path != strings.TrimPrefix(path, "/"+strings.Split(path, "/")[1]) {
			t.Errorf("GET %s: %d %s, the cloud got %s", path, rec.Code, rec.Body, got[len(got)-1].Path)
		}
	}
	for _, remote := range []string{"remote1", "remote2"} {
		if n := len(s.backends[remote].Received()); n != 0 {
			t.Fatalf("%s was asked %d times", remote, n)
		}
	}
	// The services' roots are for version discovery, with or without the slash.
	for _, path := range []string{"/image/", "/volume/", "/image", "/volume"} {
		if rec := s.do(t, "GET", path, nil); rec.Code != 300 || !strings.Contains(rec.Body.String(), `"CURRENT"`) {
			t.Errorf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
	}
}

// The proxy refuses what the router in front of it refuses, whoever calls it.
func TestMalformedPathsAre400(t *testing.T) {
	s := newSetup(t, withBroadcast())
	for _, path := range []string{"/image/v2/images/" + imageID + "/../" + imageID, "/image//v2/images", "/image/v2/./images",
		"/image/v2/images/" + imageID + "/tags/a%2Fb", "/volume/v3/8a1e/volumes/%2e%2e"} {
		wantJSONError(t, path, s.do(t, "GET", path, nil), 400)
	}
	for name, b := range s.backends {
		if n := len(b.Received()); n != 0 {
			t.Fatalf("%s was asked %d times", name, n)
		}
	}
}

// A service no SP enables is as absent as one mixmatch does not know.
func TestAServiceNoSPOffersIsA404(t *testing.T) {
	for _, s := range []*setup{newAggregatingSetup(t), newSetup(t, withBroadcast())} {
		for _, path := range []string{"/network/v2.0/networks", "/network/v2.0/networks/" + imageID, "/network", "/network/v2.0"} {
			wantJSONError(t, path, s.do(t, "GET", path, nil), 404)
		}
		for name, b := range s.backends {
			if n := len(b.Received()); n != 0 {
				t.Fatalf("%s was asked %d times", name, n)
			}
		}
	}
}

// A list the clouds refuse as written is their refusal, the first by precedence:
// the query is wrong for every cloud, so a list without one would hide it, and
// an empty 200 (or a 502) would lie about it.
func TestAListTheCloudsRefuseIsTheirAnswer(t *testing.T) {
	s := newAggregatingSetup(t)
	for _, tc := range []struct {
		path   string
		status int
		says   string
	}{
		{"/image/v2/images?visibility=bogus", 400, "Invalid visibility value: bogus"},
		{"/image/v2/images?member_status=maybe&limit=2", 400, "Invalid status: maybe"},
		{"/image/v9/images", 404, "The resource could not be found."},
		{"/volume/v3/8a1e/volumes/detail?colour=red", 400, "Invalid filters colour are found in query options."},
		{"/volume/v3/8a1e/snapshots?sort_key=bootable", 400, "Invalid input received: Invalid sort key"},
	} {
		rec := s.do(t, "GET", tc.path, nil)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.says) ||
			rec.Header().Get(proxy.SkippedHeader) != "" || rec.Header().Get("X-Openstack-Request-Id") != "req-default" {
			t.Errorf("GET %s: %d %v %s, want the local cloud's %d", tc.path, rec.Code, rec.Header(), rec.Body, tc.status)
		}
	}

	// One cloud's refusal is everyone's; the local cloud's comes first.
	s.backends["remote2"].FailNext(1, http.StatusConflict)
	rec := s.do(t, "GET", "/image/v2/images", nil)
	if rec.Code != 409 || !strings.Contains(rec.Body.String(), "fault switch") || rec.Header().Get("X-Openstack-Request-Id") != "req-remote2" {
		t.Fatalf("remote2 refused: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	s.backends["default"].FailNext(1, http.StatusForbidden)
	s.backends["remote1"].FailNext(1, http.StatusConflict)
	if rec := s.do(t, "GET", "/image/v2/images", nil); rec.Code != 403 || rec.Header().Get("X-Openstack-Request-Id") != "req-default" {
		t.Fatalf("default and remote1 refused: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	s.backends["default"].FailNext(1, http.StatusInternalServerError)
	s.backends["remote1"].FailNext(1, http.StatusBadRequest)
	if rec := s.do(t, "GET", "/image/v2/images", nil); rec.Code != 400 || rec.Header().Get("X-Openstack-Request-Id") != "req-remote1" {
		t.Fatalf("default failed, remote1 refused: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}

	// A refused K2K token, a timeout and throttling are the SP failing, not the query.
	for _, status := range []int{http.StatusUnauthorized, http.StatusRequestTimeout, http.StatusTooManyRequests} {
		s.backends["remote1"].FailNext(1, status)
		rec := s.do(t, "GET", "/image/v2/images", nil)
		if rec.Code != 200 || rec.Header().Get(proxy.SkippedHeader) != "remote1" || strings.Count(rec.Body.String(), `"id"`) != 6 {
			t.Errorf("remote1 answered %d: %d %v %s", status, rec.Code, rec.Header(), rec.Body)
		}
	}
}

// When every cloud refuses the call itself, the client reads why: the first refusal
// by precedence, status and body, as the cloud sent it.
func TestABroadcastEveryCloudRefusesIsTheirAnswer(t *testing.T) {
	s := newSetup(t, withBroadcast())
	for _, name := range []string{"default", "remote1", "remote2"} {
		s.backends[name].FailNext(1, http.StatusForbidden)
		s.backends[name].SetHeader("Set-Cookie", "kept=no")
	}
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 403 || !strings.Contains(rec.Body.String(), "fault switch") || rec.Header().Get("X-Openstack-Request-Id") != "req-default" ||
		rec.Header().Get("Set-Cookie") != "" {
		t.Fatalf("all 403: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	s.backends["default"].FailNext(1, http.StatusConflict)
	s.backends["remote1"].FailNext(1, http.StatusBadRequest)
	s.backends["remote2"].FailNext(1, http.StatusBadRequest)
	if rec := s.do(t, "DELETE", "/image/v2/images/"+imageID, nil); rec.Code != 409 || rec.Header().Get("X-Openstack-Request-Id") != "req-default" {
		t.Fatalf("409, 400, 400: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	// Not found here and refused there is no answer about the call itself.
	s.backends["remote1"].FailNext(1, http.StatusBadRequest)
	wantJSONError(t, "404, 400, 404", s.do(t, "GET", "/image/v2/images/"+imageID, nil), 500)
	if _, err := s.store.Find(context.Background(), "images", imageID); err == nil {
		t.Fatal("a refusal was learned as a hit")
	}
}

// The probe of a broadcast is the call itself when the call is a plain GET of the
// member: its answer is the client's, and the winning SP is asked once.
func TestABroadcastHitIsAnsweredFromTheProbe(t *testing.T) {
	s := newSetup(t, withBroadcast())
	b := s.backends["remote2"]
	b.Add(fakecloud.Images, "", imageID, map[string]any{"name": "cirros"})
	b.SetHeader("Set-Cookie", "backend=secret")
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"name": "cirros"`) || rec.Header().Get("Content-Type") != "application/json" ||
		rec.Header().Get("X-Openstack-Request-Id") != "req-remote2" || rec.Header().Get("Set-Cookie") != "" {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if got := b.Received(); len(got) != 1 || got[0].Token != "k2k-token-remote2" {
		t.Fatalf("remote2 was asked %d times: %+v", len(got), got)
	}
	if m, err := s.store.Find(context.Background(), "images", imageID); err != nil || m.ResourceSP != "remote2" {
		t.Fatalf("learned %+v, %v", m, err)
	}
}

// Only the very GET the probe made: a ranged, conditional or filtered GET, another
// call on the member, or a document too large to keep goes to the winner again.
func TestABroadcastHitIsAskedAgainWhenTheProbeIsNotTheCall(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	for _, tc := range []struct {
		name, method, path string
		headers            []string
		props              map[string]any
	}{
		{"conditional", "GET", "", []string{"If-None-Match", `"e1"`}, nil},
		{"filtered", "GET", "?fields=id", nil, nil},
		{"sub-resource", "GET", "/members", nil, nil},
		{"another method", "DELETE", "", nil, nil},
		{"too large", "GET", "", nil, map[string]any{"description": big}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, withBroadcast())
			b := s.backends["remote2"]
			b.Add(fakecloud.Images, "", imageID, tc.props)
			rec := s.do(t, tc.method, "/image/v2/images/"+imageID+tc.path, nil, tc.headers...)
			got := b.Received()
			if rec.Code/100 != 2 || len(got) != 2 || got[1].Method != tc.method {
				t.Fatalf("%d (%d bytes); remote2 got %d calls", rec.Code, rec.Body.Len(), len(got))
			}
			if tc.props != nil && !strings.Contains(rec.Body.String(), big) {
				t.Fatal("the large document was cut")
			}
		})
	}
}

// Definitions every cloud has its own of are the local cloud's, never searched for.
func TestDefinitionsAreNotBroadcast(t *testing.T) {
	s := newSetup(t, withBroadcast())
	for _, path := range []string{"/volume/v3/8a1e/types/" + imageID, "/volume/v3/8a1e/qos-specs/" + imageID,
		"/volume/v3/8a1e/messages/" + imageID, "/image/v2/tasks/" + imageID} {
		s.do(t, "GET", path, nil)
		got := s.backends["default"].Received()
		if want := strings.TrimPrefix(path, "/"+strings.Split(path, "/")[1]); len(got) == 0 || got[len(got)-1].Path != want {
			t.Fatalf("GET %s: the local cloud got %+v", path, got)
		}
	}
	for _, name := range []string{"remote1", "remote2"} {
		if got := s.backends[name].Received(); len(got) != 0 {
			t.Fatalf("%s was asked: %+v", name, got)
		}
	}
}
