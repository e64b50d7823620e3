package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"mixmatch/app/config"
	"mixmatch/app/keystone"
)

// hugePage answers every list with an endless stream of tiny images, and counts
// what it managed to send before the reader hung up.
type hugePage struct{ sent atomic.Int64 }

func (h *hugePage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	n, _ := fmt.Fprint(w, `{"images": [`)
	h.sent.Add(int64(n))
	for i := 0; i < 1_000_000; i++ {
		n, err := fmt.Fprintf(w, `{"id": "%032x", "created_at": "2020-01-01T00:00:00Z"},`, i)
		h.sent.Add(int64(n))
		if err != nil {
			return
		}
	}
	fmt.Fprint(w, `{}]}`)
}

// A hostile SP's page is read only as far as the page asked needs.
func TestAHugeListPageIsReadOnlyAsFarAsNeeded(t *testing.T) {
	hp := &hugePage{}
	srv := httptest.NewServer(hp)
	defer srv.Close()
	s := newSetup(t, withAggregation(), withSPs("default", "remote1"), withEndpoint("remote1", srv.URL))
	rec := s.do(t, "GET", "/image/v2/images?limit=5", nil)
	var body struct{ Images []json.RawMessage }
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &body) != nil || len(body.Images) != 5 {
		t.Fatalf("%d %.300s", rec.Code, rec.Body)
	}
	srv.CloseClientConnections()
	if sent := hp.sent.Load(); sent > 4<<20 {
		t.Fatalf("the SP sent %d bytes for a page of five", sent)
	}
}

// One item larger than a page's budget makes the page unreadable: that SP is
// skipped, not decoded.
func TestAnOversizedListPageIsSkipped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"images": [{"id": "x", "pad": "%s"}]}`, strings.Repeat("a", 1<<20))
	}))
	defer srv.Close()
	s := newSetup(t, withAggregation(), withSPs("default", "remote1"), withEndpoint("remote1", srv.URL))
	rec := s.do(t, "GET", "/image/v2/images?limit=1", nil)
	if rec.Code != 200 || rec.Header().Get("MM-Skipped-Service-Providers") != "remote1" {
		t.Fatalf("%d %v %.300s", rec.Code, rec.Header(), rec.Body)
	}
}

// manyProjects lists thousands of projects for every user.
type manyProjects struct{ tokens }

func (manyProjects) Projects(context.Context, *config.SP, *keystone.Token, string) ([]keystone.Project, error) {
	out := make([]keystone.Project, 5000)
	for i := range out {
		out[i] = keystone.Project{ID: fmt.Sprintf("%08x", i), Enabled: true}
	}
	return out, nil
}

// A user's many projects at an SP cost at most max_projects_per_sp probes there.
func TestProjectsAskedPerSPAreBounded(t *testing.T) {
	s := newSetup(t, withBroadcast(), withSPs("default", "remote1"), withTokens(manyProjects{}),
		withOption("max_projects_per_sp", "7"))
	if rec := s.do(t, "GET", "/image/v2/images/0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f", nil); rec.Code != 404 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if n := len(s.backends["remote1"].Received()); n != 7 {
		t.Fatalf("%d probes at remote1, want 7", n)
	}
}

// A plain marker is an id: one that is not, such as a path, never reaches a cloud.
func TestAPlainMarkerMustBeAnID(t *testing.T) {
	s := newSetup(t, withAggregation())
	for _, marker := range []string{"../../../identity/v3/users/admin", "a/b", "%2e%2e", ".", "x y"} {
		rec := s.do(t, "GET", "/image/v2/images?marker="+url.QueryEscape(marker), nil)
		wantJSONError(t, marker, rec, 400)
	}
	for name, b := range s.backends {
		if got := b.Received(); len(got) != 0 {
			t.Fatalf("%s was called: %+v", name, got)
		}
	}
}
