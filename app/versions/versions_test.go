package versions

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDocuments(t *testing.T) {
	r := httptest.NewRequest("GET", "https://mixmatch.example:5001/volume", nil)
	rec := httptest.NewRecorder()
	Write(rec, "volume", []string{"v3.0", "v2.0"}, BaseURL(r), Range{})
	var doc struct {
		Versions []struct {
			ID, Status, Version string
			MinVersion          string `json:"min_version"`
			Links               []struct{ Rel, Href string }
			MediaTypes          []struct{ Type string } `json:"media-types"`
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || rec.Code != 300 || len(doc.Versions) != 2 {
		t.Fatalf("%d %s (%v)", rec.Code, rec.Body, err)
	}
	v3, v2 := doc.Versions[0], doc.Versions[1]
	if v3.Status != "CURRENT" || v3.Version != "3.0" || v3.MinVersion != "3.0" || v3.Links[1].Href != "https://mixmatch.example:5001/volume/v3/" ||
		v3.MediaTypes[0].Type != "application/vnd.openstack.volume+json;version=3" {
		t.Errorf("v3 entry %+v", v3)
	}
	if v2.Status != "SUPPORTED" || v2.Version != "" || v2.Links[1].Href != "https://mixmatch.example:5001/volume/v2/" {
		t.Errorf("v2 entry %+v", v2)
	}

	rec = httptest.NewRecorder()
	Write(rec, "image", []string{"v2.3", "v1.0"}, "http://mm", Range{})
	if rec.Code != 300 || !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("image: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	Write(rec, "network", []string{"v2.0"}, "http://mm", Range{})
	if rec.Code != 200 {
		t.Fatalf("network: %d", rec.Code)
	}
}

// The links of a version document are followed with the client's token: what any
// client may claim in X-Forwarded-* does not choose their host or scheme.
func TestBaseURLBelievesTheConnection(t *testing.T) {
	r := httptest.NewRequest("GET", "http://mm.example:9913/image", nil)
	r.Header.Set("X-Forwarded-Host", "evil.example")
	r.Header.Set("X-Forwarded-Proto", "https")
	if got := BaseURL(r); got != "http://mm.example:9913" {
		t.Errorf("plain: %s", got)
	}
	r = httptest.NewRequest("GET", "https://mm.example/image", nil)
	if got := BaseURL(r); got != "https://mm.example" {
		t.Errorf("TLS: %s", got)
	}
	r.Host = ""
	if got := BaseURL(r); got != "" {
		t.Errorf("no Host: %s", got)
	}
}

// The document offers what every SP supports: nothing past the least capable.
func TestNarrow(t *testing.T) {
	for _, tc := range []struct {
		in   []Range
		want Range
		ok   bool
	}{
		{[]Range{{"3.0", "3.70"}}, Range{"3.0", "3.70"}, true},
		{[]Range{{"3.0", "3.70"}, {"3.0", "3.60"}, {"3.1", "3.9"}}, Range{"3.1", "3.9"}, true},
		{[]Range{{"3.0", "3.10"}, {"3.27", "3.70"}}, Range{}, false},
		{nil, Range{}, false},
	} {
		got, ok := Narrow(tc.in)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("Narrow(%v) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	rec := httptest.NewRecorder()
	Write(rec, "volume", []string{"v3.0"}, "http://mm", Range{"3.1", "3.60"})
	if !strings.Contains(rec.Body.String(), `"version":"3.60","min_version":"3.1"`) {
		t.Errorf("document %s", rec.Body)
	}
}
