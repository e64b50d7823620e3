//go:build load

// Package loadtest is `make bench-load`: the real mixmatch-fcgi and mixmatch-ingester,
// on one SQLite file, under a steady mixed API load and a steady notification flow
// at once, for LOAD_DURATION (default 10m). It fails on any 5xx from the proxy, any
// request without an answer or with a wrong one, memory that grows, a mapping that is
// lost or wrong, a queue that does not drain, or a generator that could not keep its
// rates and schedule, and prints a summary table either way. It needs RabbitMQ on
// 127.0.0.1:5672 (scripts/test-services.sh) and is built only with -tags load.
package loadtest

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"
)

// params are the run's targets, from the environment.
type params struct {
	duration   time.Duration
	rate       float64 // requests a second
	notifyRate float64 // notifications a second
	// window is the warm-up, and the length of the first and last memory windows.
	window time.Duration
	// every is the sampling interval of RSS and goroutines: 5 s, more often in short
	// runs so that each window still holds five samples.
	every time.Duration
}

func readParams(t *testing.T) params {
	t.Helper()
	p := params{duration: 10 * time.Minute, rate: 200, notifyRate: 500}
	if v := os.Getenv("LOAD_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("LOAD_DURATION: %v", err)
		}
		p.duration = d
	}
	p.rate = positiveEnv(t, "LOAD_RATE", p.rate)
	p.notifyRate = positiveEnv(t, "LOAD_NOTIFY_RATE", p.notifyRate)
	p.window = min(max(p.duration/10, 10*time.Second), time.Minute)
	if p.duration < 3*p.window {
		t.Fatalf("LOAD_DURATION %v is too short: warm-up, a first and a last window of %v do not fit", p.duration, p.window)
	}
	p.every = min(5*time.Second, p.window/5)
	return p
}

// positiveEnv is the positive number the environment variable name holds, or def
// when it is unset.
func positiveEnv(t *testing.T, name string, def float64) float64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		t.Fatalf("%s: %q is not a positive number", name, v)
	}
	return f
}

func TestLoad(t *testing.T) {
	p := readParams(t)
	e, l, b := newBusEnv(t, p.notifyRate)
	pub := b.pub
	gen := newGenerator(e, l)
	samp := newSampler(e)
	t.Logf("load: %v at %.0f req/s and %.0f notifications/s; worker %s, memory windows of %v sampled every %v",
		p.duration, p.rate, p.notifyRate, e.workerURL, p.window, p.every)

	res := &results{p: p, e: e, gen: gen, pub: pub, probes: b.probes, dropped: b.dropped}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res.start = time.Now()
	samplerDone := make(chan struct{})
	go func() { samp.run(ctx, res.start, p.every); close(samplerDone) }()
	pubErr := make(chan error, 1)
	go func() { pubErr <- pub.run(res.start, p.duration, p.notifyRate) }()
	gen.run(res.start, p.duration, p.rate)
	res.loadEnd = time.Now()
	res.pubErr = <-pubErr
	samp.take(res.start) // the end of the last window
	cancel()
	<-samplerDone

	res.inflightDone = gen.wait(90 * time.Second)
	var flushErr error
	flushErr, res.confirmsDone, res.drain = b.finish(e)
	if res.pubErr == nil {
		res.pubErr = flushErr
	}

	// Goroutines once the load is over and the client's connections are closed.
	gen.client.CloseIdleConnections()
	res.idleWorkerGor, res.idleIngesterGor = goroutinesSettled(samp, e.workerMetrics), goroutinesSettled(samp, e.ingesterMetrics)
	res.worker = samp.verdict(p.window, p.window, p.duration,
		func(s sample) int64 { return s.workerRSS }, func(s sample) float64 { return s.workerGor })
	res.ingester = samp.verdict(p.window, p.window, p.duration,
		func(s sample) int64 { return s.ingesterRSS }, func(s sample) float64 { return s.ingesterGor })
	for _, pr := range []struct {
		proc *proc
		v    *memoryVerdict
	}{{e.worker, &res.worker}, {e.ingester, &res.ingester}} {
		if st, err := procStatus(pr.proc.pid(), "VmHWM"); err == nil {
			pr.v.peak = st["VmHWM"]
		}
	}
	metricsClient := &http.Client{Timeout: 5 * time.Second}
	res.workerMetrics, _ = scrape(metricsClient, e.workerMetrics)
	res.ingesterMetrics, _ = scrape(metricsClient, e.ingesterMetrics)
	res.stillUp = e.worker.running() && e.ingester.running()

	res.mapping, res.mappingErr = checkMappings(e, l.snapshot())

	res.workerStop = e.worker.stop(30 * time.Second)
	res.ingesterStop = e.ingester.stop(30 * time.Second)

	res.print(os.Stdout)
	for _, c := range res.checks() {
		if !c.ok {
			t.Errorf("%s: %s", c.name, c.detail)
		}
	}
}

// goroutinesSettled reads go_goroutines until two readings 200 ms apart agree (the
// server's connection goroutines end as the client's connections close), at most 5 s.
func goroutinesSettled(s *sampler, addr string) float64 {
	last := s.goroutines(addr)
	for i := 0; i < 25; i++ {
		time.Sleep(200 * time.Millisecond)
		now := s.goroutines(addr)
		if now == last {
			return now
		}
		last = now
	}
	return last
}
