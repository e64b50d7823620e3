package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"mixmatch/app/apierr"
	"mixmatch/app/config"
	"mixmatch/app/extend"
)

func TestRoutes(t *testing.T) {
	h := NewRouter(&config.Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apierr.Write(w, http.StatusNotImplemented, "proxied")
	}), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apierr.Write(w, http.StatusTeapot, "health")
	}), extend.Deps{})
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/", 404},
		{"GET", "/healthcheck", 418},
		{"POST", "/healthcheck", 404},
		{"GET", "/compute/v2.1/servers", 404},
		{"DELETE", "/images", 404},
		{"GET", "/imagefoo", 404},
		{"GET", "/image", 501},
		{"GET", "/image/v2/images", 501},
		{"POST", "/volume/v3/8a1e/volumes", 501},
		{"GET", "/network/v2.0/networks", 501},
		{"GET", "/image/v2/../v2/images", 400},
		{"GET", "/healthcheck//", 400},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		var body struct {
			Error struct{ Code int } `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != tc.status ||
			body.Error.Code != tc.status || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s = %d %q, want %d with a JSON body", tc.method, tc.path, rec.Code, rec.Body, tc.status)
		}
	}
}

// Through a real net/http server, as under --http: nothing redirects a path to a
// cleaned one, and every path that is not as the services read it is one JSON 400.
func TestMalformedPathsAre400(t *testing.T) {
	proxied := 0
	srv := httptest.NewServer(NewRouter(&config.Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied++
		apierr.Write(w, http.StatusNotImplemented, "proxied")
	}), nil, extend.Deps{}))
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/image/v2/../v2/images", "/image/./v2/images", "//image/v2/images", "/image//v2/images",
		"/volume/v3/8a1e/volumes/%2e%2e/%2e%2e", "/image/v2/images/a%2Fb", "/healthcheck/..", "/compute//x",
		"/image/v2/images/0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f/tags/x%2F..%2F.."} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code int } `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 400 || body.Error.Code != 400 || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s = %d %+v (%v), want a JSON 400", path, resp.StatusCode, body, err)
		}
	}
	if proxied != 0 {
		t.Fatalf("%d malformed paths reached the proxy", proxied)
	}
	// A trailing slash is the services' to judge; a % that starts no escape never
	// reaches a handler: net/http answers a plain-text 400 itself.
	resp, err := client.Get(srv.URL + "/image/v2/images/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 501 {
		t.Fatalf("trailing slash: %d", resp.StatusCode)
	}
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /image/v2/images/%%zz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("%%zz: %v %v", resp, err)
	}
}
