package admission

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"
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
func untilWaiting(l *Limiter, n int64) {
	for l.waiting.Load() != n {
		runtime.Gosched()
	}
}

func TestAFullWorkerShedsWithA503AndRetryAfter(t *testing.T) {
	l := New(1, time.Hour)
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
	if l.Active() != 0 || l.waiting.Load() != 0 {
		t.Fatalf("%d active, %d waiting after all calls ended", l.Active(), l.waiting.Load())
	}
}

func TestAWaitEndsInA503(t *testing.T) {
	l := New(1, time.Millisecond)
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
	if New(0, time.Second) != nil {
		t.Fatal("max_active_requests = 0 still bounds")
	}
	var l *Limiter
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	if rec := call(l.Middleware(h), "/image"); rec.Code != 200 {
		t.Fatalf("%d", rec.Code)
	}
}
