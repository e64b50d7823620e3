// Package serve runs a handler behind the front end a worker is started with: plain
// HTTP, FastCGI on a TCP or Unix socket, or FastCGI on the socket a process manager
// (Apache, systemd) hands over as standard input.
package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"strings"
	"sync"
	"time"

	"mixmatch/app/apierr"
)

// Frontend says where a worker listens; at most one field is set.
type Frontend struct {
	HTTP string // ADDR, as for net.Listen("tcp", ADDR)
	FCGI string // tcp:HOST:PORT or unix:PATH
}

// ShutdownTimeout bounds how long in-flight requests may run after SIGTERM.
var ShutdownTimeout = 30 * time.Second

// Listen opens the socket of a front end: HTTP when set (the command line refuses
// both), else FCGI. With neither, standard input must be a listening socket.
func Listen(fe Frontend) (net.Listener, error) {
	switch {
	case fe.HTTP != "":
		return net.Listen("tcp", fe.HTTP)
	case fe.FCGI != "":
		network, addr, ok := strings.Cut(fe.FCGI, ":")
		if !ok || addr == "" || (network != "tcp" && network != "unix") {
			return nil, fmt.Errorf("--fcgi %q: expected tcp:HOST:PORT or unix:PATH", fe.FCGI)
		}
		if network == "unix" {
			// A socket left by a worker that was killed would make Listen fail.
			if st, err := os.Lstat(addr); err == nil && st.Mode()&os.ModeSocket != 0 {
				_ = os.Remove(addr)
			}
			l, err := net.Listen("unix", addr)
			if err != nil {
				return nil, err
			}
			// Apache connects as its own user, which shares the group, not the owner.
			return l, os.Chmod(addr, 0o660)
		}
		return net.Listen("tcp", addr)
	}
	l, err := net.FileListener(os.Stdin)
	if err != nil {
		return nil, errors.New("no front end: give --http ADDR or --fcgi tcp:HOST:PORT|unix:PATH, " +
			"or start the worker with a listening socket as standard input")
	}
	return l, nil
}

// Serve answers requests on l until ctx is cancelled, then lets in-flight requests
// finish (up to ShutdownTimeout) and returns.
func Serve(ctx context.Context, l net.Listener, fastCGI bool, h http.Handler, logger *slog.Logger) error {
	if !fastCGI {
		h = recoverer(h, nil, logger)
		// IdleTimeout: a kept-alive connection nobody uses is closed, so that idle
		// clients cannot hold max_connections; nginx's default is 75 s.
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 75 * time.Second,
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(l) }()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
		}
		shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	}

	al := newAbortingListener(l)
	l = al
	h = recoverer(h, al.abort, logger)
	// net/http/fcgi has no Shutdown: closing the listener stops new connections, and
	// the tracker tells when the requests already accepted are answered.
	t := &tracker{idle: make(chan struct{})}
	tracked := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !t.enter() {
			// A request on a kept-alive connection after shutdown began.
			apierr.Write(w, http.StatusServiceUnavailable, "this worker is shutting down")
			return
		}
		defer t.leave()
		h.ServeHTTP(w, asServerRequest(unknownLength(r)))
	})
	done := make(chan error, 1)
	go func() { done <- fcgi.Serve(l, tracked) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	l.Close()
	<-done
	select {
	case <-t.drain():
		return nil
	case <-time.After(ShutdownTimeout):
		return fmt.Errorf("requests still running %s after shutdown began", ShutdownTimeout)
	}
}

// tracker counts requests in flight and closes idle once draining and none is left.
type tracker struct {
	mu       sync.Mutex
	n        int
	draining bool
	idle     chan struct{}
}

func (t *tracker) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.draining {
		return false
	}
	t.n++
	return true
}

func (t *tracker) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.draining && t.n == 0 {
		close(t.idle)
	}
}

func (t *tracker) drain() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.draining {
		t.draining = true
		if t.n == 0 {
			close(t.idle)
		}
	}
	return t.idle
}

// fcgiServer stands for net/http/fcgi's server in a request's context. Handlers
// tell "served by a server" from "called directly" by http.ServerContextKey:
// httputil.ReverseProxy panics with http.ErrAbortHandler when an SP breaks off a
// streamed answer only if it is set, and otherwise returns as if the answer were
// whole. The panic is what lets recoverer break the FastCGI connection.
var fcgiServer = &http.Server{}

func asServerRequest(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), http.ServerContextKey, fcgiServer))
}

// unknownLength fixes a FastCGI request with a chunked body: the web server sends no
// CONTENT_LENGTH, net/http/fcgi reports a length of 0, and a reverse proxy would
// then drop the body. One byte is peeked to tell an empty body from a chunked one.
func unknownLength(r *http.Request) *http.Request {
	if r.ContentLength != 0 || r.Body == nil || r.Body == http.NoBody {
		return r
	}
	var one [1]byte
	n, _ := io.ReadFull(r.Body, one[:])
	if n == 0 {
		r.Body = http.NoBody
		return r
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(one[:n]), r.Body), r.Body}
	r.ContentLength = -1
	return r
}

// LimitConnections bounds the connections open at once on l to n (0: no bound).
// Past it Accept waits for one to close, and new connections wait in the kernel's
// listen queue: a flood of clients costs queued connections, not file descriptors
// and goroutines of the worker.
func LimitConnections(l net.Listener, n int) net.Listener {
	if n <= 0 {
		return l
	}
	return &limitListener{Listener: l, slots: make(chan struct{}, n), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
