package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mixmatch/app/bintest"
	"mixmatch/app/fakecloud"
	"mixmatch/app/store"
)

func percentile(d []time.Duration, p float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*p)]
}

func timeGets(b *testing.B, url string, n int) []time.Duration {
	took, err := bintest.TimeGets(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, url, localToken, n)
	if err != nil {
		b.Fatal(err)
	}
	return took
}

// BenchmarkMappedGET: the latency mixmatch adds to a GET of a mapped resource, over
// HTTP on loopback, against calling the backend directly (target p50 < 1 ms).
func BenchmarkMappedGET(b *testing.B) {
	s := newSetup(b)
	s.backends["remote1"].Add(fakecloud.Images, "", imageID, nil)
	s.store.Upsert(context.Background(), store.Mapping{ResourceType: "images", ResourceID: imageID, ResourceSP: "remote1", ProjectID: "p"})
	front := httptest.NewServer(s.handler)
	defer front.Close()
	const n = 2000
	timeGets(b, s.backends["remote1"].URL()+"/v2/images/"+imageID, 200) // warm up
	timeGets(b, front.URL+"/image/v2/images/"+imageID, 200)
	b.ResetTimer()
	direct := timeGets(b, s.backends["remote1"].URL()+"/v2/images/"+imageID, n)
	proxied := timeGets(b, front.URL+"/image/v2/images/"+imageID, n)
	b.StopTimer()
	p50, p99 := percentile(proxied, .5)-percentile(direct, .5), percentile(proxied, .99)-percentile(direct, .99)
	b.ReportMetric(float64(p50.Microseconds()), "µs-overhead-p50")
	b.ReportMetric(float64(p99.Microseconds()), "µs-overhead-p99")
}

// BenchmarkConcurrent64: requests per second through mixmatch with 64 clients.
func BenchmarkConcurrent64(b *testing.B) {
	s := newSetup(b)
	s.backends["remote1"].Add(fakecloud.Images, "", imageID, nil)
	s.store.Upsert(context.Background(), store.Mapping{ResourceType: "images", ResourceID: imageID, ResourceSP: "remote1", ProjectID: "p"})
	front := httptest.NewServer(s.handler)
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var done atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < 64; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done.Add(1) <= int64(b.N) {
				req, _ := http.NewRequest("GET", front.URL+"/image/v2/images/"+imageID, nil)
				req.Header.Set("X-Auth-Token", localToken)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkAggregate: an aggregated image list over 1, 4 and 16 SPs, each answering
// in 50 ms (target: 16 SPs under twice the time of one).
func BenchmarkAggregate(b *testing.B) {
	for _, n := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("%dSPs", n), func(b *testing.B) {
			names := []string{"default"}
			for i := 1; i < n; i++ {
				names = append(names, fmt.Sprintf("r%d", i))
			}
			s := newSetup(b, withSPs(names...), withAggregation())
			for _, c := range s.backends {
				c.Add(fakecloud.Images, "", strings.Repeat("a", 32), map[string]any{"created_at": "2026-01-01T00:00:00Z"})
				c.SlowHeaders(50 * time.Millisecond) // the SP's own latency, what the benchmark is about
			}
			h := s.handler
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest("GET", "/image/v2/images", nil)
				req.Header.Set("X-Auth-Token", localToken)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/list")
		})
	}
}
