package proxy_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"mixmatch/app/fakecloud"
	"mixmatch/app/reqinfo"
	"mixmatch/app/store"
)

const (
	parentVolume = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
	otherVolume  = "7a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	parentSnap   = "8b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
	parentBackup = "9c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"
)

// mapAt puts a resource of a kind in an SP's cloud, in project, and maps it there.
func mapAt(t *testing.T, s *setup, kind, sp, project, id string, props map[string]any) {
	t.Helper()
	s.backends[sp].Add(kind, project, id, props)
	if err := s.store.Upsert(context.Background(), store.Mapping{ResourceType: kind, ResourceID: id, ResourceSP: sp, ProjectID: project}); err != nil {
		t.Fatal(err)
	}
}

// lastCall is the latest call an SP's cloud received; the zero Call when none.
func lastCall(s *setup, sp string) fakecloud.Call {
	got := s.backends[sp].Received()
	if len(got) == 0 {
		return fakecloud.Call{}
	}
	return got[len(got)-1]
}

// createdID reads the new member's id from a Cinder create answer.
func createdID(t *testing.T, rec *httptest.ResponseRecorder, key string) string {
	t.Helper()
	var body map[string]struct{ ID string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body[key].ID == "" {
		t.Fatalf("%d %s: no %s id", rec.Code, rec.Body, key)
	}
	return body[key].ID
}

// Every create that names its parent in the body goes to the parent's cloud, in
// its project, with the body as the client wrote it; the new resource is then
// found there.
func TestCreatesGoWhereTheirParentIs(t *testing.T) {
	s := newSetup(t)
	const feed = "feed"
	mapAt(t, s, fakecloud.Volumes, "remote1", feed, parentVolume, nil)
	mapAt(t, s, fakecloud.Snapshots, "remote1", feed, parentSnap, map[string]any{"volume_id": parentVolume})
	mapAt(t, s, fakecloud.Backups, "remote1", feed, parentBackup, map[string]any{"volume_id": parentVolume})
	for _, tc := range []struct {
		path, key, body string
		status          int
		row             string // "" when the type is not mapped
	}{
		{"snapshots", "snapshot", `{"snapshot":{"volume_id":"` + parentVolume + `",  "force": true}}`, 202, "snapshots"},
		{"volumes", "volume", `{"volume": {"source_volid": "` + parentVolume + `"}}`, 202, "volumes"},
		{"volumes", "volume", `{"volume": {"snapshot_id": "` + parentSnap + `", "name": "from a snapshot"}}`, 202, "volumes"},
		{"volumes", "volume", `{"volume": {"backup_id": "` + parentBackup + `"}}`, 202, "volumes"},
		{"backups", "backup", `{"backup": {"volume_id": "` + parentVolume + `", "force": true}}`, 202, "backups"},
		{"os-volume-transfer", "transfer", `{"transfer": {"volume_id": "` + parentVolume + `", "name": "t"}}`, 202, "transfers"},
	} {
		rec := s.do(t, "POST", "/volume/v3/8a1e/"+tc.path, strings.NewReader(tc.body), "Content-Type", "application/json")
		got := lastCall(s, "remote1")
		if rec.Code != tc.status || got.Path != "/v3/"+feed+"/"+tc.path || got.BodyHash != sha256.Sum256([]byte(tc.body)) {
			t.Fatalf("%s: %d %s; remote1 last got %s %s", tc.body, rec.Code, rec.Body, got.Method, got.Path)
		}
		id := createdID(t, rec, tc.key)
		if m, err := s.store.Find(context.Background(), tc.row, id); err != nil || m.ResourceSP != "remote1" || m.ProjectID != feed {
			t.Fatalf("%s: the new %s is mapped %+v, %v", tc.body, tc.key, m, err)
		}
		if tc.path == "os-volume-transfer" {
			// The transfer is found under the other path too, and its delete frees
			// the volume and the row.
			if rec := s.do(t, "DELETE", "/volume/v3/8a1e/volume-transfers/"+id, nil); rec.Code != 202 {
				t.Fatalf("transfer delete: %d %s", rec.Code, rec.Body)
			}
			if _, err := s.store.Find(context.Background(), "transfers", id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the transfer's row after its delete: %v", err)
			}
		}
	}
	if got := s.backends["default"].Received(); len(got) != 0 {
		t.Fatalf("the local cloud was asked: %+v", got)
	}
}

// Nova reserves, connects, completes and deletes an attachment of a remote volume;
// only the reservation names the volume, and only in its body.
func TestNovaAttachesARemoteVolume(t *testing.T) {
	// Cinder at remote1 asks its own Nova, which does not hold the local cloud's
	// server, so it lets the attachment go.
	s := newSetup(t, withCloud("remote1", func(o *fakecloud.Options) { o.NovaKnows = func(string) bool { return false } }))
	mapAt(t, s, fakecloud.Volumes, "remote1", "feed", parentVolume, nil)
	v := []string{"Content-Type", "application/json", "OpenStack-API-Version", "volume 3.44"}
	rec := s.do(t, "POST", "/volume/v3/8a1e/attachments", strings.NewReader(`{"attachment": {"volume_uuid": "`+parentVolume+
		`", "instance_uuid": "5d0c6f3e-1b2a-4c3d-8e4f-0a1b2c3d4e5f", "connector": null}}`), v...)
	if rec.Code != 200 || lastCall(s, "remote1").Path != "/v3/feed/attachments" {
		t.Fatalf("reserve: %d %s", rec.Code, rec.Body)
	}
	id := createdID(t, rec, "attachment")
	if m, err := s.store.Find(context.Background(), "attachments", id); err != nil || m.ResourceSP != "remote1" {
		t.Fatalf("the attachment is mapped %+v, %v", m, err)
	}
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"PUT", id, `{"attachment": {"connector": {"host": "compute1", "initiator": "iqn.1993-08.org.debian:01:1"}}}`, 200},
		{"POST", id + "/action", `{"os-complete": null}`, 204},
		{"DELETE", id, "", 200},
	} {
		rec := s.do(t, c.method, "/volume/v3/8a1e/attachments/"+c.path, strings.NewReader(c.body), v...)
		if got := lastCall(s, "remote1"); rec.Code != c.status || got.Method != c.method || got.Path != "/v3/feed/attachments/"+c.path {
			t.Fatalf("%s %s: %d %s; remote1 last got %s %s", c.method, c.path, rec.Code, rec.Body, got.Method, got.Path)
		}
	}
	if _, err := s.store.Find(context.Background(), "attachments", id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the attachment's row after its holder deleted it: %v", err)
	}
	if got := s.backends["default"].Received(); len(got) != 0 {
		t.Fatalf("the local cloud was asked: %+v", got)
	}
}

