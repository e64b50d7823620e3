package proxy_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"mixmatch/app/fakecloud"
)

// What the services say in their headers reaches the client: openstacksdk uploads
// by import only when it sees the import methods.
func TestAnswerHeadersReachTheClient(t *testing.T) {
	s := newSetup(t)
	for _, sp := range []string{"default", "remote1"} {
		b := s.backends[sp]
		b.Add(fakecloud.Images, "", imageID, nil)
		for k, v := range map[string]string{
			"OpenStack-image-import-methods": "glance-direct,web-download", "OpenStack-image-store-ids": "fast,cheap",
			"Retry-After": "3", "Vary": "OpenStack-API-Version", "Accept-Ranges": "bytes", "Cache-Control": "no-cache",
			"Content-Language": "en-US", "Link": "<http://elsewhere.example/>; rel=help",
			"Set-Cookie": "lb=node1", "Server": "Apache/2.4.62 (Debian)", "X-Powered-By": "uWSGI", "Via": "1.1 lb.internal",
			"Alt-Svc": `h3=":443"`, "Strict-Transport-Security": "max-age=31536000",
		} {
			b.SetHeader(k, v)
		}
	}
	for _, sp := range []string{"default", "remote1"} {
		rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil, "MM-SERVICE-PROVIDER", sp)
		h := rec.Header()
		if rec.Code != 200 || h.Get("OpenStack-image-import-methods") != "glance-direct,web-download" ||
			h.Get("OpenStack-image-store-ids") != "fast,cheap" || h.Get("Retry-After") != "3" ||
			h.Get("Vary") != "OpenStack-API-Version" || h.Get("Accept-Ranges") != "bytes" ||
			h.Get("Cache-Control") != "no-cache" || h.Get("Content-Language") != "en-US" ||
			h.Get("X-Openstack-Request-Id") != "req-"+sp {
			t.Errorf("%s: %d %v", sp, rec.Code, h)
		}
		for _, k := range []string{"Set-Cookie", "Server", "X-Powered-By", "Via", "Alt-Svc", "Strict-Transport-Security"} {
			if v := h.Get(k); v != "" {
				t.Errorf("%s: %s reached the client: %s", sp, k, v)
			}
		}
		// A link mixmatch does not rewrite leads where the token it is followed with
		// may go only from the local cloud.
		if link := h.Get("Link"); (sp == "default") != (link != "") {
			t.Errorf("%s: Link %q", sp, link)
		}
	}
}

// A 401 of the local cloud names the local Keystone; a remote one's would send the
// client to the remote Keystone.
func TestWWWAuthenticateOfTheLocalCloudOnly(t *testing.T) {
	s := newSetup(t, withTokenCheck("default", func(string) (string, bool) { return "", false }),
		withTokenCheck("remote1", func(string) (string, bool) { return "", false }))
	if rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil); rec.Code != 401 || rec.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("local: %d %v", rec.Code, rec.Header())
	}
	if rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil, "MM-SERVICE-PROVIDER", "remote1"); rec.Code != 401 ||
		rec.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("remote: %d %v", rec.Code, rec.Header())
	}
}

func gzipped(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

// Image data is passed on as it comes: compressed when the client asked for it and
// the SP compressed it, labelled so.
func TestCompressedImageDataPassesAsItCame(t *testing.T) {
	s := newSetup(t)
	b := s.backends["default"]
	b.Add(fakecloud.Images, "", imageID, nil)
	data := gzipped(t, bytes.Repeat([]byte("mixmatch "), 10000))
	b.PutData(imageID, data)
	b.SetHeader("Content-Encoding", "gzip")
	rec := s.do(t, "GET", "/image/v2/images/"+imageID+"/file", nil, "Accept-Encoding", "gzip")
	if rec.Code != 200 || rec.Header().Get("Content-Encoding") != "gzip" || !bytes.Equal(rec.Body.Bytes(), data) ||
		rec.Header().Get("Content-Length") != strconv.Itoa(len(data)) {
		t.Fatalf("%d %v, %d bytes", rec.Code, rec.Header(), rec.Body.Len())
	}
	if got := b.Received(); got[0].Header.Get("Accept-Encoding") != "gzip" {
		t.Fatalf("the cloud received %v", got[0].Header)
	}
}

// An answer mixmatch reads for its links is asked for uncompressed; a front end
// that compresses it anyway has it read and sent on plain, labelled as such.
func TestCompressedJSONIsSentPlain(t *testing.T) {
	var asked []string
	sp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.Header.Get("Accept-Encoding"))
		body := `{"volumes": [], "volumes_links": [{"rel": "next", "href": "http://` + r.Host + `/v3/8a1e/volumes?marker=x"}]}`
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(gzipped(t, []byte(body)))
	}))
	t.Cleanup(sp.Close)
	s := newSetup(t, withSPs("default"), withEndpoint("default", sp.URL))
	rec := s.do(t, "GET", "/volume/v3/8a1e/volumes", nil, "Accept-Encoding", "gzip, deflate")
	want := `{"volumes": [], "volumes_links": [{"rel": "next", "href": "http://example.com/volume/v3/8a1e/volumes?marker=x"}]}`
	if rec.Code != 200 || rec.Header().Get("Content-Encoding") != "" || rec.Body.String() != want ||
		rec.Header().Get("Content-Length") != strconv.Itoa(len(want)) {
		t.Fatalf("%d %v %q", rec.Code, rec.Header(), rec.Body)
	}
	if len(asked) != 1 || asked[0] != "" {
		t.Fatalf("the SP was asked with Accept-Encoding %q", asked)
	}
}

// What a client says about its call reaches the SP; its credentials and what it
// claims about where the call came from do not.
func TestRequestHeadersReachTheSP(t *testing.T) {
	s := newSetup(t)
	b := s.backends["default"]
	b.Add(fakecloud.Images, "", imageID, nil)
	sent := map[string]string{"If-None-Match": `"e1"`, "If-Match": `"e2"`, "If-Modified-Since": "Mon, 02 Jan 2006 15:04:05 GMT",
		"Accept-Language": "fr", "User-Agent": "openstacksdk/4.0", "X-Image-Meta-Name": "x",
		"OpenStack-API-Version": "image 2.5"}
	var headers []string
	for k, v := range sent {
		headers = append(headers, k, v)
	}
	headers = append(headers, "Authorization", "Basic c2VjcmV0", "Cookie", "session=1", "Forwarded", "host=evil.example",
		"Accept-Encoding", "gzip")
	s.do(t, "GET", "/image/v2/images/"+imageID, nil, headers...)
	got := b.Received()[0].Header
	for k, v := range sent {
		if got.Get(k) != v {
			t.Errorf("%s: %q reached the SP, want %q", k, got.Get(k), v)
		}
	}
	for _, k := range []string{"Authorization", "Cookie", "Forwarded", "Accept-Encoding"} {
		if got.Get(k) != "" {
			t.Errorf("%s reached the SP: %s", k, got.Get(k))
		}
	}
	s.do(t, "PUT", "/image/v2/images/"+imageID+"/file", strings.NewReader("data"), "Content-Type", "application/octet-stream",
		"Content-Encoding", "gzip")
	if got := b.Received()[1].Header; got.Get("Content-Encoding") != "gzip" {
		t.Errorf("upload: %v", got)
	}
}

// decodeBody decodes a JSON answer into v, or fails the test.
func decodeBody(t *testing.T, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
}
