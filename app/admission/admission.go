// Package admission bounds the calls one worker serves at once. Past the bound a
// call waits a little for a slot, and then, or at once when as many already wait,
// gets mixmatch's own 503 with Retry-After: under more load than it can serve, a
// worker keeps answering, quickly, rather than queueing without end until clients
// time out and memory runs out.
package admission

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"mixmatch/app/apierr"
	"mixmatch/app/reqlog"
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

// shedLogEvery is how often, at most, a line says how many calls were shed: a line
// per shed call cost more than its 503 and flooded the log under overload.
const shedLogEvery = 10 * time.Second

// Limiter admits at most max calls at once, and lets at most max more wait.
type Limiter struct {
	slots chan struct{}
	wait  time.Duration
	// Shed counts the calls refused.
	Shed atomic.Int64

	// now is the clock busySince is read with.
	now func() time.Time
	mu  sync.Mutex
	// waiting counts the calls waiting for a slot; busySince is when they began
	// to wait without a break.
	waiting   int
	busySince time.Time

	logger *slog.Logger
	// loggedAt is when the last summary line was written (unix ns); logged is
	// Shed then.
	loggedAt atomic.Int64
	logged   atomic.Int64
}

// New is a Limiter of max calls, each waiting at most wait for a slot; nil (no
// bound) when max is 0. Shed calls are summed up on logger.
func New(max int, wait time.Duration, logger *slog.Logger) *Limiter {
	if max <= 0 {
		return nil
	}
	return &Limiter{slots: make(chan struct{}, max), wait: wait, now: time.Now, logger: logger}
}

// Active is the number of calls being served.
func (l *Limiter) Active() int { return len(l.slots) }

// Waiting is the number of calls waiting for a slot.
func (l *Limiter) Waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiting
}

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
			reqlog.Quiet(r.Context())
			l.summarize()
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

// summarize logs how many calls were shed since its last line, at most once every
// shedLogEvery; the first shed call of a quiet spell is told at once.
func (l *Limiter) summarize() {
	now := l.now().UnixNano()
	last := l.loggedAt.Load()
	if now-last < int64(shedLogEvery) || !l.loggedAt.CompareAndSwap(last, now) {
		return
	}
	total := l.Shed.Load()
	shed := total - l.logged.Swap(total)
	if l.logger == nil {
		return
	}
	attrs := []any{"shed", shed, "max_active_requests", cap(l.slots)}
	if last != 0 {
		attrs = append(attrs, "since", time.Unix(0, last).UTC().Format(time.RFC3339))
	}
	l.logger.Warn("calls shed with a 503: max_active_requests were being served; at most one such line every "+
		shedLogEvery.String(), attrs...)
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
	if l.waiting >= cap(l.slots) {
		l.mu.Unlock()
		return false
	}
	now := l.now()
	if l.waiting++; l.waiting == 1 {
		l.busySince = now
	}
	wait := l.wait
	if now.Sub(l.busySince) > busyInterval {
		wait = min(wait, overloadWait)
	}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.waiting--
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
