package admission

import (
	"context"
	"math"
	"runtime/metrics"
	"time"
)

// Past the rate its CPU can serve, every call a worker serves at once slows every
// other: at twice its sustained rate, with max_active_requests calls at once, the
// calls served took several times their unloaded p99. A slot is worth giving only
// while the worker's goroutines get a CPU promptly, so Govern watches the Go
// scheduler's latency (how long a runnable goroutine waits for a CPU) and moves the
// limit between minLimit and max_active_requests: down by a fifth in an interval
// whose p99 passes schedTarget while the worker used at least half of it and more
// calls came than ended, up by an eighth in each other.
//   - Scheduler latency, not the calls' own: that rises when an SP is slow too,
//     and one slow cloud would shut out the calls to the others.
//   - Half the limit used: the CPU a worker shares with other services may be
//     busy for their sake, and a worker using few of its slots is not the cause.
//   - More calls coming than ending: clients that each wait for their answer
//     before the next call (Nova's computes, wrk's connections) bring no more than
//     the worker serves; cutting the limit under them only turned calls that
//     waited a little into 503s.
//
// The limit bounds only the young calls, those admitted in the last
// youngIntervals intervals (1 s): a call is CPU work at its start (token, lookup,
// headers), while an image that streams for minutes or an SP slow to answer
// waits on the network. Were they counted, a few of them would hold every slot of
// a lowered limit and shut out all other calls. The limit also bounds the calls
// that may wait: with max_active_requests waiting behind a lowered limit, the wait
// only moved into the queue.
const (
	tuneEvery      = 100 * time.Millisecond
	youngIntervals = 10
	schedTarget    = 20 * time.Millisecond
	minLimit       = 4
)

// Govern tunes the limit until ctx ends.
func (l *Limiter) Govern(ctx context.Context) {
	if l == nil {
		return
	}
	s := newSchedLatency()
	t := time.NewTicker(tuneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.tune(s.p99())
		}
	}
}

// tune ends an interval whose scheduler latency p99 was p99: the calls admitted
// youngIntervals ago stop counting against the limit, and the limit moves.
func (l *Limiter) tune(p99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.interval++
	oldest := l.interval % youngIntervals
	l.youngSum -= l.young[oldest]
	l.young[oldest] = 0
	busiest, growing := l.busiest, l.arrived > l.finished+l.finished/10
	l.busiest, l.arrived, l.finished = l.youngSum, 0, 0
	if p99 > schedTarget && 2*busiest >= l.limit && growing {
		l.limit = max(min(minLimit, l.max), l.limit-max(1, l.limit/5))
	} else {
		l.limit = min(l.max, l.limit+max(1, l.limit/8))
	}
	l.admitWaiting()
}

// schedLatency reads the p99 of the scheduler latency since its last reading.
type schedLatency struct {
	sample      []metrics.Sample
	last, delta []uint64
}

func newSchedLatency() *schedLatency {
	s := &schedLatency{sample: []metrics.Sample{{Name: "/sched/latencies:seconds"}}}
	s.p99()
	return s
}

func (s *schedLatency) p99() time.Duration {
	metrics.Read(s.sample)
	if s.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	h := s.sample[0].Value.Float64Histogram()
	s.delta = since(s.delta[:0], h.Counts, s.last)
	s.last = append(s.last[:0], h.Counts...)
	return quantile(s.delta, h.Buckets, 0.99)
}

// since appends to dst the counts less those of the last reading (none: all).
func since(dst, counts, last []uint64) []uint64 {
	for i, c := range counts {
		if i < len(last) {
			c -= last[i]
		}
		dst = append(dst, c)
	}
	return dst
}

// quantile is the q-quantile of the events counted, in seconds as a duration:
// the upper bound of the bucket it falls in (buckets[i] to buckets[i+1] hold
// counts[i]), or the lower one for the last, open, bucket.
func quantile(counts []uint64, buckets []float64, q float64) time.Duration {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range counts {
		if seen += c; seen >= rank {
			upper := buckets[i+1]
			if math.IsInf(upper, 1) {
				upper = buckets[i]
			}
			return time.Duration(upper * float64(time.Second))
		}
	}
	return 0
}
