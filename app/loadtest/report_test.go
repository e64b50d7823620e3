//go:build load

package loadtest

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// results is everything the summary and the checks read.
type results struct {
	p                              params
	e                              *env
	gen                            *generator
	pub                            *publisher
	probes                         *prober
	dropped                        *atomic.Int64
	start, loadEnd                 time.Time
	pubErr                         error
	inflightDone, confirmsDone     bool
	drain                          drain
	worker, ingester               memoryVerdict
	idleWorkerGor, idleIngesterGor float64
	workerMetrics, ingesterMetrics map[string]float64
	stillUp                        bool
	mapping                        mappingCheck
	mappingErr                     error
	workerStop, ingesterStop       error
}

type check struct {
	name, detail string
	ok           bool
}

// maxLag bounds the p99 of how late requests and notifications start. The rates are
// kept by catching up, so a starved generator still meets them, in bursts; on a quiet
// 2-CPU machine the p99 is a few milliseconds.
const maxLag = 100 * time.Millisecond

// rateOK: the achieved rate is within 2% of the target.
func rateOK(achieved, target float64) bool { return math.Abs(achieved-target) <= 0.02*target }

func (r *results) requestRate() float64 {
	sent, _, _, _, _ := r.gen.stats.totals()
	return float64(sent) / r.p.duration.Seconds()
}

func (r *results) notifyRate() float64 {
	took := r.p.duration
	if d := r.pub.finished.Sub(r.start); d > took {
		took = d
	}
	return float64(r.pub.onSchedule) / took.Seconds()
}

