package serve

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// countingListener counts the reads and writes of the connections it accepts.
type countingListener struct {
	net.Listener
	mu            sync.Mutex
	reads, writes int
	written       [][]byte
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, l: l}, nil
}

type countingConn struct {
	net.Conn
	l *countingListener
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.l.mu.Lock()
	c.l.reads++
	c.l.mu.Unlock()
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes++
	c.l.written = append(c.l.written, bytes.Clone(b))
	c.l.mu.Unlock()
	return c.Conn.Write(b)
}

// A GET over FastCGI costs the worker few system calls: its five records come in
// through one buffer, and the end of the answer goes out with FCGI_END_REQUEST.
func TestAFastCGIAnswerEndsInOneWrite(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "mixmatch.sock")
	raw, err := Listen(Frontend{FCGI: "unix:" + sock})
	if err != nil {
		t.Fatal(err)
	}
	l := &countingListener{Listener: raw}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, l, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"images": []}`))
		}), slog.New(slog.DiscardHandler))
	}()
	if got := fcgiGet(t, "unix", sock, "/image/v2/images"); !strings.Contains(got, `{"images": []}`) {
		t.Fatalf("answer %q", got)
	}
	cancel()
	<-served
	l.mu.Lock()
	defer l.mu.Unlock()
	// The client writes its records one by one, so a read may find only some of
	// them; unbuffered, net/http/fcgi read each header and content on its own (10).
	if l.reads > 5 {
		t.Errorf("%d reads for one GET", l.reads)
	}
	if l.writes != 2 {
		t.Fatalf("%d writes for one answer, want 2 (the CGI header with the body; its end with END_REQUEST)", l.writes)
	}
	if first := string(l.written[0]); !strings.HasPrefix(first, "\x01\x06") || !strings.Contains(first, "Status: 200 OK") ||
		!strings.Contains(first, `{"images": []}`) {
		t.Fatalf("the first write is not the CGI header and the body: %q", first)
	}
	last := l.written[1]
	if len(last) != 24 || last[1] != fcgiTypeStdout || last[4]|last[5] != 0 || last[8+1] != fcgiTypeEndRequest {
		t.Fatalf("the last write is not the empty STDOUT then END_REQUEST: % x", last)
	}
}