// A volume from an image is made by the local Cinder, which downloads the image
// through mixmatch, wherever it is.
func TestAVolumeFromARemoteImageIsMadeLocally(t *testing.T) {
	s := newSetup(t)
	mapAt(t, s, fakecloud.Images, "remote1", "feed", imageID, nil)
	rec := s.do(t, "POST", "/volume/v3/8a1e/volumes", strings.NewReader(`{"volume": {"size": 1, "imageRef": "`+imageID+`"}}`))
	if rec.Code != 202 || lastCall(s, "default").Path != "/v3/8a1e/volumes" || len(s.backends["remote1"].Received()) != 0 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// An unmapped parent is searched for as a call about it would be, and then known;
// without search_by_broadcast the create goes to the local cloud, which answers.
func TestAnUnmappedParentIsSearchedFor(t *testing.T) {
	s := newSetup(t, withBroadcast())
	s.backends["remote2"].Add(fakecloud.Volumes, "", parentVolume, nil)
	body := `{"snapshot": {"volume_id": "` + parentVolume + `"}}`
	rec := s.do(t, "POST", "/volume/v3/8a1e/snapshots", strings.NewReader(body))
	if rec.Code != 202 || lastCall(s, "remote2").Method != "POST" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if m, err := s.store.Find(context.Background(), "volumes", parentVolume); err != nil || m.ResourceSP != "remote2" {
		t.Fatalf("the parent found is mapped %+v, %v", m, err)
	}
	s = newSetup(t)
	s.backends["remote2"].Add(fakecloud.Volumes, "", parentVolume, nil)
	rec = s.do(t, "POST", "/volume/v3/8a1e/snapshots", strings.NewReader(body))
	if rec.Code != 404 || lastCall(s, "default").Path != "/v3/8a1e/snapshots" || len(s.backends["remote2"].Received()) != 0 {
		t.Fatalf("without broadcast: %d %s", rec.Code, rec.Body)
	}
	// Found nowhere: the local cloud answers as it does.
	s = newSetup(t, withBroadcast())
	rec = s.do(t, "POST", "/volume/v3/8a1e/snapshots", strings.NewReader(body))
	if rec.Code != 404 || lastCall(s, "default").Method != "POST" {
		t.Fatalf("nowhere: %d %s", rec.Code, rec.Body)
	}
}

// No cloud makes a backup of one cloud's volume from another cloud's snapshot.
func TestParentsInTwoCloudsAreRefused(t *testing.T) {
	s := newSetup(t)
	mapAt(t, s, fakecloud.Volumes, "remote1", "feed", parentVolume, nil)
	mapAt(t, s, fakecloud.Snapshots, "remote2", "beef", parentSnap, nil)
	rec := s.do(t, "POST", "/volume/v3/8a1e/backups", strings.NewReader(`{"backup": {"volume_id": "`+parentVolume+
		`", "snapshot_id": "`+parentSnap+`"}}`))
	wantJSONError(t, "parents in two clouds", rec, 400)
	if !strings.Contains(rec.Body.String(), "remote1") || !strings.Contains(rec.Body.String(), "remote2") {
		t.Fatalf("the refusal names neither cloud: %s", rec.Body)
	}
	for name, b := range s.backends {
		if len(b.Received()) != 0 {
			t.Fatalf("%s was asked", name)
		}
	}
}

// The client's MM-SERVICE-PROVIDER is the client's word; a cloud chosen by a
// create's name must be the parent's.
func TestTheHeaderWinsAndANameMustAgree(t *testing.T) {
	s := newSetup(t)
	mapAt(t, s, fakecloud.Volumes, "remote1", "feed", parentVolume, nil)
	body := `{"volume": {"name": "copy", "source_volid": "` + parentVolume + `"}}`
	rec := s.do(t, "POST", "/volume/v3/8a1e/volumes", strings.NewReader(body), "MM-SERVICE-PROVIDER", "remote2")
	if rec.Code != 404 || lastCall(s, "remote2").Method != "POST" || len(s.backends["remote1"].Received()) != 0 {
		t.Fatalf("MM-SERVICE-PROVIDER remote2: %d %s", rec.Code, rec.Body)
	}
	named := func(sp string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/volume/v3/8a1e/volumes", strings.NewReader(body))
		req.Header.Set("X-Auth-Token", localToken)
		req.Header.Set("MM-SERVICE-PROVIDER", sp)
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, reqinfo.RoutedByName(req))
		return rec
	}
	before := len(s.backends["remote2"].Received())
	wantJSONError(t, "named copy@remote2", named("remote2"), 400)
	if len(s.backends["remote2"].Received()) != before {
		t.Fatal("remote2 was asked")
	}
	if rec := named("remote1"); rec.Code != 202 || lastCall(s, "remote1").Path != "/v3/feed/volumes" {
		t.Fatalf("named copy@remote1: %d %s", rec.Code, rec.Body)
	}
}

// What mixmatch reads of a body to route it is bounded.
func TestAParentsBodyIsBounded(t *testing.T) {
	s := newSetup(t, withOption("max_json_body_size", "1024"))
	body := `{"snapshot": {"volume_id": "` + parentVolume + `", "description": "` + strings.Repeat("x", 1024) + `"}}`
	wantJSONError(t, "a large body", s.do(t, "POST", "/volume/v3/8a1e/snapshots", strings.NewReader(body)), http.StatusRequestEntityTooLarge)
}
