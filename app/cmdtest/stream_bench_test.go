package cmdtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"mixmatch/app/bintest"
)

// BenchmarkStreamingRSS: the worker's peak resident memory while a 2 GiB image is
// uploaded through it and downloaded again (target: under 64 MiB).
func BenchmarkStreamingRSS(b *testing.B) {
	const size = 2 << 30
	gs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		io.Copy(w, &bintest.Pattern{N: size})
	}))
	defer gs.Close()
	base, cmd := httpWorker(b, gs.URL, "")
	url := base + "/image/v2/images/0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f/file"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest(http.MethodPut, url, io.NopCloser(&bintest.Pattern{N: size}))
		req.ContentLength = -1
		req.Header.Set("X-Auth-Token", "user-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 204 {
			b.Fatalf("upload: %v %v", resp, err)
		}
		resp.Body.Close()
		req, _ = http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("X-Auth-Token", "user-token")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != size {
			b.Fatalf("downloaded %d bytes", n)
		}
	}
	b.StopTimer()
	rss, err := bintest.PeakRSS(cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rss)/(1<<20), "MiB-peak-RSS")
	b.ReportMetric(float64(2*size)/(1<<20)/b.Elapsed().Seconds()*float64(b.N), "MiB/s")
}
