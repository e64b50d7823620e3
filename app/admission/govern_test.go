package admission

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// hold starts n calls of path that enter the handler and stay there until g
// releases them; their statuses go to codes.
func hold(h http.Handler, g *gate, n int, path string, codes chan<- int) {
	for i := 0; i < n; i++ {
		go func() { codes <- call(h, path).Code }()
		<-g.entered
	}
}

// serving is a limiter of max calls whose handler holds n of them; their
// statuses go to the channel returned, which has room for 2*max.
func serving(max, n int) (*Limiter, http.Handler, *gate, chan int) {
	l := New(max, time.Hour, nil)
	g := newGate()
	h := l.Middleware(g)
	codes := make(chan int, 2*max)
	hold(h, g, n, "/image/v2/images", codes)
	return l, h, g, codes
}

// allServed reads n statuses from codes, each a call served.
func allServed(t *testing.T, codes <-chan int, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if code := <-codes; code != http.StatusNoContent {
			t.Fatalf("a call: %d", code)
		}
	}
}

// overloaded ends an interval in which the worker used every slot of its limit,
// calls came faster than they ended, and its goroutines waited long for a CPU.
func overloaded(l *Limiter) {
	l.mu.Lock()
	l.busiest, l.arrived, l.finished = l.limit, 200, 100
	l.mu.Unlock()
	l.tune(time.Second)
}

// Clients that each wait for their answer bring no more calls than the worker
// ends: however slowly the worker's goroutines are scheduled, the limit stays.
func TestAClosedLoopKeepsTheLimit(t *testing.T) {
	l := New(16, time.Hour, nil)
	for i := 0; i < 5; i++ {
		l.mu.Lock()
		l.busiest, l.arrived, l.finished = l.limit, 105, 100
		l.mu.Unlock()
		l.tune(time.Second)
	}
	if l.Limit() != 16 {
		t.Fatalf("limit %d under a closed loop, want 16", l.Limit())
	}
}

// The CPU the worker shares may be busy for other services' sake: a worker that
// used less than half its limit keeps it, whatever the scheduler latency.
func TestALightlyUsedWorkerKeepsItsLimit(t *testing.T) {
	l, h, g, done := serving(16, 7)
	for i := 0; i < 5; i++ {
		l.tune(time.Second)
	}
	if l.Limit() != 16 {
		t.Fatalf("limit %d with 7 of 16 slots used, want 16", l.Limit())
	}
	hold(h, g, 1, "/image/v2/images", done)
	l.tune(time.Second) // 8 of 16: half used, and slow to be scheduled
	if l.Limit() != 16-16/5 {
		t.Fatalf("limit %d with 8 of 16 slots used, want %d", l.Limit(), 16-16/5)
	}
	close(g.release)
	allServed(t, done, 8)
}

// Intervals whose scheduler latency passes the target cut the limit to its
// floor; good ones give an eighth of it back (at least one), up to
// max_active_requests.
func TestTheLimitFollowsTheSchedulerLatency(t *testing.T) {
	l := New(64, time.Hour, nil)
	var limits []int
	for i := 0; i < 20; i++ {
		overloaded(l)
		limits = append(limits, l.Limit())
	}
	for i := 1; i < len(limits); i++ {
		if limits[i] > limits[i-1] || (limits[i-1] > minLimit && limits[i] == limits[i-1]) {
			t.Fatalf("limits under overload: %v, want each lower until %d", limits, minLimit)
		}
	}
	if l.Limit() != minLimit {
		t.Fatalf("limit %d after 20 overloaded intervals, want the floor %d", l.Limit(), minLimit)
	}
	l.tune(schedTarget)
	if l.Limit() != minLimit+1 {
		t.Fatalf("limit %d after a good interval, want %d", l.Limit(), minLimit+1)
	}
	for i := 0; i < 100; i++ {
		l.tune(0)
	}
	if l.Limit() != 64 {
		t.Fatalf("limit %d after 100 good intervals, want max_active_requests", l.Limit())
	}
	// A max_active_requests under the floor is left as the operator set it.
	small := New(2, time.Hour, nil)
	for i := 0; i < 5; i++ {
		overloaded(small)
	}
	if small.Limit() != 2 {
		t.Fatalf("max_active_requests 2: limit %d", small.Limit())
	}
}

// A lower limit holds new calls back until enough calls end; a higher one lets
// the waiting in at once.
func TestALowerLimitHoldsCallsBackAndAHigherOneLetsThemIn(t *testing.T) {
	l, h, g, codes := serving(8, 6)
	for l.Limit() > minLimit {
		overloaded(l)
	}
	// 6 served, limit 4: the next waits though 2 of max_active_requests are free.
	go func() { codes <- call(h, "/image/v2/images").Code }()
	untilWaiting(l, 1)
	for i := 0; i < 2; i++ {
		g.release <- struct{}{}
	}
	allServed(t, codes, 2)
	if l.Waiting() != 1 || l.Active() != 4 {
		t.Fatalf("%d waiting, %d active with the limit at 4: want 1 and 4", l.Waiting(), l.Active())
	}
	l.tune(0)
	<-g.entered
	if l.Waiting() != 0 || l.Active() != 5 {
		t.Fatalf("%d waiting, %d active once the limit is 5: want 0 and 5", l.Waiting(), l.Active())
	}
	close(g.release)
	allServed(t, codes, 5)
	if l.Active() != 0 {
		t.Fatalf("%d active after all ended", l.Active())
	}
}

