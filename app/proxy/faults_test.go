package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mixmatch/app/dbtest"
	"mixmatch/app/keystone"
	"mixmatch/app/leaktest"
	"mixmatch/app/store"
)

// rawSP is a TCP server that misbehaves below HTTP: it never answers, or resets
// every connection. It counts the connections it accepted.
type rawSP struct {
	l        net.Listener
	accepted atomic.Int32
	mu       sync.Mutex
	conns    []net.Conn
}

func newRawSP(t *testing.T, reset bool) *rawSP {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawSP{l: l}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			if reset {
				c.(*net.TCPConn).SetLinger(0) // RST, as a crashing server's kernel sends
				c.Close()
				continue
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	return s
}

func (s *rawSP) URL() string { return "http://" + s.l.Addr().String() }

func serveWith(t testing.TB, h http.Handler, method, path string, body io.Reader, headers ...string) (*httptest.ResponseRecorder, time.Duration) {
	t.Helper()
	req := httptest.NewRequest(method, path, body)
	req.Header.Set("X-Auth-Token", localToken)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, req)
	return rec, time.Since(start)
}

// wantJSONError checks an answer is an error of that status in OpenStack's shape.
func wantJSONError(t *testing.T, what string, rec *httptest.ResponseRecorder, status int) {
	t.Helper()
	var body struct {
		Error struct {
			Code    int
			Message string
		}
	}
	if rec.Code != status || rec.Header().Get("Content-Type") != "application/json" ||
		json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Code != status || body.Error.Message == "" {
		t.Fatalf("%s: %d %q %s, want a %d with a JSON error body", what, rec.Code, rec.Header().Get("Content-Type"), rec.Body, status)
	}
}

func within(t *testing.T, what string, took, bound time.Duration) {
	t.Helper()
	if took > bound {
		t.Fatalf("%s took %s, more than %s", what, took, bound)
	}
}

// A wedged SP (connection accepted, nothing said) costs response_timeout once: a
// timeout is not retried.
func TestHangingSPIsA504(t *testing.T) {
	leaktest.Check(t)
	sp := newRawSP(t, false)
	h, _ := newHandler(t, spConf(map[string]string{"default": sp.URL()}, "sp:response_timeout = 1", "sp:retries = 2"))
	rec, took := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil)
	wantJSONError(t, "hanging SP", rec, 504)
	within(t, "hanging SP", took, 2500*time.Millisecond)
	if n := sp.accepted.Load(); n != 1 {
		t.Fatalf("%d connections to the hanging SP, want 1", n)
	}
}

// An SP that resets connections is retried for bodiless calls, then a 502.
func TestResettingSPIsA502(t *testing.T) {
	leaktest.Check(t)
	sp := newRawSP(t, true)
	h, _ := newHandler(t, spConf(map[string]string{"default": sp.URL()}, "sp:retries = 2"))
	rec, took := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil)
	wantJSONError(t, "GET at a resetting SP", rec, 502)
	within(t, "GET at a resetting SP", took, 2*time.Second)
	if n := sp.accepted.Load(); n != 3 {
		t.Fatalf("%d connections for a GET with retries = 2, want 3", n)
	}
	rec, _ = serveWith(t, h, "POST", "/image/v2/images", strings.NewReader(`{"name": "x"}`))
	wantJSONError(t, "POST at a resetting SP", rec, 502)
	if n := sp.accepted.Load(); n != 4 {
		t.Fatalf("a POST was sent %d times, want once", n-3)
	}
}

// Slow is not broken: an answer inside response_timeout arrives whole.
func TestSlowSPAnswers(t *testing.T) {
	leaktest.Check(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond) // the fault under test
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id": %q}`, imageID)
	}))
	t.Cleanup(slow.Close)
	h, _ := newHandler(t, spConf(map[string]string{"default": slow.URL}, "sp:response_timeout = 2"))
	rec, took := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), imageID) || took < 300*time.Millisecond {
		t.Fatalf("%d %s after %s", rec.Code, rec.Body, took)
	}
}

