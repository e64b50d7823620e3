package logsink_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"mixmatch/app/logsink"
)

// gate is an output whose writes block until released, and which counts them.
type gate struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (g *gate) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.release
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writes++
	return g.buf.Write(p)
}

func TestLinesThatWaitShareOneWrite(t *testing.T) {
	g := newGate()
	w := logsink.New(g, 0)
	fmt.Fprintf(w, "line 0\n")
	<-g.entered // the writer is in the kernel with line 0
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(w, "line %d\n", i)
	}
	close(g.release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := 0; i <= 50; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if g.buf.String() != want.String() {
		t.Fatalf("lines lost or out of order:\n%s", g.buf.String())
	}
	if g.writes != 2 {
		t.Fatalf("%d writes for 51 lines, want 2: the first alone, the 50 that waited together", g.writes)
	}
}

func TestAFullBufferHoldsTheLoggerNotTheLines(t *testing.T) {
	g := newGate()
	w := logsink.New(g, 64)
	line := strings.Repeat("x", 31) + "\n"
	w.Write([]byte(line))
	<-g.entered
	w.Write([]byte(line))
	w.Write([]byte(line)) // 64 bytes wait: the bound
	held := make(chan struct{})
	go func() {
		w.Write([]byte(line))
		close(held)
	}()
	select {
	case <-held:
		t.Fatal("a write past the bound did not wait")
	default:
	}
	close(g.release)
	<-held
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := g.buf.String(); got != strings.Repeat(line, 4) {
		t.Fatalf("got %q", got)
	}
}

type failing struct{ n int }

func (f *failing) Write(p []byte) (int, error) {
	f.n++
	return 0, errors.New("disk full")
}

func TestCloseReportsAWriteThatFailed(t *testing.T) {
	f := &failing{}
	w := logsink.New(f, 0)
	w.Write([]byte("a\n"))
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Close: %v", err)
	}
	if _, err := w.Write([]byte("late\n")); err == nil {
		t.Fatal("a write after Close was accepted, and would be lost")
	}
}

func TestManyLoggersKeepTheirLinesWhole(t *testing.T) {
	var out bytes.Buffer
	w := logsink.New(&out, 128)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				fmt.Fprintf(w, "logger %d line %03d %s\n", g, i, strings.Repeat("y", g*10))
			}
		}()
	}
	wg.Wait()
	w.Close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8*500 {
		t.Fatalf("%d lines, want 4000", len(lines))
	}
	next := map[string]int{}
	for _, l := range lines {
		var g, i int
		var pad string
		if n, _ := fmt.Sscanf(l, "logger %d line %d %s", &g, &i, &pad); n < 2 || len(pad) != g*10 && g != 0 {
			t.Fatalf("torn line %q", l)
		}
		key := fmt.Sprint(g)
		if next[key] != i {
			t.Fatalf("logger %d: line %d after %d", g, i, next[key]-1)
		}
		next[key]++
	}
}