// No more calls wait than the limit lets be served at once: a longer queue only
// adds its wait to every call.
func TestNoMoreWaitThanTheLimit(t *testing.T) {
	l := New(16, time.Hour, nil)
	for l.Limit() > minLimit {
		overloaded(l)
	}
	g := newGate()
	h := l.Middleware(g)
	codes := make(chan int, 2*minLimit)
	hold(h, g, minLimit, "/image/v2/images", codes)
	for i := 0; i < minLimit; i++ {
		go func() { codes <- call(h, "/image/v2/images").Code }()
		untilWaiting(l, i+1)
	}
	extra := make(chan int, 1)
	go func() { extra <- call(h, "/image/v2/images").Code }()
	select {
	case code := <-extra:
		if code != http.StatusServiceUnavailable {
			t.Fatalf("a call with %d served and %d waiting: %d, want a 503", minLimit, minLimit, code)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("a call with %d served and %d waiting still waits", minLimit, minLimit)
	}
	close(g.release)
	allServed(t, codes, 2*minLimit)
}

// The limit bounds the calls admitted in the last second only: calls that last
// longer (an image streaming, an SP slow to answer) wait on the network, and must
// not hold the slots of a lowered limit. max_active_requests still bounds them.
func TestOnlyYoungCallsCountAgainstALoweredLimit(t *testing.T) {
	l := New(6, time.Hour, nil)
	g := newGate()
	h := l.Middleware(g)
	for l.Limit() > minLimit {
		overloaded(l)
	}
	codes := make(chan int, 8)
	hold(h, g, minLimit, "/image/v2/images/x/file", codes)
	go func() { codes <- call(h, "/image/v2/images").Code }()
	untilWaiting(l, 1)
	for i := 0; i < youngIntervals-1; i++ {
		overloaded(l)
	}
	if l.Waiting() != 1 {
		t.Fatalf("%d waiting while the held calls are younger than a second, want 1", l.Waiting())
	}
	overloaded(l) // the held calls are a second old
	<-g.entered
	hold(h, g, 1, "/image/v2/images", codes)
	// 6 running: max_active_requests holds the next back, however old they are.
	go func() { codes <- call(h, "/image/v2/images").Code }()
	untilWaiting(l, 1)
	for i := 0; i < 2*youngIntervals; i++ {
		l.tune(time.Second)
	}
	if l.Waiting() != 1 || l.Active() != 6 {
		t.Fatalf("%d waiting, %d active: max_active_requests is 6", l.Waiting(), l.Active())
	}
	close(g.release)
	allServed(t, codes, 7)
	if l.Active() != 0 || l.youngSum != 0 {
		t.Fatalf("%d active, %d young after all ended", l.Active(), l.youngSum)
	}
}

// A call whose wait ends as it is given a slot keeps the slot, and one that was
// not leaves the queue: no slot is lost and no waiter left behind.
func TestAWaitThatEndsLosesNoSlot(t *testing.T) {
	l := New(1, time.Hour, nil)
	if _, ok := l.enter(httptest.NewRequest("GET", "/image", nil)); !ok {
		t.Fatal("the first call waits")
	}
	granted, passed := &waiter{ready: make(chan struct{})}, &waiter{ready: make(chan struct{})}
	l.mu.Lock()
	l.queue = append(l.queue, granted, passed)
	l.mu.Unlock()
	l.leave(0) // the first call ends: its slot goes to the first waiter
	if !l.giveUp(granted) {
		t.Fatal("a waiter given the slot as its wait ended gave it up")
	}
	if l.giveUp(passed) {
		t.Fatal("a waiter given nothing was told it had a slot")
	}
	if l.Active() != 1 || l.Waiting() != 0 {
		t.Fatalf("%d active, %d waiting: want the granted call's slot and an empty queue", l.Active(), l.Waiting())
	}
	l.leave(granted.admitted)
	if l.Active() != 0 {
		t.Fatalf("%d active after every call ended", l.Active())
	}
}

func TestQuantileOfTheEventsSinceTheLastReading(t *testing.T) {
	buckets := []float64{0, 0.001, 0.01, 0.1, math.Inf(1)}
	last := []uint64{1000, 0, 0, 0}
	counts := []uint64{1098, 1, 1, 0} // since last: 98 under 1 ms, 1 under 10 ms, 1 under 100 ms
	if got := quantile(since(nil, counts, last), buckets, 0.99); got != 10*time.Millisecond {
		t.Fatalf("p99 %v, want 10ms", got)
	}
	if got := quantile(since(nil, counts, last), buckets, 1); got != 100*time.Millisecond {
		t.Fatalf("p100 %v, want 100ms", got)
	}
	if got := quantile(since(nil, counts, counts), buckets, 0.99); got != 0 {
		t.Fatalf("no events: %v", got)
	}
	open := []uint64{0, 0, 0, 5}
	if got := quantile(since(nil, open, nil), buckets, 0.99); got != 100*time.Millisecond {
		t.Fatalf("in the open bucket: %v, want its lower bound", got)
	}
	s := newSchedLatency()
	if got := s.p99(); got < 0 || got > time.Minute {
		t.Fatalf("this process's scheduler p99: %v", got)
	}
}
