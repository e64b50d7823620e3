package serve

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// panicky panics as a broken upstream stream makes httputil.ReverseProxy panic, or
// as a bug would.
var panicky = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/abort":
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte("partial"))
		panic(http.ErrAbortHandler)
	case "/bug":
		var m map[string]int
		m["x"] = 1
	}
	w.Write([]byte("alive"))
})

// Under FastCGI a panic would end the worker and every request it serves; the
// worker answers the next request after both kinds, and an aborted answer does not
// end as a whole one.
func TestFastCGIWorkerSurvivesPanics(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "mixmatch.sock")
	l, err := Listen(Frontend{FCGI: "unix:" + sock})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, l, true, panicky, slog.New(slog.NewTextHandler(&logs, nil))) }()
	defer func() { cancel(); <-served }()

	// An aborted answer breaks the connection, so that Apache cuts the client's.
	if got, ended := fcgiTry(t, "unix", sock, "/abort"); !strings.Contains(got, "partial") || ended {
		t.Fatalf("/abort = %q, ended with END_REQUEST: %v", got, ended)
	}
	got := fcgiGet(t, "unix", sock, "/bug")
	if !strings.Contains(got, "Status: 500") || !strings.Contains(got, `"code":500`) {
		t.Fatalf("/bug = %q, want a 500 with a JSON body", got)
	}
	if got := fcgiGet(t, "unix", sock, "/ok"); !strings.Contains(got, "alive") {
		t.Fatalf("after two panics /ok = %q", got)
	}
	if !strings.Contains(logs.String(), "answer cut short") || !strings.Contains(logs.String(), "assignment to entry in nil map") {
		t.Fatalf("logs = %s", logs.String())
	}
}

// Over HTTP an aborted answer must reach the client as a cut connection, not as a
// short body that looks whole; a bug is a 500 with a JSON body.
func TestHTTPPanics(t *testing.T) {
	srv := httptest.NewServer(recoverer(panicky, nil, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	srv.Config.ErrorLog = nil
	resp, err := http.Get(srv.URL + "/abort")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("an aborted answer read as complete")
	}
	resp, err = http.Get(srv.URL + "/bug")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Contains(body, []byte(`"code":500`)) {
		t.Fatalf("/bug = %d %q", resp.StatusCode, body)
	}
}

func TestLimitHeaders(t *testing.T) {
	h := LimitHeaders(2048, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	for _, tc := range []struct {
		size int
		want int
	}{{100, 204}, {1900, 204}, {2100, http.StatusRequestHeaderFieldsTooLarge}} {
		req := httptest.NewRequest("GET", "/image/v2/images", nil)
		req.Header.Set("X-Big", strings.Repeat("a", tc.size))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%d-byte header: %d, want %d", tc.size, rec.Code, tc.want)
		}
		if rec.Code == 431 && !strings.Contains(rec.Body.String(), "max_request_header_size") {
			t.Errorf("431 body = %s", rec.Body.String())
		}
	}
}
