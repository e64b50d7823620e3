package proxy_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

type volumeRoot struct {
	Versions []struct {
		ID         string
		Version    string
		MinVersion string `json:"min_version"`
	}
}

func readVolumeRoot(t *testing.T, s *setup) volumeRoot {
	t.Helper()
	rec := s.do(t, "GET", "/volume/", nil, "X-Auth-Token", "")
	var doc volumeRoot
	if rec.Code != 300 || json.Unmarshal(rec.Body.Bytes(), &doc) != nil || len(doc.Versions) == 0 || doc.Versions[0].ID != "v3.0" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	return doc
}

// rootCalls counts the calls an SP's cloud got at its root.
func rootCalls(s *setup, sp string) int {
	n := 0
	for _, c := range s.backends[sp].Received() {
		if c.Path == "/" {
			n++
		}
	}
	return n
}

// Nova reads the volume root for the highest microversion (it needs 3.44 to
// attach); mixmatch offers what every cloud serves, read from their own roots.
func TestTheVolumeDocumentOffersWhatEverySPServes(t *testing.T) {
	s := newSetup(t, withAggregation())
	for sp, r := range map[string][2]string{"default": {"3.0", "3.70"}, "remote1": {"3.0", "3.60"}, "remote2": {"3.1", "3.65"}} {
		s.backends[sp].SetRoot("volume")
		s.backends[sp].SetVolumeVersions(r[0], r[1])
	}
	v := readVolumeRoot(t, s).Versions[0]
	if v.Version != "3.60" || v.MinVersion != "3.1" {
		t.Fatalf("offered %s to %s, want 3.1 to 3.60", v.MinVersion, v.Version)
	}
	// Read once for a while.
	readVolumeRoot(t, s)
	for _, sp := range []string{"default", "remote1", "remote2"} {
		if n := rootCalls(s, sp); n != 1 {
			t.Errorf("%s's root was read %d times", sp, n)
		}
	}
	// Glance has no microversions.
	if rec := s.do(t, "GET", "/image", nil); rec.Code != 300 || strings.Contains(rec.Body.String(), `"min_version"`) {
		t.Fatalf("image root: %d %s", rec.Code, rec.Body)
	}
}

// A cloud whose root cannot be read does not make the document fail, nor narrow
// it for the others: it is left out, and asked again on the next call.
func TestAnUnreadableSPIsLeftOut(t *testing.T) {
	s := newSetup(t, withAggregation())
	s.backends["default"].SetRoot("volume")
	s.backends["remote1"].SetRoot("volume")
	s.backends["remote1"].SetVolumeVersions("3.0", "3.50")
	// remote2's root answers 404: no version document.
	v := readVolumeRoot(t, s).Versions[0]
	if v.Version != "3.50" || v.MinVersion != "3.0" {
		t.Fatalf("offered %s to %s, want 3.0 to 3.50", v.MinVersion, v.Version)
	}
	// Nothing to read at all: the base version, which every v3 Cinder serves.
	s = newSetup(t, withAggregation())
	if v := readVolumeRoot(t, s).Versions[0]; v.Version != "3.0" || v.MinVersion != "3.0" {
		t.Fatalf("no roots: offered %s to %s", v.MinVersion, v.Version)
	}
}

// A volume endpoint with a path has its root under that path.
func TestTheRootOfAnEndpointWithAPath(t *testing.T) {
	var calls atomic.Int32
	cinder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/volume/" {
			http.NotFound(w, r)
			return
		}
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMultipleChoices)
		w.Write([]byte(`{"versions": [{"id": "v3.0", "status": "CURRENT", "version": "3.55", "min_version": "3.0"}]}`))
	}))
	t.Cleanup(cinder.Close)
	s := newSetup(t, withAggregation(), withSPs("default", "remote1"), withEndpoint("remote1", cinder.URL+"/volume"))
	s.backends["default"].SetRoot("volume")
	if v := readVolumeRoot(t, s).Versions[0]; v.Version != "3.55" || calls.Load() != 1 {
		t.Fatalf("offered up to %s; the root was read %d times", v.Version, calls.Load())
	}
}
