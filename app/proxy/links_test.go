package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"mixmatch/app/fakecloud"
	"mixmatch/app/store"
)

// Requests the tests send name this host (httptest.NewRequest's).
const mixmatchURL = "http://example.com"

type link struct{ Rel, Href string }

// noCloudURL fails when an answer names a fake cloud's URL: a client following it
// would leave mixmatch.
func noCloudURL(t *testing.T, s *setup, rec *httptest.ResponseRecorder) {
	t.Helper()
	for name, b := range s.backends {
		for k, vs := range rec.Header() {
			if strings.Contains(strings.Join(vs, " "), b.URL()) {
				t.Errorf("%s names %s's URL: %s", k, name, vs)
			}
		}
		if strings.Contains(rec.Body.String(), b.URL()) {
			t.Errorf("the answer names %s's URL: %s", name, rec.Body)
		}
	}
	if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != "" && got != want {
		t.Errorf("Content-Length %s of a %s-byte body", got, want)
	}
}

func TestCreateLocationPointsAtMixmatch(t *testing.T) {
	s := newSetup(t)
	for _, sp := range []string{"default", "remote1"} {
		rec := s.do(t, "POST", "/image/v2/images", strings.NewReader(`{"name": "cirros"}`), "MM-SERVICE-PROVIDER", sp)
		var img struct{ ID string }
		decodeBody(t, rec, &img)
		if want := mixmatchURL + "/image/v2/images/" + img.ID; rec.Code != 201 || rec.Header().Get("Location") != want {
			t.Errorf("%s: %d Location %q, want %q", sp, rec.Code, rec.Header().Get("Location"), want)
		}
		noCloudURL(t, s, rec)
	}
}

