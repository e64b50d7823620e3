// Package leaktest checks that a test leaves no goroutine behind.
package leaktest

import (
	"net/http"
	"runtime"
	"testing"
	"time"
)

// Check fails the test if it ends with more goroutines than it began with. Call it
// before starting anything, so its cleanup runs after the servers' and clients'.
// Closed connections wind down asynchronously, so the count has a bounded time to
// settle; idle keep-alive connections of http.DefaultTransport are closed first, as
// they outlive any test by design.
func Check(t testing.TB) {
	t.Helper()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			http.DefaultTransport.(*http.Transport).CloseIdleConnections()
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines before the test, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
