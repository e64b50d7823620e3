//go:build load

package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestOverload is `LOAD_OVERLOAD=2,5 make bench-load`: the real worker on the same
// mixed API load as TestLoad, first at rising rates to find the rate it sustains
// (the highest whose served calls keep their p99 under 100 ms), then at each factor
// of it for LOAD_STEP (default 15s), then at the sustained rate again, while the
// clouds publish LOAD_NOTIFY_RATE (500) notifications a second to the ingester.
// Under overload every call must get an answer within 2 s, served or mixmatch's own
// 503 with Retry-After; the worker must stay under 64 MiB; the ingester must handle
// every notification; the mappings must be right afterwards. It prints one table.
func TestOverload(t *testing.T) {
	var factors []float64
	for _, f := range strings.Split(os.Getenv("LOAD_OVERLOAD"), ",") {
		if v, err := strconv.ParseFloat(strings.TrimSpace(f), 64); err == nil && v > 0 {
			factors = append(factors, v)
		}
	}
	if len(factors) == 0 {
		t.Fatalf("LOAD_OVERLOAD: factors of the sustained rate, such as 2,5; not %q", os.Getenv("LOAD_OVERLOAD"))
	}
	step := 15 * time.Second
	if v := os.Getenv("LOAD_STEP"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 2*time.Second {
			t.Fatalf("LOAD_STEP %q: a duration of 2s or more", v)
		}
		step = d
	}
	notifyRate := positiveEnv(t, "LOAD_NOTIFY_RATE", 500)
	e, l, b := newBusEnv(t, notifyRate)
	pub := b.pub

	var rows []phase
	sustained := 0.0
	// LOAD_SUSTAINED: the rate to overload by multiples of, for runs that compare:
	// one phase at it, and no search.
	start := positiveEnv(t, "LOAD_SUSTAINED", 50)
	for rate := start; rate <= 6400; rate *= 2 {
		ph := runPhase(e, l, fmt.Sprintf("find: %.0f/s", rate), rate, step)
		rows = append(rows, ph)
		if os.Getenv("LOAD_SUSTAINED") != "" {
			sustained = rate
			break
		}
		if ph.p99 >= 100*time.Millisecond || ph.shed > 0 || ph.noAnswer > 0 {
			break
		}
		sustained = rate
	}
	if sustained == 0 {
		printPhases(rows, 0)
		t.Fatal("the worker does not sustain even 50 calls/s with a p99 under 100 ms")
	}
	unloaded := rows[0].p99
	// The clouds keep notifying through the overload and the recovery: the
	// ingester shares the machine with the overloaded worker and must lose nothing.
	pubErr := make(chan error, 1)
	go func() {
		pubErr <- pub.run(time.Now(), time.Duration(len(factors))*step+5*time.Second, notifyRate)
	}()
	var overloads []phase
	for _, f := range factors {
		ph := runPhase(e, l, fmt.Sprintf("%gx sustained: %.0f/s", f, f*sustained), f*sustained, step)
		rows = append(rows, ph)
		overloads = append(overloads, ph)
	}
	recovery := runPhase(e, l, fmt.Sprintf("after: %.0f/s", sustained), sustained, 5*time.Second)
	rows = append(rows, recovery)
	printPhases(rows, sustained)

	err := <-pubErr
	flushErr, confirmed, d := b.finish(e)
	if err == nil {
		err = flushErr
	}
	fmt.Printf("notifications during the overload: %d published (%.0f/s), %d handled by the ingester, %d requeued, "+
		"queues empty after %v: %v\n", pub.published, notifyRate, int(d.handled), int(d.requeued), d.took.Round(time.Millisecond), d.ok)
	switch {
	case err != nil:
		t.Errorf("publishing: %v", err)
	case !confirmed:
		t.Errorf("RabbitMQ did not confirm every notification")
	case !d.ok:
		t.Errorf("the ingester did not handle every notification: %d of %d, queues %v, %v", int(d.handled), pub.published, d.depth, d.lastErr)
	case b.dropped.Load() > 0:
		t.Errorf("%d of the clouds' own notifications were dropped by the test itself", b.dropped.Load())
	}

	// A worker that stops writes the mappings it still has in hand first: the
	// table is checked once it has.
	if err := e.worker.stop(30 * time.Second); err != nil {
		t.Errorf("stopping the worker: %v", err)
	}
	for _, pr := range []*proc{e.worker, e.ingester} {
		for _, line := range pr.logs.summary() {
			fmt.Println(line)
		}
	}
	// A broadcast hit is not recorded while a cloud of higher precedence has not
	// answered (it may hold the id too); the worker logs each such hit. Such a
	// hit may have no row, or one a later broadcast wrote; every other must be there.
	want := l.snapshot()
	undecided := e.worker.logs.undecidedHits()
	for k := range undecided {
		typ, id, _ := strings.Cut(k, "/")
		var n int
		if w, ok := want[k]; ok && w.source == "broadcast" && !w.gone &&
			e.db.Get(&n, `SELECT COUNT(*) FROM resource_mapping WHERE resource_type = ? AND resource_id = ?`, typ, id) == nil && n == 0 {
			delete(want, k)
		}
	}
	mc, err := checkMappings(e, want)
	fmt.Printf("mappings: %d checked, %d lost or wrong; %d broadcast hits not recorded, as the worker said, "+
		"a cloud of higher precedence not having answered in time; %d right rows of calls whose answer the client gave up on\n",
		mc.live+mc.deleted, mc.failures(), len(undecided), mc.unseen)
	if err != nil || mc.failures() > 0 {
		t.Errorf("mappings after the overload: %v %v", err, mc.examples)
	}
	for _, ph := range overloads {
		switch {
		case ph.noAnswer > 0:
			t.Errorf("%s: %d calls got no answer", ph.name, ph.noAnswer)
		case ph.slowest > 2*time.Second:
			t.Errorf("%s: a call took %v to be answered", ph.name, ph.slowest)
		case ph.other5xx > 0:
			t.Errorf("%s: %d 5xx answers other than mixmatch's 503", ph.name, ph.other5xx)
		case ph.peakRSS > 64<<10:
			t.Errorf("%s: worker RSS %d kB", ph.name, ph.peakRSS)
		case ph.p99 > 2*unloaded && ph.p99 > 10*time.Millisecond:
			t.Logf("%s: served p99 %v, more than twice the unloaded %v (as the worker timed the calls %v, its own part %v)",
				ph.name, ph.p99, unloaded, ph.workerP99, ph.ownP99)
		}
	}
	if recovery.shed > 0 || recovery.noAnswer > 0 {
		t.Errorf("after the overload: %d shed, %d without an answer at the sustained rate", recovery.shed, recovery.noAnswer)
	}
}