// A remote Cinder's list forwarded as it is (no aggregation) links to mixmatch, in
// the user's local project, and the link works.
func TestForwardedRemoteVolumeListLinksToMixmatch(t *testing.T) {
	s := newSetup(t)
	remote := s.backends["remote1"]
	for i := 0; i < 3; i++ {
		remote.Add(fakecloud.Volumes, remoteProject("remote1"), fmt.Sprintf("vol%d", i),
			map[string]any{"created_at": fmt.Sprintf("2026-01-0%dT00:00:00.000000", i+1)})
	}
	rec := s.do(t, "GET", "/volume/v3/8a1e/volumes?limit=1", nil, "MM-SERVICE-PROVIDER", "remote1")
	var page struct {
		Volumes []struct {
			ID    string
			Links []link
		}
		Next []link `json:"volumes_links"`
	}
	decodeBody(t, rec, &page)
	noCloudURL(t, s, rec)
	if len(page.Volumes) != 1 || len(page.Next) != 1 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if want := mixmatchURL + "/volume/v3/8a1e/volumes?limit=1&marker=vol2"; page.Next[0].Href != want {
		t.Errorf("next %s, want %s", page.Next[0].Href, want)
	}
	self, bookmark := page.Volumes[0].Links[0], page.Volumes[0].Links[1]
	if self.Href != mixmatchURL+"/volume/v3/8a1e/volumes/vol2" || bookmark.Href != mixmatchURL+"/volume/8a1e/volumes/vol2" {
		t.Errorf("item links %v", page.Volumes[0].Links)
	}
	next := strings.TrimPrefix(page.Next[0].Href, mixmatchURL)
	rec = s.do(t, "GET", next, nil, "MM-SERVICE-PROVIDER", "remote1")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"id": "vol1"`) {
		t.Fatalf("following next: %d %s", rec.Code, rec.Body)
	}
}

func TestRemoteVolumeShowLinksToMixmatch(t *testing.T) {
	s := newSetup(t)
	s.store.Upsert(context.Background(), store.Mapping{ResourceType: "volumes", ResourceID: imageID, ResourceSP: "remote2", ProjectID: "feed"})
	s.backends["remote2"].Add(fakecloud.Volumes, "feed", imageID, nil)
	rec := s.do(t, "GET", "/volume/v3/8a1e/volumes/"+imageID, nil)
	var show struct{ Volume struct{ Links []link } }
	decodeBody(t, rec, &show)
	noCloudURL(t, s, rec)
	if l := show.Volume.Links; len(l) != 2 || l[0].Rel != "self" || l[0].Href != mixmatchURL+"/volume/v3/8a1e/volumes/"+imageID ||
		l[1].Href != mixmatchURL+"/volume/8a1e/volumes/"+imageID {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestNetworkListLinksToMixmatch(t *testing.T) {
	s := newSetup(t, withSPOption("enabled_services", "image, volume, network"))
	for _, id := range []string{"net1", "net2"} {
		s.backends["default"].Add(fakecloud.Networks, "", id, nil)
	}
	rec := s.do(t, "GET", "/network/v2.0/networks?limit=1", nil)
	var page struct {
		Links []link `json:"networks_links"`
	}
	decodeBody(t, rec, &page)
	noCloudURL(t, s, rec)
	if len(page.Links) != 2 || page.Links[0].Href != mixmatchURL+"/network/v2.0/networks?limit=1&marker=net1" ||
		page.Links[1].Href != mixmatchURL+"/network/v2.0/networks?limit=1&marker=net1&page_reverse=True" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// Glance's links are relative to its endpoint, which for a client is mixmatch's
// /image: they stay as they are.
func TestGlanceRelativeLinksStay(t *testing.T) {
	s := newSetup(t)
	for _, id := range []string{"img1", "img2"} {
		s.backends["remote1"].Add(fakecloud.Images, "", id, nil)
	}
	rec := s.do(t, "GET", "/image/v2/images?limit=1", nil, "MM-SERVICE-PROVIDER", "remote1")
	var page struct {
		Images []struct{ ID, Self, File, Schema string }
		Next   string
		First  string
		Schema string
	}
	decodeBody(t, rec, &page)
	im := page.Images[0]
	if page.Next != "/v2/images?limit=1&marker="+im.ID || page.First != "/v2/images?limit=1" || page.Schema != "/v2/schemas/images" ||
		im.Self != "/v2/images/"+im.ID || im.File != "/v2/images/"+im.ID+"/file" || im.Schema != "/v2/schemas/image" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if rec := s.do(t, "GET", "/image"+page.Next, nil, "MM-SERVICE-PROVIDER", "remote1"); rec.Code != 200 ||
		strings.Count(rec.Body.String(), `"id"`) != 1 || strings.Contains(rec.Body.String(), im.ID) {
		t.Fatalf("following next: %d %s", rec.Code, rec.Body)
	}
}

type versionDocument struct {
	Versions []struct {
		ID    string
		Links []link
	}
}

// Without aggregation the local cloud's roots are forwarded: keystoneauth adopts
// their self links as the endpoint, which must stay mixmatch's.
func TestForwardedVersionDocumentsPointAtMixmatch(t *testing.T) {
	s := newSetup(t, withSPOption("enabled_services", "image, volume, network"))
	b := s.backends["default"]
	for _, tc := range []struct{ root, path, self string }{
		{"image", "/image", "/image/v2/"},
		{"volume", "/volume/", "/volume/v3/"},
		{"network", "/network", "/network/v2.0/"},
	} {
		b.SetRoot(tc.root)
		rec := s.do(t, "GET", tc.path, nil)
		var doc versionDocument
		decodeBody(t, rec, &doc)
		noCloudURL(t, s, rec)
		if len(doc.Versions) == 0 {
			t.Fatalf("%s: %d %s", tc.path, rec.Code, rec.Body)
		}
		v := doc.Versions[0]
		if self := v.Links[len(v.Links)-1]; self.Rel != "self" || self.Href != mixmatchURL+tc.self {
			t.Errorf("%s: %d %s", tc.path, rec.Code, rec.Body)
		}
		if tc.root == "volume" && v.Links[0].Href != "https://docs.openstack.org/" {
			t.Errorf("Cinder's describedby link was changed: %v", v.Links)
		}
	}
}

// public_url wins over the Host a call names, and X-Forwarded-* count for nothing.
func TestPublicURLWins(t *testing.T) {
	const public = "https://mm.example:9913"
	for _, aggregation := range []string{"false", "true"} {
		s := newSetup(t, withOption("public_url", public+"/"), withOption("aggregation", aggregation))
		s.backends["default"].SetRoot("image")
		claims := []string{"X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "http"}
		rec := s.do(t, "POST", "/image/v2/images", strings.NewReader(`{"name": "x"}`), claims...)
		if loc := rec.Header().Get("Location"); !strings.HasPrefix(loc, public+"/image/v2/images/") {
			t.Errorf("aggregation %s: Location %q", aggregation, loc)
		}
		rec = s.do(t, "GET", "/image", nil, claims...)
		var doc versionDocument
		decodeBody(t, rec, &doc)
		if href := doc.Versions[0].Links[0].Href; href != public+"/image/v2/" {
			t.Errorf("aggregation %s: version document %s", aggregation, rec.Body)
		}
	}
	s := newSetup(t, withOption("public_url", public), withAggregation())
	fillLists(s)
	rec := s.do(t, "GET", "/volume/v3/8a1e/volumes?limit=2", nil, "X-Forwarded-Host", "evil.example")
	var page struct {
		Links []link `json:"volumes_links"`
	}
	decodeBody(t, rec, &page)
	if len(page.Links) != 1 || !strings.HasPrefix(page.Links[0].Href, public+"/volume/v3/8a1e/volumes?") {
		t.Fatalf("aggregated next: %s", rec.Body)
	}
}

// An aggregated list's items keep their links, on mixmatch.
func TestAggregatedItemsLinkToMixmatch(t *testing.T) {
	s := newSetup(t, withAggregation())
	for i, sp := range []string{"default", "remote1"} {
		project := "8a1e"
		if sp != "default" {
			project = remoteProject(sp)
		}
		s.backends[sp].Add(fakecloud.Volumes, project, "vol-"+sp, map[string]any{"created_at": fmt.Sprintf("2026-01-0%dT00:00:00.000000", i+1)})
	}
	rec := s.do(t, "GET", "/volume/v3/8a1e/volumes", nil)
	var page struct {
		Volumes []struct {
			ID    string
			Links []link
		}
	}
	decodeBody(t, rec, &page)
	noCloudURL(t, s, rec)
	if len(page.Volumes) != 2 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	for _, v := range page.Volumes {
		if v.Links[0].Href != mixmatchURL+"/volume/v3/8a1e/volumes/"+v.ID {
			t.Errorf("%s: %v", v.ID, v.Links)
		}
	}
}

// linkingSP answers every call with a volume whose links lie on the SP's own host,
// on a foreign one, and on the foreign host written in every way a client still
// follows, and a foreign Location.
func linkingSP(t *testing.T) *httptest.Server {
	sp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "http://elsewhere.example/v3/p/volumes/x")
		project := strings.Split(r.URL.Path, "/")[2]
		fmt.Fprintf(w, `{"volume": {"id": "x", "description": "see http://elsewhere.example/", "links": [`+
			`{"rel": "self", "href": "http://%s/v3/%s/volumes/x"}, {"rel": "alternate", "href": "http://elsewhere.example/x"}, `+
			`{"rel": "next", "href": "//elsewhere.example/x"}, {"rel": "next", "href": "http:\/\/elsewhere.example\/x"}, `+
			`{"rel": "next", "href": " HTTPS://elsewhere.example/x"}, {"rel": "next", "h\u0072ef": "http://elsewhere.example/x"}]}}`, r.Host, project)
	}))
	t.Cleanup(sp.Close)
	return sp
}

// A link outside the SP's endpoint is left alone from the local cloud, which the
// user's token may reach; from a remote SP it is dropped, as the client would
// follow it with its local token.
func TestForeignLinks(t *testing.T) {
	local, remote := linkingSP(t), linkingSP(t)
	s := newSetup(t, withSPs("default", "remote1"), withEndpoint("default", local.URL), withEndpoint("remote1", remote.URL))
	self := `{"rel": "self", "href": "http://example.com/volume/v3/8a1e/volumes/x"}`
	rec := s.do(t, "GET", "/volume/v3/8a1e/volumes/x", nil)
	if !strings.Contains(rec.Body.String(), self) || strings.Count(rec.Body.String(), "elsewhere.example") != 6 ||
		rec.Header().Get("Location") != "http://elsewhere.example/v3/p/volumes/x" {
		t.Errorf("local: %v %s", rec.Header(), rec.Body)
	}
	rec = s.do(t, "GET", "/volume/v3/8a1e/volumes/x", nil, "MM-SERVICE-PROVIDER", "remote1")
	if !strings.Contains(rec.Body.String(), self) || strings.Count(rec.Body.String(), "elsewhere.example") != 1 ||
		strings.Count(rec.Body.String(), `"href": ""`) != 4 || strings.Count(rec.Body.String(), `"h\u0072ef": ""`) != 1 ||
		rec.Header().Get("Location") != "" {
		t.Errorf("remote: %v %s", rec.Header(), rec.Body)
	}
	if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want {
		t.Errorf("Content-Length %s of a %s-byte body", got, want)
	}
}

// An answer past what mixmatch holds is rewritten as it streams, without a
// Content-Length; it is never passed on unread.
func TestLargeAnswersAreRewrittenAsTheyStream(t *testing.T) {
	filler := strings.Repeat("x", 1000)
	sp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"volumes": [`)
		for i := 0; i < 6000; i++ {
			fmt.Fprintf(w, `{"id": "v%d", "description": "%s", "links": [{"rel": "self", "href": "http://%s/v3/p/volumes/v%[1]d"}]}, `, i, filler, r.Host)
		}
		fmt.Fprintf(w, `{"id": "last"}], "volumes_links": [{"rel": "next", "href": "http://%s/v3/p/volumes?marker=last"}, `+
			`{"rel": "next", "href": "http://elsewhere.example/"}]}`, r.Host)
	}))
	t.Cleanup(sp.Close)
	s := newSetup(t, withSPs("default", "remote1"), withEndpoint("remote1", sp.URL))
	rec := s.do(t, "GET", "/volume/v3/8a1e/volumes", nil, "MM-SERVICE-PROVIDER", "remote1")
	var page struct {
		Volumes []struct{ Links []link }
		Next    []link `json:"volumes_links"`
	}
	decodeBody(t, rec, &page)
	if rec.Body.Len() < 6<<20 || rec.Header().Get("Content-Length") != "" || len(page.Volumes) != 6001 ||
		page.Volumes[5999].Links[0].Href != mixmatchURL+"/volume/v3/p/volumes/v5999" ||
		len(page.Next) != 2 || page.Next[0].Href != mixmatchURL+"/volume/v3/p/volumes?marker=last" || page.Next[1].Href != "" {
		t.Fatalf("%d %v, %d bytes, next %v", rec.Code, rec.Header(), rec.Body.Len(), page.Next)
	}
}

