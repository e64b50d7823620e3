package proxy_test

import (
	"context"
	"strings"
	"testing"

	"mixmatch/app/fakecloud"
	"mixmatch/app/store"
)

// Clouds write ids with dashes and find a resource only under its id as written:
// Glance, Cinder and Neutron look ids up in their databases as strings. mixmatch
// keeps ids normalised (lower case, no dashes) in its table; what it sends to a cloud
// must still be the id as the client wrote it. The other proxy tests use ids that
// normalisation leaves as they are; these use dashed ones.

const dashedID = "5b1c7a7e-6b1c-4c5d-9e2f-1a2b3c4d5e6f"

// Mapped and unmapped calls pass the path on as it came: the id as written.
func TestMappedAndLocalCallsUseTheIDAsWritten(t *testing.T) {
	s := newSetup(t)
	s.backends["default"].Add(fakecloud.Images, "", dashedID, nil)
	if rec := s.do(t, "GET", "/image/v2/images/"+dashedID, nil); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "default"`) {
		t.Fatalf("local image: %d %s", rec.Code, rec.Body)
	}
	s.store.Upsert(context.Background(), store.Mapping{ResourceType: "volumes", ResourceID: dashedID, ResourceSP: "remote1", ProjectID: remoteProject("remote1")})
	s.backends["remote1"].Add(fakecloud.Volumes, remoteProject("remote1"), dashedID, nil)
	if rec := s.do(t, "GET", "/volume/v3/8a1e/volumes/"+dashedID, nil); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote1"`) {
		t.Fatalf("mapped volume: %d %s", rec.Code, rec.Body)
	}
}

// A broadcast must ask each cloud for the id as written. Fails until issue 17:
// memberPath (broadcast.go) builds the probe from reqinfo's ResourceID, which is
// normalised, so no cloud holding a dashed id is ever found.
func TestBroadcastProbesWithTheIDAsWritten(t *testing.T) {
	for _, tc := range []struct{ kind, project, path string }{
		{fakecloud.Images, "", "/image/v2/images/" + dashedID},
		{fakecloud.Volumes, remoteProject("remote2"), "/volume/v3/8a1e/volumes/" + dashedID},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			s := newSetup(t, withBroadcast())
			s.backends["remote2"].Add(tc.kind, tc.project, dashedID, nil)
			rec := s.do(t, "GET", tc.path, nil)
			for name, b := range s.backends {
				for _, c := range b.Received() {
					if !strings.HasSuffix(c.Path, "/"+dashedID) {
						t.Errorf("%s was asked for %s, not for the id as written", name, c.Path)
					}
				}
			}
			if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote2"`) {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if m, err := s.store.Find(context.Background(), tc.kind, dashedID); err != nil || m.ResourceSP != "remote2" {
				t.Fatalf("learned %+v, %v", m, err)
			}
		})
	}
}

// A client that spells a dashed id without its dashes names nothing at the cloud (a
// 404, rightly), but the resource is still where the table says: the mapping must
// stay. Fails until issue 17: the 404 is taken for a stale mapping, which is deleted
// under the normalised id, the dashed one's too.
func TestADashlessSpellingDoesNotDeleteTheMapping(t *testing.T) {
	s := newSetup(t)
	ctx := context.Background()
	s.store.Upsert(ctx, store.Mapping{ResourceType: "images", ResourceID: dashedID, ResourceSP: "remote1", ProjectID: "p"})
	s.backends["remote1"].Add(fakecloud.Images, "", dashedID, nil)
	if rec := s.do(t, "GET", "/image/v2/images/"+strings.ReplaceAll(dashedID, "-", ""), nil); rec.Code != 404 {
		t.Fatalf("the dash-less spelling: %d %s", rec.Code, rec.Body)
	}
	if m, err := s.store.Find(ctx, "images", dashedID); err != nil || m.ResourceSP != "remote1" {
		t.Errorf("the mapping after a dash-less GET: %+v, %v", m, err)
	}
	if rec := s.do(t, "GET", "/image/v2/images/"+dashedID, nil); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote1"`) {
		t.Fatalf("the id as written, after the dash-less GET: %d %s", rec.Code, rec.Body)
	}
}
