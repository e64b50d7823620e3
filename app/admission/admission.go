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

// Limiter admits at most max calls at once, at most limit of them young (see
// Govern), and lets at most limit more wait: limit is max_active_requests unless
// the worker's CPU is the bottleneck, and a queue longer than the calls served at
// once only adds its wait to each.
type Limiter struct {
	max  int
	wait time.Duration
	// Shed counts the calls refused.
	Shed atomic.Int64

	// now is the clock busySince is read with.
	now func() time.Time
	mu  sync.Mutex
	// active counts the calls holding a slot; queue is the calls waiting for one,
	// first come first served, and busySince is when they began to wait without
	// a break.
	active    int
	queue     []*waiter
	busySince time.Time
	// young[i] counts the calls still running that were admitted in the interval
	// numbered i modulo youngIntervals, and youngSum all of them; interval is the
	// number of the current one.
	limit    int
	young    [youngIntervals]int
	youngSum int
	interval uint64
	// busiest is the most young calls at once in the current interval; arrived
	// and finished count the calls that came in it (shed ones too) and ended.
	busiest, arrived, finished int

	logger *slog.Logger
	// loggedAt is when the last summary line was written (unix ns); logged is
	// Shed then.
	loggedAt atomic.Int64
	logged   atomic.Int64
}

// waiter is a call waiting for a slot: ready is closed when it is given one,
// in the interval numbered admitted.
type waiter struct {
	ready    chan struct{}
	granted  bool
	admitted uint64
}

// New is a Limiter of max calls, each waiting at most wait for a slot; nil (no
// bound) when max is 0. Shed calls are summed up on logger.
func New(max int, wait time.Duration, logger *slog.Logger) *Limiter {
	if max <= 0 {
		return nil
	}
	return &Limiter{max: max, limit: max, wait: wait, now: time.Now, logger: logger}
}

// Active is the number of calls being served.
func (l *Limiter) Active() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active
}

// Waiting is the number of calls waiting for a slot.
func (l *Limiter) Waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// Limit is the number of calls served at once, at most max_active_requests.
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
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
		admitted, ok := l.enter(r)
		if !ok {
			l.Shed.Add(1)
			reqlog.Quiet(r.Context())
			l.summarize()
			w.Header().Set("Retry-After", "1")
			apierr.Write(w, http.StatusServiceUnavailable, fmt.Sprintf(
				"mixmatch is serving as many calls as it may at once (%d now; max_active_requests = %d); try again in a second",
				l.Limit(), l.max))
			return
		}
		defer l.leave(admitted)
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
	attrs := []any{"shed", shed, "max_active_requests", l.max, "limit", l.Limit()}
	if last != 0 {
		attrs = append(attrs, "since", time.Unix(0, last).UTC().Format(time.RFC3339))
	}
	l.logger.Warn("calls shed with a 503: max_active_requests were being served; at most one such line every "+
		shedLogEvery.String(), attrs...)
}

// enter takes a slot, waiting at most l.wait and only while fewer wait than the
// limit; false when it got none. admitted numbers the interval it got it in.
func (l *Limiter) enter(r *http.Request) (admitted uint64, ok bool) {
	l.mu.Lock()
	l.arrived++
	if len(l.queue) == 0 && l.free() {
		admitted = l.admit()
		l.mu.Unlock()
		return admitted, true
	}
	if len(l.queue) >= l.limit {
		l.mu.Unlock()
		return 0, false
	}
	now := l.now()
	if len(l.queue) == 0 {
		l.busySince = now
	}
	wait := l.wait
	if now.Sub(l.busySince) > busyInterval {
		wait = min(wait, overloadWait)
	}
	me := &waiter{ready: make(chan struct{})}
	l.queue = append(l.queue, me)
	l.mu.Unlock()

	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-me.ready:
		return me.admitted, true
	case <-t.C:
	case <-r.Context().Done():
	}
	return me.admitted, l.giveUp(me)
}

// free is whether one more call may be admitted; l.mu is held.
func (l *Limiter) free() bool { return l.active < l.max && l.youngSum < l.limit }

// admit counts a call in; l.mu is held.
func (l *Limiter) admit() uint64 {
	l.active++
	l.young[l.interval%youngIntervals]++
	l.youngSum++
	l.busiest = max(l.busiest, l.youngSum)
	return l.interval
}

// giveUp takes a waiter whose wait ended out of the queue; true when it was given
// a slot meanwhile, which is then its own to free.
func (l *Limiter) giveUp(me *waiter) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if me.granted {
		return true
	}
	for i, w := range l.queue {
		if w == me {
			l.queue = append(l.queue[:i], l.queue[i+1:]...)
			break
		}
	}
	return false
}

// leave frees the slot of a call admitted in the interval numbered admitted, and
// gives it to the call waiting longest.
func (l *Limiter) leave(admitted uint64) {
	l.mu.Lock()
	l.active--
	l.finished++
	if l.interval-admitted < youngIntervals {
		l.young[admitted%youngIntervals]--
		l.youngSum--
	}
	l.admitWaiting()
	l.mu.Unlock()
}

// admitWaiting gives the free slots to the calls waiting longest; l.mu is held.
func (l *Limiter) admitWaiting() {
	for len(l.queue) > 0 && l.free() {
		w := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		w.admitted = l.admit()
		w.granted = true
		close(w.ready)
	}
}
