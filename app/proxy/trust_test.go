package proxy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"mixmatch/app/fakecloud"
	"mixmatch/app/metrics"
	"mixmatch/app/store"
)

const victimID = "7a1e2b3c-4d5e-4f60-8a1b-2c3d4e5f6071"

func heldBy(t *testing.T, s *setup, id string) string {
	t.Helper()
	m, err := s.store.Find(context.Background(), "images", id)
	if err != nil {
		return ""
	}
	return m.ResourceSP
}

// Glance takes a client's id on create. A user who creates an image with the id
// of another's, here or at another SP, gets their image, and the shared row still
// sends everyone else to the victim's.
func TestAUserCannotRepointAnImageByChoosingItsID(t *testing.T) {
	m := metrics.New()
	s := newSetup(t, withMetrics(m))
	ctx := context.Background()
	s.backends["remote1"].Add(fakecloud.Images, "", victimID, nil)
	if err := s.store.Upsert(ctx, store.Mapping{ResourceType: "images", ResourceID: victimID, ResourceSP: "remote1", ProjectID: "p"}); err != nil {
		t.Fatal(err)
	}
	for _, sp := range []string{"", "remote2"} {
		rec := s.do(t, "POST", "/image/v2/images", strings.NewReader(`{"id": "`+victimID+`", "name": "evil"}`),
			"Content-Type", "application/json", "MM-SERVICE-PROVIDER", sp)
		if rec.Code != 201 {
			t.Fatalf("create at %q: %d %s", sp, rec.Code, rec.Body)
		}
		if got := heldBy(t, s, victimID); got != "remote1" {
			t.Fatalf("after a create at %q the row names %q", sp, got)
		}
	}
	if got := testutil.ToFloat64(m.Conflicts.WithLabelValues("create")); got != 2 {
		t.Fatalf("conflicts counted: %v", got)
	}
	if rec := s.do(t, "GET", "/image/v2/images/"+victimID, nil); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote1"`) {
		t.Fatalf("the victim's image: %d %s", rec.Code, rec.Body)
	}
}

// An SP that claims every id wins no broadcast against the local cloud, and its
// claim is not recorded: the upload of a local image goes to the local cloud.
func TestALyingSPDoesNotWinTheLocalCloudsImages(t *testing.T) {
	s := newSetup(t, withBroadcast(), withLyingCloud("remote1"))
	s.backends["default"].Add(fakecloud.Images, "", victimID, nil)
	rec := s.do(t, "PUT", "/image/v2/images/"+victimID+"/file", strings.NewReader("data"),
		"Content-Type", "application/octet-stream")
	if rec.Code != 204 {
		t.Fatalf("upload: %d %s", rec.Code, rec.Body)
	}
	for _, c := range s.backends["remote1"].Received() {
		if c.Method == "PUT" {
			t.Fatalf("the upload went to the lying SP: %+v", c)
		}
	}
	if got := heldBy(t, s, victimID); got != "default" {
		t.Fatalf("the row names %q, want default", got)
	}
}

// Two clouds hold one id (a public image copied with its id): the local copy
// wins, then the order of service_providers, whoever answers first.
func TestSharedIDsGoByPrecedence(t *testing.T) {
	s := newSetup(t, withBroadcast())
	s.backends["default"].SlowHeaders(100 * time.Millisecond)
	s.backends["default"].Add(fakecloud.Images, "", victimID, nil)
	s.backends["remote2"].Add(fakecloud.Images, "", victimID, nil)
	if rec := s.do(t, "GET", "/image/v2/images/"+victimID, nil); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "default"`) {
		t.Fatalf("%d %s, want the local copy", rec.Code, rec.Body)
	}
	if got := heldBy(t, s, victimID); got != "default" {
		t.Fatalf("the row names %q", got)
	}
	const other = "7a1e2b3c-4d5e-4f60-8a1b-2c3d4e5f6072"
	s.backends["remote1"].SlowHeaders(100 * time.Millisecond)
	s.backends["remote1"].Add(fakecloud.Images, "", other, nil)
	s.backends["remote2"].Add(fakecloud.Images, "", other, nil)
	if rec := s.do(t, "GET", "/image/v2/images/"+other, nil); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote1"`) {
		t.Fatalf("%d %s, want remote1's copy", rec.Code, rec.Body)
	}
}

// A local cloud too slow to answer within precedenceWait does not hold up a hit
// elsewhere, but that hit is not recorded: the local cloud may hold the id.
func TestAHitBehindASlowLocalCloudIsNotRecorded(t *testing.T) {
	s := newSetup(t, withBroadcast(), withOption("request_timeout", "5"))
	release := s.backends["default"].Hang()
	defer release()
	s.backends["remote1"].Add(fakecloud.Images, "", victimID, nil)
	rec, took := serveWith(t, s.handler, "GET", "/image/v2/images/"+victimID, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote1"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	within(t, "a hit behind a hanging local cloud", took, 2*time.Second)
	if got := heldBy(t, s, victimID); got != "" {
		t.Fatalf("the row names %q, want none", got)
	}
}
