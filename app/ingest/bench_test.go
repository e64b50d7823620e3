package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"mixmatch/app/dbtest"
	"mixmatch/app/store"
)

// BenchmarkIngest: notifications per second into each database engine from a
// backlog (target for SQLite: 5,000/s), and the delay from publish to committed row
// at a steady 2,000/s, p50 and p99.
func BenchmarkIngest(b *testing.B) {
	for _, e := range dbtest.Engines() {
		if e.Name == "mysql" {
			continue
		}
		b.Run(e.Name, func(b *testing.B) {
			bus := newBus(b)
			s, err := store.Open(context.Background(), e.New(b), store.Options{MaxOpenConns: 4})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Migrate(context.Background(), nil); err != nil {
				b.Fatal(err)
			}
			bus.store = s

			// Backlog: everything queued, then drained.
			const backlog, steadyCount = 20000, 6000
			for i := 0; i < backlog; i++ {
				bus.publish(b, 0, notification("volume.create.start", fmt.Sprintf(`{"volume_id": "b-%d", "tenant_id": "p"}`, i)))
			}
			var mu sync.Mutex
			var delays []time.Duration
			done, steady := make(chan struct{}, 1), make(chan struct{}, 1)
			acked := 0
			c := &Consumer{SP: bus.sp, Store: s, Logger: slog.New(slog.DiscardHandler), Prefetch: 512, OnBatch: func(batch []amqp.Delivery) {
				now := time.Now()
				mu.Lock()
				defer mu.Unlock()
				acked += len(batch)
				for _, d := range batch {
					if sent, ok := d.Headers["x-sent"].(int64); ok {
						delays = append(delays, now.Sub(time.Unix(0, sent)))
					}
				}
				if acked == backlog {
					done <- struct{}{}
				}
				if len(delays) == steadyCount {
					steady <- struct{}{}
				}
			}}
			b.ResetTimer()
			start := time.Now()
			stop := run(c)
			defer stop()
			<-done
			rate := float64(backlog) / time.Since(start).Seconds()
			b.StopTimer()

			// Steady load: 2,000/s for 3 s, each message stamped with its send time.
			tick := time.NewTicker(time.Millisecond)
			for i := 0; i < steadyCount; i++ {
				if i%2 == 0 {
					<-tick.C
				}
				bus.publishWith(b, 0, notification("image.create", fmt.Sprintf(`{"id": "s-%d", "owner": "p"}`, i)),
					amqp.Table{"x-sent": time.Now().UnixNano()})
			}
			tick.Stop()
			<-steady
			sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
			b.ReportMetric(rate, "notifications/s")
			b.ReportMetric(float64(delays[len(delays)/2].Microseconds())/1000, "ms-delay-p50")
			b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds())/1000, "ms-delay-p99")
		})
	}
}
