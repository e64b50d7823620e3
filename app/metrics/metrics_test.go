package metrics

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Under --http anyone can send any path and method; the series they make must
// stay few.
func TestRequestLabelsAreBounded(t *testing.T) {
	s := New()
	for i := 0; i < 2000; i++ {
		s.Request(fmt.Sprintf("svc%d", i), fmt.Sprintf("M%d", i), "default", 600+i)
	}
	s.Request("image", "GET", "default", 200)
	if n := testutil.CollectAndCount(s.Requests); n > 8 {
		t.Fatalf("%d series after 2,000 made-up paths, methods and statuses", n)
	}
	if got := testutil.ToFloat64(s.Requests.WithLabelValues("image", "GET", "200", "default")); got != 1 {
		t.Fatalf("a real request counted %v times", got)
	}
	if got := testutil.ToFloat64(s.Requests.WithLabelValues("other", "OTHER", "other", "default")); got < 1000 {
		t.Fatalf("made-up requests counted as other: %v", got)
	}
}