func (r *results) checks() []check {
	sent, answered, transport, fivexx, unexpected := r.gen.stats.totals()
	var cs []check
	add := func(name string, ok bool, format string, args ...any) {
		cs = append(cs, check{name: name, ok: ok, detail: fmt.Sprintf(format, args...)})
	}
	add("no 5xx from the proxy", fivexx == 0, "%d of %d answers were 5xx (the stand-ins never answer 5xx)", fivexx, answered)
	add("every request answered", transport == 0 && answered == sent && r.inflightDone,
		"%d sent, %d answered, %d without an answer%s", sent, answered, transport, map[bool]string{false: ", some still in flight after 90 s", true: ""}[r.inflightDone])
	add("every answer right", unexpected-fivexx-transport == 0,
		"%d answers had a status or content other than expected (wrong cloud, skipped SP, short page)", unexpected-fivexx-transport)
	rr := r.requestRate()
	add("request rate", rateOK(rr, r.p.rate), "%.1f req/s achieved, target %.0f: %s", rr, r.p.rate,
		map[bool]string{true: "within 2%", false: "more than 2% off: the load generator, not mixmatch, was the bottleneck"}[rateOK(rr, r.p.rate)])
	nr := r.notifyRate()
	pubOK := rateOK(nr, r.p.notifyRate) && r.pubErr == nil
	add("notification rate", pubOK, "%.1f/s achieved, target %.0f: %s%s", nr, r.p.notifyRate,
		map[bool]string{true: "within 2%", false: "more than 2% off: the publisher, not mixmatch, was the bottleneck"}[rateOK(nr, r.p.notifyRate)],
		errSuffix(r.pubErr))
	genLag, pubLag := percentile(sortedCopy(r.gen.stats.lags), .99), percentile(sortedCopy(r.pub.lags), .99)
	add("load on schedule", genLag <= maxLag && pubLag <= maxLag,
		"p99 schedule lag %s for requests, %s for notifications (bound %s)%s", ms(genLag), ms(pubLag), ms(maxLag),
		map[bool]string{true: "", false: ": the machine was saturated (the generator could not start on time), so this run measured the machine, not mixmatch"}[genLag <= maxLag && pubLag <= maxLag])
	add("every notification confirmed by the broker", r.confirmsDone && r.pub.nacked.Load() == 0 && r.pub.acked.Load() == int64(r.pub.published),
		"%d published, %d acked, %d nacked", r.pub.published, r.pub.acked.Load(), r.pub.nacked.Load())
	add("queues drained", r.drain.ok, "depth %v, %.0f of %d handled after %v%s", r.drain.depth, r.drain.handled, r.pub.published,
		r.drain.took.Round(time.Millisecond), errSuffix(r.drain.lastErr))
	add("worker memory flat", r.worker.flat, "%v", r.worker)
	add("ingester memory flat", r.ingester.flat, "%v", r.ingester)
	if r.mappingErr != nil {
		add("no lost mapping", false, "reading the table: %v", r.mappingErr)
	} else {
		add("no lost mapping", r.mapping.failures() == 0, "%d lost, %d wrong, %d deleted but present, %d unknown rows; %s",
			r.mapping.lost, r.mapping.wrong, r.mapping.resurrected, r.mapping.unknown, strings.Join(r.mapping.examples, "; "))
	}
	add("processes up, and stopped by SIGTERM with status 0", r.stillUp && r.workerStop == nil && r.ingesterStop == nil,
		"worker: %v, ingester: %v", orOK(r.workerStop), orOK(r.ingesterStop))
	return cs
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

func orOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func (r *results) print(w io.Writer) {
	p := r.p
	fmt.Fprintf(w, "\n=== mixmatch load: %v, target %.0f req/s and %.0f notifications/s ===\n\n", p.duration, p.rate, p.notifyRate)
	r.printRequests(w)
	r.printNotifications(w)
	r.printMemory(w)
	r.printMappings(w)
	r.printLogs(w)
	fmt.Fprintf(w, "\nchecks\n")
	for _, c := range r.checks() {
		verdict := "PASS"
		if !c.ok {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %-46s %s\n", verdict, c.name, truncate(c.detail, 400))
	}
	fmt.Fprintln(w)
}

func (r *results) printRequests(w io.Writer) {
	s := r.gen.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(w, "%-11s %7s %8s %6s %5s %5s %7s %8s %8s %8s %8s  %s\n",
		"requests", "sent", "answered", "no-ans", "5xx", "wrong", "req/s", "p50", "p95", "p99", "max", "statuses")
	var all []time.Duration
	tot := kindStats{statuses: map[int]int{}}
	row := func(name string, k *kindStats, lat []time.Duration) {
		wrong := 0
		for _, n := range k.unexpected {
			wrong += n
		}
		wrong -= k.status5xx + k.transportErrors
		fmt.Fprintf(w, "%-11s %7d %8d %6d %5d %5d %7.1f %8s %8s %8s %8s  %s\n", name, k.sent, k.answered, k.transportErrors,
			k.status5xx, wrong, float64(k.sent)/r.p.duration.Seconds(), ms(percentile(lat, .5)), ms(percentile(lat, .95)),
			ms(percentile(lat, .99)), ms(percentile(lat, 1)), countList(k.statuses))
	}
	for _, m := range mix {
		k := s.kind(m.name)
		lat := sortedCopy(k.latencies)
		row(m.name, k, lat)
		all = append(all, k.latencies...)
		tot.sent += k.sent
		tot.answered += k.answered
		tot.transportErrors += k.transportErrors
		tot.status5xx += k.status5xx
		for c, n := range k.statuses {
			tot.statuses[c] += n
		}
		for p, n := range k.unexpected {
			if tot.unexpected == nil {
				tot.unexpected = map[string]int{}
			}
			tot.unexpected[p] += n
		}
	}
	row("total", &tot, sortedCopy(all))
	lags := sortedCopy(s.lags)
	publags := sortedCopy(r.pub.lags)
	fmt.Fprintf(w, "schedule lag (start minus scheduled time): requests p50 %s, p99 %s, max %s; notifications p99 %s, max %s\n",
		ms(percentile(lags, .5)), ms(percentile(lags, .99)), ms(percentile(lags, 1)), ms(percentile(publags, .99)), ms(percentile(publags, 1)))
	var lines []string
	for _, m := range mix {
		k := s.kind(m.name)
		for problem, n := range k.unexpected {
			lines = append(lines, fmt.Sprintf("  %-10s %-26s %5d  e.g. %s", m.name, problem, n, truncate(k.examples[problem], 240)))
		}
	}
	if len(lines) > 0 {
		sort.Strings(lines)
		fmt.Fprintf(w, "unexpected answers:\n%s\n", strings.Join(lines, "\n"))
	}
	var calls []string
	for _, name := range []string{"default", "remote1", "remote2"} {
		calls = append(calls, fmt.Sprintf("%s %s", name, countList(r.e.clouds[name].Counts())))
	}
	fmt.Fprintf(w, "stand-in clouds received: %s\n", strings.Join(calls, "; "))
	m := r.workerMetrics
	fmt.Fprintf(w, "worker learned: %.0f by create, %.0f by broadcast; K2K exchanges %.0f, rescopes %.0f; token cache %.0f hits, %.0f misses\n\n",
		sum(m, "mixmatch_mappings_learned_total", `source="create"`), sum(m, "mixmatch_mappings_learned_total", `source="broadcast"`),
		sum(m, "mixmatch_k2k_exchanges_total"), sum(m, "mixmatch_k2k_rescopes_total"),
		sum(m, "mixmatch_token_cache_total", `result="hit"`), sum(m, "mixmatch_token_cache_total", `result="miss"`))
}

// countList is "key:count ..." in key order.
func countList[K cmp.Ordered](m map[K]int) string {
	parts := []string{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%v:%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func (r *results) printNotifications(w io.Writer) {
	pub, m := r.pub, r.ingesterMetrics
	var bySP []string
	for _, sp := range busSPs {
		bySP = append(bySP, fmt.Sprintf("%s %d", sp, pub.bySP[sp]))
	}
	fmt.Fprintf(w, "notifications  published %d (%s; %d for creates through mixmatch, %d of those dropped, %d after the run), %.1f/s\n",
		pub.published, strings.Join(bySP, ", "), pub.fromClouds, r.dropped.Load(), pub.published-pub.onSchedule, r.notifyRate())
	fmt.Fprintf(w, "               by event: %s\n", countList(pub.byEvent))
	fmt.Fprintf(w, "               broker confirmed %d, refused %d; ingester applied %.0f, ignored %.0f, undecodable %.0f, requeued %.0f; reconnects %.0f\n",
		pub.acked.Load(), pub.nacked.Load(), sum(m, "mixmatch_ingester_messages_total", `outcome="applied"`),
		sum(m, "mixmatch_ingester_messages_total", `outcome="ignored"`), sum(m, "mixmatch_ingester_messages_total", `outcome="undecodable"`),
		r.drain.requeued, sum(m, "mixmatch_broker_reconnects_total"))
	fmt.Fprintf(w, "               queues empty and every message handled %v after the load ended\n", r.drain.took.Round(time.Millisecond))
	r.probes.mu.Lock()
	lags := sortedCopy(r.probes.lags)
	missing, errs := len(r.probes.pending), r.probes.errs
	r.probes.mu.Unlock()
	fmt.Fprintf(w, "               ingest lag, publish to row visible (%d sampled, %d never seen, %d query errors): p50 %s, p99 %s, max %s\n\n",
		len(lags), missing, errs, ms(percentile(lags, .5)), ms(percentile(lags, .99)), ms(percentile(lags, 1)))
}

func (r *results) printMemory(w io.Writer) {
	p := r.p
	fmt.Fprintf(w, "memory       RSS mean over [%v,%v) and [%v,%v], sampled every %v; bound = first × %.2f + %d MiB\n",
		p.window, 2*p.window, p.duration-p.window, p.duration, p.every, growthFactor, growthSlack>>10)
	fmt.Fprintf(w, "%-11s %11s %11s %11s %11s   %s\n", "process", "first", "last", "peak(HWM)", "bound", "goroutines after warm-up / at end / idle")
	for _, row := range []struct {
		name string
		v    memoryVerdict
		idle float64
	}{{"worker", r.worker, r.idleWorkerGor}, {"ingester", r.ingester, r.idleIngesterGor}} {
		fmt.Fprintf(w, "%-11s %11s %11s %11s %11s   %.0f / %.0f / %.0f\n", row.name, mib(int64(row.v.first)), mib(int64(row.v.last)),
			mib(row.v.peak), mib(int64(row.v.bound)), row.v.gStart, row.v.gEnd, row.idle)
	}
	fmt.Fprintln(w)
}

func (r *results) printMappings(w io.Writer) {
	c := r.mapping
	if r.mappingErr != nil {
		fmt.Fprintf(w, "mappings     could not be read: %v\n\n", r.mappingErr)
		return
	}
	total := 0
	for _, n := range c.checked {
		total += n
	}
	fmt.Fprintf(w, "mappings     %d rows; %d resources checked (%s): %d right, %d deleted and absent\n",
		c.rows, total, countList(c.checked), c.live, c.deleted)
	fmt.Fprintf(w, "             lost %d, wrong SP or project %d, deleted but present %d, rows no one made %d\n",
		c.lost, c.wrong, c.resurrected, c.unknown)
	for _, ex := range c.examples {
		fmt.Fprintf(w, "             e.g. %s\n", ex)
	}
	fmt.Fprintln(w)
}

func (r *results) printLogs(w io.Writer) {
	for _, pr := range []*proc{r.e.worker, r.e.ingester} {
		lines := pr.logs.summary()
		if len(lines) == 0 {
			fmt.Fprintf(w, "%s log: no warnings or errors\n", pr.name)
			continue
		}
		fmt.Fprintf(w, "%s log, warnings and errors:\n", pr.name)
		for _, l := range lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}