// phase is one rate held for a while, and what the worker did.
type phase struct {
	name               string
	rate               float64
	sent, served, shed int
	noAnswer, other5xx int
	p99, slowest       time.Duration
	// workerP99 is the p99 of the same calls as the worker timed them, from its
	// log: the rest of p99 was spent outside its handlers (the listen queue, the
	// generator's own turn on a CPU). ownP99 is the p99 of their part that was not
	// the wait on the clouds (duration_ms less upstream_ms): mixmatch's own.
	workerP99, ownP99 time.Duration
	peakRSS, peakFDs  int64
	// lowestLimit is the lowest admission limit the worker's metrics showed.
	lowestLimit int
}

// runPhase sends rate calls a second for d, waits for every answer, and reads the
// worker's RSS and open descriptors every 100 ms meanwhile, and its admission
// limit every 500 ms.
func runPhase(e *env, l *ledger, name string, rate float64, d time.Duration) phase {
	g := newGenerator(e, l)
	g.client.Timeout = 10 * time.Second
	ph := phase{name: name, rate: rate}
	firstLogged := e.worker.logs.servedCount()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		metrics := &http.Client{Timeout: time.Second}
		for i := 0; ; i++ {
			if i%5 == 0 {
				if m, err := scrape(metrics, e.workerMetrics); err == nil {
					if v, ok := m["mixmatch_admission_limit"]; ok && (ph.lowestLimit == 0 || int(v) < ph.lowestLimit) {
						ph.lowestLimit = int(v)
					}
				}
			}
			if st, err := procStatus(e.worker.pid(), "VmRSS"); err == nil {
				ph.peakRSS = max(ph.peakRSS, st["VmRSS"])
			}
			if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", e.worker.pid())); err == nil {
				ph.peakFDs = max(ph.peakFDs, int64(len(fds)))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	g.run(time.Now(), d, rate)
	g.wait(30 * time.Second)
	stop()
	wg.Wait()
	g.client.CloseIdleConnections()

	g.stats.mu.Lock()
	defer g.stats.mu.Unlock()
	var served []time.Duration
	for _, k := range g.stats.kinds {
		ph.sent += k.sent
		ph.noAnswer += k.transportErrors
		ph.shed += k.statuses[503]
		for status, n := range k.statuses {
			if status >= 500 && status != 503 {
				ph.other5xx += n
			}
		}
		for _, lat := range k.latencies {
			ph.slowest = max(ph.slowest, lat)
		}
		served = append(served, k.servedLatencies...)
	}
	ph.served = len(served)
	slices.Sort(served)
	ph.p99 = percentile(served, 0.99)
	calls := e.worker.logs.servedFrom(firstLogged, ph.served, 5*time.Second)
	total, own := make([]time.Duration, len(calls)), make([]time.Duration, len(calls))
	for i, c := range calls {
		total[i], own[i] = c.total, c.own
	}
	slices.Sort(total)
	slices.Sort(own)
	ph.workerP99, ph.ownP99 = percentile(total, 0.99), percentile(own, 0.99)
	return ph
}

func printPhases(rows []phase, sustained float64) {
	fmt.Printf("\nsustained rate: %.0f calls/s (the highest with served p99 < 100 ms)\n", sustained)
	fmt.Printf("%-28s %8s %8s %8s %7s %9s %9s %10s %9s %9s %10s %6s %6s\n",
		"phase", "sent", "served", "shed", "shed %", "no answer", "p99", "worker p99", "own p99", "slowest", "peak RSS", "fds", "limit")
	for _, p := range rows {
		share := 0.0
		if p.sent > 0 {
			share = 100 * float64(p.shed) / float64(p.sent)
		}
		fmt.Printf("%-28s %8d %8d %8d %6.1f%% %9d %9s %10s %9s %9s %7.1f MiB %6d %6d\n", p.name, p.sent, p.served, p.shed, share,
			p.noAnswer, p.p99.Round(100*time.Microsecond), p.workerP99.Round(100*time.Microsecond), p.ownP99.Round(100*time.Microsecond),
			p.slowest.Round(time.Millisecond), float64(p.peakRSS)/1024, p.peakFDs, p.lowestLimit)
	}
}
