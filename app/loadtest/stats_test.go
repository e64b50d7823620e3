//go:build load

package loadtest

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// kindStats are the outcomes of one kind of request.
type kindStats struct {
	sent, answered, transportErrors int
	status5xx                       int
	latencies                       []time.Duration
	// servedLatencies leave out mixmatch's 503s: the calls it shed under overload.
	servedLatencies []time.Duration
	statuses        map[int]int
	// unexpected counts answers that were not 5xx but not right either (wrong cloud,
	// a skipped SP, a short page), by reason; examples keep the first of each.
	unexpected map[string]int
	examples   map[string]string
}

// reqStats gathers what the generator saw; all latencies are kept, for exact
// percentiles (10 minutes at 200/s is 120,000 durations).
type reqStats struct {
	mu    sync.Mutex
	kinds map[string]*kindStats
	lags  []time.Duration
}

func newReqStats() *reqStats { return &reqStats{kinds: map[string]*kindStats{}} }

func (s *reqStats) kind(name string) *kindStats {
	k := s.kinds[name]
	if k == nil {
		k = &kindStats{statuses: map[int]int{}, unexpected: map[string]int{}, examples: map[string]string{}}
		s.kinds[name] = k
	}
	return k
}

func (s *reqStats) started(name string, lag time.Duration) {
	s.mu.Lock()
	s.kind(name).sent++
	s.lags = append(s.lags, lag)
	s.mu.Unlock()
}

// outcome records one request's end: status 0 with err for no answer; problem, when
// not "", says why a non-5xx answer was wrong.
func (s *reqStats) outcome(name string, latency time.Duration, status int, err error, problem, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.kind(name)
	if err != nil {
		k.transportErrors++
		problem, detail = "no answer", err.Error()
	} else {
		k.answered++
		k.latencies = append(k.latencies, latency)
		if status != 503 {
			k.servedLatencies = append(k.servedLatencies, latency)
		}
		k.statuses[status]++
		if status >= 500 {
			k.status5xx++
			problem = fmt.Sprintf("status %d", status)
		}
	}
	if problem != "" {
		k.unexpected[problem]++
		if _, ok := k.examples[problem]; !ok {
			k.examples[problem] = detail
		}
	}
}

func (s *reqStats) totals() (sent, answered, transport, fivexx, unexpected int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.kinds {
		sent += k.sent
		answered += k.answered
		transport += k.transportErrors
		fivexx += k.status5xx
		for _, n := range k.unexpected {
			unexpected += n
		}
	}
	return
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func sortedCopy(d []time.Duration) []time.Duration {
	out := slices.Clone(d)
	slices.Sort(out)
	return out
}

// ms formats a duration in milliseconds with a precision that suits its size.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 1000:
		return fmt.Sprintf("%.1fms", v)
	}
	return fmt.Sprintf("%.2fs", v/1000)
}

func mib(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }
