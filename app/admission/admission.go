// Package admission bounds the calls one worker serves at once. Past the bound a
// call waits a little for a slot, and then, or at once when as many already wait,
// gets mixmatch's own 503 with Retry-After: under more load than it can serve, a
// worker keeps answering, quickly, rather than queueing without end until clients
// time out and memory runs out.
package admission

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"mixmatch/app/apierr"
)

// A wait for a slot is the worker's queue, and a queue that never empties only
// adds its wait to every call served: as CoDel does for packets, once calls have
// been waiting without a break for longer than busyInterval, a new one waits at
// most overloadWait. A burst still waits up to admission_wait and is served; under
// overload the calls served keep their latency and the rest get their 503 at
// once.
const (
	busyInterval = 100 * time.Millisecond
	overloadWait = 10 * time.Millisecond
)

// Limiter admits at most max calls at once, and lets at most max more wait.
type Limiter struct {
	slots   chan struct{}
	waiting atomic.Int64
	wait    time.Duration
	// Shed counts the calls refused.
	Shed atomic.Int64

	// now is the clock busySince is read with.
	now func() time.Time
	mu  sync.Mutex
	// busySince is when calls began to wait without a break (zero: none waits).
	busySince time.Time
}

// New is a Limiter of max calls, each waiting at most wait for a slot; nil (no
// bound) when max is 0.
func New(max int, wait time.Duration) *Limiter {
	if max <= 0 {
		return nil
	}
	return &Limiter{slots: make(chan struct{}, max), wait: wait, now: time.Now}
}

// Active is the number of calls being served.
func (l *Limiter) Active() int { return len(l.slots) }

// Middleware admits calls to next. The health check is never held back: a load
// balancer must tell a busy worker from a dead one.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthcheck" {
			next.ServeHTTP(w, r)
			return
		}
		if !l.enter(r) {
			l.Shed.Add(1)
			w.Header().Set("Retry-After", "1")
			apierr.Write(w, http.StatusServiceUnavailable, fmt.Sprintf(
				"mixmatch is serving as many calls as it may at once (max_active_requests = %d); try again in a second",
				cap(l.slots)))
			return
		}
		defer func() { <-l.slots }()
		next.ServeHTTP(w, r)
	})
}

// enter takes a slot, waiting at most l.wait and only while fewer than the number
// of slots wait too; false when it got none.
func (l *Limiter) enter(r *http.Request) bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
	}
	l.mu.Lock()
	if l.waiting.Load() >= int64(cap(l.slots)) {
		l.mu.Unlock()
		return false
	}
	now := l.now()
	if l.waiting.Add(1) == 1 {
		l.busySince = now
	}
	wait := l.wait
	if now.Sub(l.busySince) > busyInterval {
		wait = min(wait, overloadWait)
	}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.waiting.Add(-1)
		l.mu.Unlock()
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-r.Context().Done():
		return false
	}
}
