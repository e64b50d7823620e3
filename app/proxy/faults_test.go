package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"mixmatch/app/dbtest"
	"mixmatch/app/fakecloud"
	"mixmatch/app/keystone"
	"mixmatch/app/leaktest"
	"mixmatch/app/store"
)

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

// A wedged SP (call received, nothing said) costs response_timeout once: a timeout
// is not retried.
func TestHangingSPIsA504(t *testing.T) {
	leaktest.Check(t)
	s := newSetup(t, withSPs("default"), withSPOption("response_timeout", "1"), withSPOption("retries", "2"))
	sp := s.backends["default"]
	sp.Hang() // until the proxy gives up
	rec, took := serveWith(t, s.handler, "GET", "/image/v2/images/"+imageID, nil)
	wantJSONError(t, "hanging SP", rec, 504)
	within(t, "hanging SP", took, 2500*time.Millisecond)
	if n := sp.Connections(); n != 1 {
		t.Fatalf("%d connections to the hanging SP, want 1", n)
	}
}

// An SP that resets connections is retried for bodiless calls, then a 502.
func TestResettingSPIsA502(t *testing.T) {
	leaktest.Check(t)
	s := newSetup(t, withSPs("default"), withSPOption("retries", "2"))
	sp := s.backends["default"]
	sp.ResetConnections()
	rec, took := serveWith(t, s.handler, "GET", "/image/v2/images/"+imageID, nil)
	wantJSONError(t, "GET at a resetting SP", rec, 502)
	within(t, "GET at a resetting SP", took, 2*time.Second)
	if n := sp.Connections(); n != 3 {
		t.Fatalf("%d connections for a GET with retries = 2, want 3", n)
	}
	rec, _ = serveWith(t, s.handler, "POST", "/image/v2/images", strings.NewReader(`{"name": "x"}`))
	wantJSONError(t, "POST at a resetting SP", rec, 502)
	if n := sp.Connections(); n != 4 {
		t.Fatalf("a POST was sent %d times, want once", n-3)
	}
}

// Slow is not broken: an answer inside response_timeout arrives whole.
func TestSlowSPAnswers(t *testing.T) {
	leaktest.Check(t)
	s := newSetup(t, withSPs("default"), withSPOption("response_timeout", "2"))
	s.backends["default"].Add(fakecloud.Images, "", imageID, nil)
	s.backends["default"].SlowHeaders(300 * time.Millisecond)
	rec, took := serveWith(t, s.handler, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), imageID) || took < 300*time.Millisecond {
		t.Fatalf("%d %s after %s", rec.Code, rec.Body, took)
	}
}