// A remote SP's answer mixmatch cannot read for its links (an encoding it does not
// decode, a charset whose quotes and slashes are other bytes) is a 502; the local
// cloud's passes on as it came.
func TestUncheckableAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, encoding string
		body                        []byte
	}{
		{"brotli", "application/json", "br", []byte("\x1b\x10\x00\xf8\xa5\x60\x9c\x4b")},
		{"UTF-16", "application/json", "", []byte("{\x00\"\x00}\x00")},
		{"EBCDIC", "application/json; charset=cp500", "", []byte("\xc0\x7f\xd0")},
	} {
		sp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", tc.contentType)
			if tc.encoding != "" {
				w.Header().Set("Content-Encoding", tc.encoding)
			}
			w.Write(tc.body)
		}))
		s := newSetup(t, withSPs("default", "remote1"), withEndpoint("default", sp.URL), withEndpoint("remote1", sp.URL))
		rec := s.do(t, "GET", "/volume/v3/8a1e/volumes", nil)
		if rec.Code != 200 || rec.Body.String() != string(tc.body) || rec.Header().Get("Content-Encoding") != tc.encoding {
			t.Errorf("%s, local: %d %v %q", tc.name, rec.Code, rec.Header(), rec.Body)
		}
		rec = s.do(t, "GET", "/volume/v3/8a1e/volumes", nil, "MM-SERVICE-PROVIDER", "remote1")
		wantJSONError(t, tc.name+", remote", rec, http.StatusBadGateway)
		sp.Close()
	}
}