// An SP that breaks off a download it started: the client must see a broken answer
// (not a short body that looks whole), and the proxy goes on serving.
func TestSPBreakingOffMidStream(t *testing.T) {
	leaktest.Check(t)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/file") {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"images": []}`)
			return
		}
		w.Header().Set("Content-Length", "1048576")
		w.Write(bytes.Repeat([]byte("x"), 65536))
		w.(http.Flusher).Flush()
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close()
	}))
	t.Cleanup(broken.Close)
	h, _ := newHandler(t, spConf(map[string]string{"default": broken.URL}))
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)
	front.Config.ErrorLog = nil
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	get := func(path string) (int, int, error) {
		req, _ := http.NewRequest("GET", front.URL+path, nil)
		req.Header.Set("X-Auth-Token", localToken)
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, int(n), err
	}
	if status, n, err := get("/image/v2/images/" + imageID + "/file"); err == nil {
		t.Fatalf("a download broken off after 64 KiB read as complete: %d, %d bytes", status, n)
	}
	if status, _, err := get("/image/v2/images"); err != nil || status != 200 {
		t.Fatalf("after the broken download: %d %v", status, err)
	}
}

// One SP answering garbage to a list is skipped and named; all of them is a 502.
func TestInvalidJSONList(t *testing.T) {
	leaktest.Check(t)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"images": [{"id": "a", "created_at": `)
	}))
	t.Cleanup(garbage.Close)
	good := newBackend(t, "default")
	good.list = []map[string]any{{"id": "d1", "created_at": "2026-01-01T00:00:00Z"}}
	h, _ := newHandler(t, spConf(map[string]string{"default": good.server.URL, "remote1": garbage.URL}, "aggregation = true"))
	rec, _ := serveWith(t, h, "GET", "/image/v2/images", nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"d1"`) || rec.Header().Get("MM-Skipped-Service-Providers") != "remote1" {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	h, _ = newHandler(t, spConf(map[string]string{"default": garbage.URL, "remote1": garbage.URL}, "aggregation = true"))
	rec, _ = serveWith(t, h, "GET", "/image/v2/images", nil)
	wantJSONError(t, "every SP answering garbage", rec, 502)
}

// An SP that hangs during an aggregated list costs request_timeout at most; the list
// comes from the others.
func TestHangingSPInAnAggregatedList(t *testing.T) {
	leaktest.Check(t)
	sp := newRawSP(t, false)
	good := newBackend(t, "default")
	good.list = []map[string]any{{"id": "d1", "created_at": "2026-01-01T00:00:00Z"}}
	h, _ := newHandler(t, spConf(map[string]string{"default": good.server.URL, "remote1": sp.URL()},
		"aggregation = true", "request_timeout = 1"))
	rec, took := serveWith(t, h, "GET", "/image/v2/images", nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"d1"`) || rec.Header().Get("MM-Skipped-Service-Providers") != "remote1" {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	within(t, "aggregated list with a hanging SP", took, 2*time.Second)
}

// A broadcast does not wait for a hanging SP when another has the resource, and is
// bounded by request_timeout when none has.
func TestHangingSPInABroadcast(t *testing.T) {
	leaktest.Check(t)
	sp := newRawSP(t, false)
	local, holder := newBackend(t, "default"), newBackend(t, "remote2")
	holder.has[imageKey] = true
	h, _ := newHandler(t, spConf(map[string]string{"default": local.server.URL, "remote1": sp.URL(), "remote2": holder.server.URL},
		"search_by_broadcast = true", "request_timeout = 2"))
	rec, took := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote2"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	within(t, "broadcast with a hanging SP", took, time.Second)

	rec, took = serveWith(t, h, "GET", "/image/v2/images/0e4d8e4a-0000-4c5d-9e2f-1a2b3c4d5e6f", nil)
	wantJSONError(t, "broadcast that finds nothing", rec, 500)
	if !strings.Contains(rec.Body.String(), "remote1: 504") {
		t.Fatalf("the hanging SP is not named: %s", rec.Body)
	}
	within(t, "broadcast that finds nothing", took, 3*time.Second)
}

// Keystone down: refused at once is a 502, silent is a 504 after request_timeout.
func TestKeystoneDown(t *testing.T) {
	leaktest.Check(t)
	b := newBackend(t, "default")
	refused := newRawSP(t, false)
	refusedURL := refused.URL()
	refused.l.Close()
	silent := newRawSP(t, false)
	for _, tc := range []struct {
		name, url string
		status    int
		bound     time.Duration
	}{{"refused", refusedURL, 502, time.Second}, {"silent", silent.URL(), 504, 2 * time.Second}} {
		ks := keystone.NewClient(keystone.Options{AuthURL: tc.url + "/v3",
			Credentials: keystone.Credentials{Username: "mixmatch", Password: "secret", ProjectName: "service",
				UserDomainID: "default", ProjectDomainID: "default"},
			HTTP: &http.Client{Transport: &http.Transport{}, Timeout: 3 * time.Second}})
		h, _ := newHandlerWith(t, spConf(map[string]string{"default": b.server.URL}, "request_timeout = 1"),
			ks, slog.New(slog.DiscardHandler))
		rec, took := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil)
		wantJSONError(t, "Keystone "+tc.name, rec, tc.status)
		within(t, "Keystone "+tc.name, took, tc.bound)
	}
	if len(b.received()) != 0 {
		t.Fatal("a call went on without a validated token")
	}
}

// SQLite locked by another writer: reads go on, a create is answered within the
// learning bound, and its mapping is recorded once the lock is gone.
func TestLockedSQLite(t *testing.T) {
	leaktest.Check(t)
	b := newBackend(t, "default")
	remote := newBackend(t, "remote1")
	remote.has[imageKey] = true
	conn := dbtest.SQLite(t)
	var logs syncBuffer
	h, st := newHandlerOn(t, spConf(map[string]string{"default": b.server.URL, "remote1": remote.server.URL}), conn,
		testAuth(), slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	if err := st.Upsert(ctx, store.Mapping{ResourceType: "images", ResourceID: imageID, ResourceSP: "remote1", ProjectID: "p"}); err != nil {
		t.Fatal(err)
	}
	unlock := dbtest.LockSQLite(t, conn)
	if rec, _ := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil); rec.Code != 200 || !strings.Contains(rec.Body.String(), "remote1") {
		t.Fatalf("mapped GET with the database locked: %d %s", rec.Code, rec.Body)
	}
	rec, took := serveWith(t, h, "POST", "/image/v2/images", strings.NewReader(`{"name": "x"}`))
	if rec.Code != 201 {
		t.Fatalf("create with the database locked: %d %s", rec.Code, rec.Body)
	}
	within(t, "create with the database locked", took, 3*time.Second)
	if !strings.Contains(logs.String(), "answering before the mapping is recorded") {
		t.Fatalf("the late mapping was not logged: %s", logs.String())
	}
	var created struct{ ID string }
	json.Unmarshal(rec.Body.Bytes(), &created)
	unlock()
	h.(interface{ Drain() }).Drain()
	if m, err := st.Find(ctx, "images", created.ID); err != nil || m.ResourceSP != "default" {
		t.Fatalf("the mapping made while the database was locked: %+v %v; logs: %s", m, err, logs.String())
	}
}

// PostgreSQL in read-only mode (a standby, a full disk): calls go on, and nothing
// half-written is left.
func TestReadOnlyPostgreSQL(t *testing.T) {
	leaktest.Check(t)
	b := newBackend(t, "default")
	remote := newBackend(t, "remote1")
	remote.has[imageKey] = true
	conn := dbtest.PostgreSQL(t)
	ctx := context.Background()
	writer, err := store.Open(ctx, conn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	if _, err := writer.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := writer.Upsert(ctx, store.Mapping{ResourceType: "images", ResourceID: imageID, ResourceSP: "remote1", ProjectID: "p"}); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(conn)
	if _, err := writer.DB().ExecContext(ctx, fmt.Sprintf("ALTER DATABASE %q SET default_transaction_read_only = on", strings.TrimPrefix(u.Path, "/"))); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	h, st := newHandlerOn(t, spConf(map[string]string{"default": b.server.URL, "remote1": remote.server.URL}), conn,
		testAuth(), slog.New(slog.NewTextHandler(&logs, nil)))
	if rec, _ := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil); rec.Code != 200 || !strings.Contains(rec.Body.String(), "remote1") {
		t.Fatalf("mapped GET on a read-only database: %d %s", rec.Code, rec.Body)
	}
	rec, _ := serveWith(t, h, "POST", "/image/v2/images", strings.NewReader(`{"name": "x"}`))
	if rec.Code != 201 || !strings.Contains(logs.String(), "read-only transaction") {
		t.Fatalf("create on a read-only database: %d %s; logs: %s", rec.Code, rec.Body, logs.String())
	}
	if all, err := st.List(ctx, store.Filter{}); err != nil || len(all) != 1 {
		t.Fatalf("rows after the refused write: %d %v", len(all), err)
	}
}

// The database gone altogether: a resource is still found by broadcast.
func TestDatabaseGoneFallsBackToBroadcast(t *testing.T) {
	leaktest.Check(t)
	local, remote := newBackend(t, "default"), newBackend(t, "remote1")
	remote.has[imageKey] = true
	h, st := newHandler(t, spConf(map[string]string{"default": local.server.URL, "remote1": remote.server.URL},
		"search_by_broadcast = true"))
	st.Close()
	rec, _ := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote1"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// max_concurrent_requests: a call over the limit waits connect_timeout for a slot,
// then gets a 503 that says to retry; slots come back when calls end.
func TestConcurrentCallsPerSPAreBounded(t *testing.T) {
	leaktest.Check(t)
	b := newBackend(t, "default")
	b.has[imageKey] = true
	b.hang, b.arrived = make(chan struct{}), make(chan struct{}, 8)
	h, _ := newHandler(t, spConf(map[string]string{"default": b.server.URL}, "sp:max_concurrent_requests = 2", "sp:connect_timeout = 1"))
	codes := make(chan int, 2)
	for range 2 {
		go func() {
			rec, _ := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil)
			codes <- rec.Code
		}()
	}
	<-b.arrived
	<-b.arrived
	rec, took := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil)
	wantJSONError(t, "third call", rec, 503)
	if rec.Header().Get("Retry-After") == "" || took < time.Second || took > 2*time.Second {
		t.Fatalf("third call: Retry-After %q after %s", rec.Header().Get("Retry-After"), took)
	}
	close(b.hang)
	if a, c := <-codes, <-codes; a != 200 || c != 200 {
		t.Fatalf("the two calls in flight: %d %d", a, c)
	}
	for range 3 {
		if rec, _ := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil); rec.Code != 200 {
			t.Fatalf("after the slots came back: %d", rec.Code)
		}
		<-b.arrived
	}
}

func testAuth() auth {
	user := &keystone.Token{}
	user.Project.ID = "8a1e"
	return auth{localToken: user}
}

// syncBuffer is a log sink several goroutines write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// An SP at its max_concurrent_requests may hold the resource a broadcast looks for:
// the answer is a 503 to retry, not a 404.
func TestBusySPInABroadcast(t *testing.T) {
	leaktest.Check(t)
	local, busy := newBackend(t, "default"), newBackend(t, "remote1")
	busy.has[imageKey] = true
	busy.hang, busy.arrived = make(chan struct{}), make(chan struct{}, 4)
	h, st := newHandler(t, spConf(map[string]string{"default": local.server.URL, "remote1": busy.server.URL},
		"search_by_broadcast = true", "sp:max_concurrent_requests = 1", "sp:connect_timeout = 1"))
	if err := st.Upsert(context.Background(), store.Mapping{ResourceType: "images", ResourceID: imageID, ResourceSP: "remote1", ProjectID: "p"}); err != nil {
		t.Fatal(err)
	}
	held := make(chan int, 1)
	go func() {
		rec, _ := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil)
		held <- rec.Code
	}()
	<-busy.arrived
	rec, _ := serveWith(t, h, "GET", "/image/v2/images/5b1c7a7e-0000-4c5d-9e2f-1a2b3c4d5e6f", nil)
	wantJSONError(t, "broadcast with remote1 busy", rec, 503)
	if rec.Header().Get("Retry-After") == "" {
		t.Fatal("a 503 without Retry-After")
	}
	close(busy.hang)
	if code := <-held; code != 200 {
		t.Fatalf("the call that held the slot: %d", code)
	}
}