// An SP that breaks off a download it started: the client must see a broken answer
// (not a short body that looks whole), and the proxy goes on serving.
func TestSPBreakingOffMidStream(t *testing.T) {
	leaktest.Check(t)
	s := newSetup(t, withSPs("default"))
	broken := s.backends["default"]
	broken.Add(fakecloud.Images, "", imageID, nil)
	broken.PutData(imageID, bytes.Repeat([]byte("x"), 1<<20))
	broken.BreakAfter(65536) // the list is shorter: it arrives whole
	front := httptest.NewServer(s.handler)
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
	s := newSetup(t, withSPs("default", "remote1"), withAggregation())
	s.backends["default"].Add(fakecloud.Images, "", "d1", map[string]any{"created_at": "2026-01-01T00:00:00Z"})
	s.backends["remote1"].TruncateAfter(20)
	rec, _ := serveWith(t, s.handler, "GET", "/image/v2/images", nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"d1"`) || rec.Header().Get("MM-Skipped-Service-Providers") != "remote1" {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	s.backends["default"].TruncateAfter(20)
	rec, _ = serveWith(t, s.handler, "GET", "/image/v2/images", nil)
	wantJSONError(t, "every SP answering garbage", rec, 502)
}

// An SP that hangs during an aggregated list costs request_timeout at most; the list
// comes from the others.
func TestHangingSPInAnAggregatedList(t *testing.T) {
	leaktest.Check(t)
	s := newSetup(t, withSPs("default", "remote1"), withAggregation(), withOption("request_timeout", "1"))
	s.backends["default"].Add(fakecloud.Images, "", "d1", map[string]any{"created_at": "2026-01-01T00:00:00Z"})
	s.backends["remote1"].Hang()
	rec, took := serveWith(t, s.handler, "GET", "/image/v2/images", nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"d1"`) || rec.Header().Get("MM-Skipped-Service-Providers") != "remote1" {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	within(t, "aggregated list with a hanging SP", took, 2*time.Second)
}

// A broadcast does not wait for a hanging SP when another has the resource, and is
// bounded by request_timeout when none has.
func TestHangingSPInABroadcast(t *testing.T) {
	leaktest.Check(t)
	s := newSetup(t, withBroadcast(), withOption("request_timeout", "2"))
	s.backends["remote1"].Hang()
	s.backends["remote2"].Add(fakecloud.Images, "", imageID, nil)
	h := s.handler
	rec, took := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote2"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	within(t, "broadcast with a hanging SP", took, time.Second)

	rec, took = serveWith(t, h, "GET", "/image/v2/images/0e4d8e4a00004c5d9e2f1a2b3c4d5e6f", nil)
	wantJSONError(t, "broadcast that finds nothing", rec, 500)
	if !strings.Contains(rec.Body.String(), "remote1: 504") {
		t.Fatalf("the hanging SP is not named: %s", rec.Body)
	}
	within(t, "broadcast that finds nothing", took, 3*time.Second)
}

// Keystone down: refused at once is a 502, silent is a 504 after request_timeout.
func TestKeystoneDown(t *testing.T) {
	leaktest.Check(t)
	refused := newCloud(t, "keystone")
	refusedURL := refused.URL()
	refused.Close()
	silent := newCloud(t, "keystone")
	silent.Hang()
	for _, tc := range []struct {
		name, url string
		status    int
		bound     time.Duration
	}{{"refused", refusedURL, 502, time.Second}, {"silent", silent.URL(), 504, 2 * time.Second}} {
		ks := keystone.NewClient(keystone.Options{AuthURL: tc.url + "/v3",
			Credentials: keystone.Credentials{Username: "mixmatch", Password: "secret", ProjectName: "service",
				UserDomainID: "default", ProjectDomainID: "default"},
			HTTP: &http.Client{Transport: &http.Transport{}, Timeout: 3 * time.Second}})
		s := newSetup(t, withSPs("default"), withOption("request_timeout", "1"), withAuth(ks))
		rec, took := serveWith(t, s.handler, "GET", "/image/v2/images/"+imageID, nil)
		wantJSONError(t, "Keystone "+tc.name, rec, tc.status)
		within(t, "Keystone "+tc.name, took, tc.bound)
		if len(s.backends["default"].Received()) != 0 {
			t.Fatal("a call went on without a validated token")
		}
	}
}

// SQLite locked by another writer: reads go on, a create is answered within the
// learning bound, and its mapping is recorded once the lock is gone.
func TestLockedSQLite(t *testing.T) {
	leaktest.Check(t)
	conn := dbtest.SQLite(t)
	var logs syncBuffer
	s := newSetup(t, withSPs("default", "remote1"), withStore(conn), withLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	s.backends["remote1"].Add(fakecloud.Images, "", imageID, nil)
	h, st := s.handler, s.store
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
	s := newSetup(t, withSPs("default", "remote1"), withStore(conn), withLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	s.backends["remote1"].Add(fakecloud.Images, "", imageID, nil)
	h, st := s.handler, s.store
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
	s := newSetup(t, withSPs("default", "remote1"), withBroadcast())
	s.backends["remote1"].Add(fakecloud.Images, "", imageID, nil)
	s.store.Close()
	rec, _ := serveWith(t, s.handler, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote1"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// max_concurrent_requests: a call over the limit waits connect_timeout for a slot,
// then gets a 503 that says to retry; slots come back when calls end.
func TestConcurrentCallsPerSPAreBounded(t *testing.T) {
	leaktest.Check(t)
	s := newSetup(t, withSPs("default"), withSPOption("max_concurrent_requests", "2"), withSPOption("connect_timeout", "1"))
	b, h := s.backends["default"], s.handler
	b.Add(fakecloud.Images, "", imageID, nil)
	release := b.Hang()
	codes := make(chan int, 2)
	for range 2 {
		go func() {
			rec, _ := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil)
			codes <- rec.Code
		}()
	}
	<-b.Arrived(2)
	rec, took := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil)
	wantJSONError(t, "third call", rec, 503)
	if rec.Header().Get("Retry-After") == "" || took < time.Second || took > 2*time.Second {
		t.Fatalf("third call: Retry-After %q after %s", rec.Header().Get("Retry-After"), took)
	}
	release()
	if a, c := <-codes, <-codes; a != 200 || c != 200 {
		t.Fatalf("the two calls in flight: %d %d", a, c)
	}
	for range 3 {
		if rec, _ := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil); rec.Code != 200 {
			t.Fatalf("after the slots came back: %d", rec.Code)
		}
	}
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
	s := newSetup(t, withSPs("default", "remote1"), withBroadcast(), withSPOption("max_concurrent_requests", "1"),
		withSPOption("connect_timeout", "1"))
	busy, h, st := s.backends["remote1"], s.handler, s.store
	busy.Add(fakecloud.Images, "", imageID, nil)
	release := busy.Hang()
	if err := st.Upsert(context.Background(), store.Mapping{ResourceType: "images", ResourceID: imageID, ResourceSP: "remote1", ProjectID: "p"}); err != nil {
		t.Fatal(err)
	}
	held := make(chan int, 1)
	go func() {
		rec, _ := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil)
		held <- rec.Code
	}()
	<-busy.Arrived(1)
	rec, _ := serveWith(t, h, "GET", "/image/v2/images/5b1c7a7e00004c5d9e2f1a2b3c4d5e6f", nil)
	wantJSONError(t, "broadcast with remote1 busy", rec, 503)
	if rec.Header().Get("Retry-After") == "" {
		t.Fatal("a 503 without Retry-After")
	}
	release()
	if code := <-held; code != 200 {
		t.Fatalf("the call that held the slot: %d", code)
	}
}