// mixmatch's own version documents (with aggregation) announce no major version the
// services behind it do not serve: Tempest's show-version test asks each one, and a
// v2 of Cinder, gone since Xena, was a 404.
func TestOwnVersionDocumentsAnnounceWhatTheServicesServe(t *testing.T) {
	s := newSetup(t, withAggregation())
	b := s.backends["default"]
	majors := func(rec *httptest.ResponseRecorder) map[string]bool {
		var doc versionDocument
		decodeBody(t, rec, &doc)
		out := map[string]bool{}
		for _, v := range doc.Versions {
			major, _, _ := strings.Cut(v.ID, ".")
			out[major] = true
		}
		return out
	}
	for _, service := range []string{"image", "volume"} {
		b.SetRoot(service)
		resp, err := http.Get(b.URL() + "/")
		if err != nil {
			t.Fatal(err)
		}
		served := httptest.NewRecorder()
		served.Code = resp.StatusCode
		io.Copy(served.Body, resp.Body)
		resp.Body.Close()
		have := majors(served)
		announced := majors(s.do(t, "GET", "/"+service, nil))
		if len(announced) == 0 {
			t.Fatalf("%s: mixmatch announces no version", service)
		}
		for major := range announced {
			if !have[major] {
				t.Errorf("%s: mixmatch announces %s, the service serves %v", service, major, have)
			}
		}
	}
}
