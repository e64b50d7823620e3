package proxy_test

import (
	"strings"
	"testing"
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
