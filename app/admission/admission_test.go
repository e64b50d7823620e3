package admission

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"mixmatch/app/reqlog"
)

// gate holds every call in the handler until released.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 100), release: make(chan struct{})} }

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.entered <- struct{}{}
	<-g.release
	w.WriteHeader(http.StatusNoContent)
}

func call(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}

// untilWaiting spins until n calls wait for a slot.
func untilWaiting(l *Limiter, n int) {
	for l.Waiting() != n {
		runtime.Gosched()
	}
}

func TestAFullWorkerShedsWithA503AndRetryAfter(t *testing.T) {
	l := New(1, time.Hour, nil)
	g := newGate()
	h := l.Middleware(g)
	var wg sync.WaitGroup
	results := make(chan int, 2)
	wg.Add(2)
	go func() { defer wg.Done(); results <- call(h, "/image/v2/images").Code }()
	<-g.entered
	go func() { defer wg.Done(); results <- call(h, "/image/v2/images").Code }()
	untilWaiting(l, 1)
	// One served, one waiting: as many wait as may be served, so the next is
	// refused at once, however long a wait would be allowed.
	rec := call(h, "/image/v2/images")
	var body struct{ Error struct{ Code int } }
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "1" || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Code != 503 {
		t.Fatalf("third call: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if l.Shed.Load() != 1 {
		t.Fatalf("shed %d, want 1", l.Shed.Load())
	}
	// The health check still answers.
	if rec := call(l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})), "/healthcheck"); rec.Code != 200 {
		t.Fatalf("health check while full: %d", rec.Code)
	}
	// The waiting call is served once the first is done.
	g.release <- struct{}{}
	<-g.entered
	g.release <- struct{}{}
	wg.Wait()
	close(results)
	for code := range results {
		if code != http.StatusNoContent {
			t.Fatalf("an admitted call got %d", code)
		}
	}
	if l.Active() != 0 || l.Waiting() != 0 {
		t.Fatalf("%d active, %d waiting after all calls ended", l.Active(), l.Waiting())
	}
}

func TestAWaitEndsInA503(t *testing.T) {
	l := New(1, time.Millisecond, nil)
	g := newGate()
	h := l.Middleware(g)
	done := make(chan struct{})
	go func() { call(h, "/volume/v3/p/volumes"); close(done) }()
	<-g.entered
	if rec := call(h, "/volume/v3/p/volumes"); rec.Code != 503 {
		t.Fatalf("a call that waited out its time: %d", rec.Code)
	}
	close(g.release)
	<-done
}

func TestNoBoundWithZero(t *testing.T) {
	if New(0, time.Second, nil) != nil {
		t.Fatal("max_active_requests = 0 still bounds")
	}
	var l *Limiter
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	if rec := call(l.Middleware(h), "/image"); rec.Code != 200 {
		t.Fatalf("%d", rec.Code)
	}
}

// Calls that keep waiting without a break mean overload: a new call then waits
// only overloadWait, not admission_wait, and the queue stops adding its wait to
// the calls served. A burst shorter than busyInterval waits as long as allowed.
func TestAQueueThatNeverEmptiesWaitsLittle(t *testing.T) {
	for _, c := range []struct {
		name      string
		busyFor   time.Duration
		wantLater int // the second waiter's answer
	}{
		{"a burst", busyInterval / 2, http.StatusNoContent},
		{"overload", 2 * busyInterval, http.StatusServiceUnavailable},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := New(2, time.Hour, nil)
			var mu sync.Mutex
			clock := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
			l.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
			g := newGate()
			h := l.Middleware(g)
			codes := make(chan int, 4)
			hold(h, g, 2, "/image/v2/images", codes)
			first := make(chan int, 1)
			go func() { first <- call(h, "/image/v2/images").Code }()
			untilWaiting(l, 1)
			mu.Lock()
			clock = clock.Add(c.busyFor)
			mu.Unlock()
			later := make(chan int, 1)
			go func() { later <- call(h, "/image/v2/images").Code }()
			if c.wantLater == http.StatusServiceUnavailable {
				select {
				case code := <-later:
					if code != c.wantLater {
						t.Fatalf("a call into a queue busy for %v: %d, want %d", c.busyFor, code, c.wantLater)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("a call into a queue busy for %v still waits, as if for admission_wait", c.busyFor)
				}
			} else {
				untilWaiting(l, 2)
			}
			// Every held call ends; whoever waited on is served.
			close(g.release)
			for i := 0; i < 2; i++ {
				if code := <-codes; code != http.StatusNoContent {
					t.Fatalf("a held call: %d", code)
				}
			}
			if code := <-first; code != http.StatusNoContent {
				t.Fatalf("the first waiter: %d", code)
			}
			if c.wantLater == http.StatusNoContent {
				if code := <-later; code != http.StatusNoContent {
					t.Fatalf("a call into a queue busy for %v: %d, want it served", c.busyFor, code)
				}
			}
		})
	}
}

// A shed call writes no line of its own: one line sums them up, at most every
// shedLogEvery, while the request metric still counts each.
func TestShedCallsAreSummedUpNotLoggedOneByOne(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	l := New(1, time.Millisecond, logger)
	clock := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return clock }
	g := newGate()
	var observed []int
	h := reqlog.Middleware(logger, func(_, _, _ string, status int) { observed = append(observed, status) }, l.Middleware(g))
	done := make(chan struct{})
	go func() { call(h, "/image/v2/images"); close(done) }()
	<-g.entered
	for i := 0; i < 3; i++ {
		if rec := call(h, "/image/v2/images"); rec.Code != 503 {
			t.Fatalf("call %d: %d", i, rec.Code)
		}
	}
	clock = clock.Add(shedLogEvery)
	call(h, "/image/v2/images")
	close(g.release)
	<-done
	out := buf.String()
	if n := strings.Count(out, "msg=request "); n != 1 {
		t.Fatalf("%d request lines, want only the served call's:\n%s", n, out)
	}
	summaries := strings.Count(out, "calls shed with a 503")
	if summaries != 2 || !strings.Contains(out, "shed=1 ") || !strings.Contains(out, "shed=3 ") {
		t.Fatalf("want a line for the first shed call, then one for the 3 after it:\n%s", out)
	}
	if len(observed) != 5 {
		t.Fatalf("the request metric saw %d calls, want 5", len(observed))
	}
}
