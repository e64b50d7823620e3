//go:build load

package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Memory is flat when the mean RSS of the last window is at most the mean of the
// first window after warm-up, times growthFactor, plus growthSlack. A Go process's
// RSS breathes with its GC cycle (GOGC=100 lets the heap double between cycles, and
// freed pages go back to the kernel only gradually), so a bare percentage would
// fail a steady 20 MiB process on noise; the fixed slack absorbs that, and the
// percentage still catches a leak in a bigger process. At 200 req/s a leak of 1 KiB
// per request is 12 MiB a minute: over the 8 minutes between the windows of the
// full run it exceeds the bound several times over.
const (
	growthFactor = 1.25
	growthSlack  = 16 << 10 // kB
)

// sample is one reading of both processes.
type sample struct {
	at                     time.Duration // since the load started
	workerRSS, ingesterRSS int64         // kB
	workerGor, ingesterGor float64       // go_goroutines; -1 when unreadable
}

type sampler struct {
	e       *env
	client  *http.Client
	mu      sync.Mutex
	samples []sample
}

func newSampler(e *env) *sampler {
	return &sampler{e: e, client: &http.Client{Timeout: 5 * time.Second}}
}

// run reads both processes every interval until ctx ends.
func (s *sampler) run(ctx context.Context, start time.Time, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		s.take(start)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *sampler) take(start time.Time) sample {
	smp := sample{at: time.Since(start), workerGor: -1, ingesterGor: -1}
	if st, err := procStatus(s.e.worker.pid(), "VmRSS"); err == nil {
		smp.workerRSS = st["VmRSS"]
	}
	if st, err := procStatus(s.e.ingester.pid(), "VmRSS"); err == nil {
		smp.ingesterRSS = st["VmRSS"]
	}
	smp.workerGor = s.goroutines(s.e.workerMetrics)
	smp.ingesterGor = s.goroutines(s.e.ingesterMetrics)
	s.mu.Lock()
	s.samples = append(s.samples, smp)
	s.mu.Unlock()
	return smp
}

func (s *sampler) goroutines(addr string) float64 {
	m, err := scrape(s.client, addr)
	if err != nil {
		return -1
	}
	v, ok := m["go_goroutines"]
	if !ok {
		return -1
	}
	return v
}

// memoryVerdict is one process's memory over the run.
type memoryVerdict struct {
	first, last float64 // mean kB in the windows
	nFirst      int
	nLast       int
	peak        int64 // VmHWM, kB
	bound       float64
	flat        bool
	// goroutines after warm-up, at the end of the load, and once idle again.
	gStart, gEnd, gIdle float64
}

// verdict compares the window after warm-up, [warm, warm+win), with the last one,
// [d-win, d]; samples after d (the idle reading) are left out.
func (s *sampler) verdict(warm, win, d time.Duration, rss func(sample) int64, gor func(sample) float64) memoryVerdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v memoryVerdict
	var sumFirst, sumLast int64
	v.gStart, v.gEnd = -1, -1
	for _, smp := range s.samples {
		switch {
		case smp.at >= warm && smp.at < warm+win:
			sumFirst += rss(smp)
			v.nFirst++
			if v.gStart < 0 {
				v.gStart = gor(smp)
			}
		case smp.at >= d-win && smp.at <= d+time.Second:
			sumLast += rss(smp)
			v.nLast++
			v.gEnd = gor(smp)
		}
	}
	if v.nFirst > 0 {
		v.first = float64(sumFirst) / float64(v.nFirst)
	}
	if v.nLast > 0 {
		v.last = float64(sumLast) / float64(v.nLast)
	}
	v.bound = v.first*growthFactor + growthSlack
	v.flat = v.nFirst > 0 && v.nLast > 0 && v.last <= v.bound
	return v
}

func (v memoryVerdict) String() string {
	return fmt.Sprintf("first %s, last %s, bound %s", mib(int64(v.first)), mib(int64(v.last)), mib(int64(v.bound)))
}
