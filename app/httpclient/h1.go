package httpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// h1 carries calls without a body (nearly every call a proxy of Glance and Cinder
// sees) over HTTP/1.1 connections of its own, writing the request and reading the
// answer on the caller's goroutine. net/http's Transport passes each call to two
// goroutines of the connection, one that writes and one that reads, and back: on a
// busy worker those hand-offs and the threads they wake cost more than the call's
// own work. Calls with a body, and upgrades, go through the Transport as before.
type h1 struct {
	fallback *http.Transport
	dialer   *net.Dialer
	// tlsConfig speaks HTTP/1.1 only: these connections never carry HTTP/2.
	tlsConfig *tls.Config
	connect   time.Duration // the TLS handshake's bound (the dial has its own)
	response  time.Duration // ResponseHeaderTimeout: the wait for an answer's head
	maxIdle   int           // idle connections kept per host
	// idleTimeout: a connection idle longer is closed, not reused, as the
	// Transport's IdleConnTimeout.
	idleTimeout time.Duration

	mu   sync.Mutex
	idle map[poolKey][]*h1Conn
}

// poolKey is where a connection goes: the scheme, and the server's host:port.
type poolKey struct{ scheme, addr string }

// h1Conn is one connection to a server, with what reads and writes it.
type h1Conn struct {
	net.Conn
	raw   syscall.RawConn // of the TCP connection under any TLS, to look at it idle
	in    *capped
	br    *bufio.Reader
	bw    *bufio.Writer
	key   poolKey
	since time.Time // when it went idle
}

// maxResponseHead bounds an answer's status line and headers: an SP that never ends
// its headers must not grow the worker's memory.
const maxResponseHead = 1 << 20

// checkIdleAfter: a connection idle this long is looked at before it is reused.
// Servers close kept-alive connections after seconds (Apache after 5, nginx 75), a
// few with a last answer of their own (408) that must not pass for the next call's.
const checkIdleAfter = time.Second

func newH1(fallback *http.Transport, tlsConfig *tls.Config, connect, response time.Duration) *h1 {
	var c *tls.Config
	if tlsConfig != nil {
		c = tlsConfig.Clone()
	} else {
		c = &tls.Config{}
	}
	c.NextProtos = []string{"http/1.1"}
	dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &h1{fallback: fallback, dialer: dialer, tlsConfig: c, connect: connect, response: response,
		maxIdle: fallback.MaxIdleConnsPerHost, idleTimeout: fallback.IdleConnTimeout, idle: map[poolKey][]*h1Conn{}}
}

// CloseIdleConnections closes every idle connection, of both paths.
func (t *h1) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[poolKey][]*h1Conn{}
	t.mu.Unlock()
	for _, conns := range idle {
		for _, c := range conns {
			c.Close()
		}
	}
	t.fallback.CloseIdleConnections()
}

func (t *h1) RoundTrip(req *http.Request) (*http.Response, error) {
	if !bodiless(req) {
		return t.fallback.RoundTrip(req)
	}
	if err := checkHead(req); err != nil {
		return nil, err
	}
	key := poolKey{req.URL.Scheme, hostPort(req.URL)}
	for {
		c, reused, err := t.conn(req.Context(), key, req)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(c, req)
		if err == nil {
			return resp, nil
		}
		c.Close()
		// A kept-alive connection the server had closed: nothing was received, and a
		// call without a body can go again, as the Transport sends it again.
		var lost *lostConn
		if reused && errors.As(err, &lost) && req.Context().Err() == nil {
			continue
		}
		if lost != nil {
			err = lost.err
		}
		return nil, err
	}
}

// bodiless: the call can take the lean path.
func bodiless(req *http.Request) bool {
	return (req.Body == nil || req.Body == http.NoBody) && req.Method != http.MethodConnect &&
		(req.URL.Scheme == "http" || req.URL.Scheme == "https") && req.Header.Get("Upgrade") == ""
}

// checkHead refuses what the Transport would refuse to write: a header that would
// end the head early, or smuggle a second request.
func checkHead(req *http.Request) error {
	if !validValue(req.URL.Host) || !validValue(req.Host) || !validToken(req.Method) {
		return fmt.Errorf("net/http: invalid request line or Host for %s", req.URL.Redacted())
	}
	for k, vs := range req.Header {
		if !validToken(k) {
			return fmt.Errorf("net/http: invalid header field name %q", k)
		}
		for _, v := range vs {
			if !validValue(v) {
				return fmt.Errorf("net/http: invalid header field value for %q", k)
			}
		}
	}
	return nil
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

// hostPort is the address of u's server, its scheme's port when it names none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// conn gives an idle connection to key, or a new one; reused says which.
func (t *h1) conn(ctx context.Context, key poolKey, req *http.Request) (*h1Conn, bool, error) {
	now := time.Now()
	t.mu.Lock()
	for conns := t.idle[key]; len(conns) > 0; conns = t.idle[key] {
		c := conns[len(conns)-1]
		conns[len(conns)-1] = nil
		t.idle[key] = conns[:len(conns)-1]
		idle := now.Sub(c.since)
		if t.idleTimeout > 0 && idle > t.idleTimeout || idle > checkIdleAfter && !c.quiet() {
			t.mu.Unlock()
			c.Close()
			t.mu.Lock()
			continue
		}
		t.mu.Unlock()
		return c, true, nil
	}
	t.mu.Unlock()
	c, err := t.dial(ctx, key, req)
	return c, false, err
}

func (t *h1) dial(ctx context.Context, key poolKey, req *http.Request) (*h1Conn, error) {
	nc, err := t.dialer.DialContext(ctx, "tcp", key.addr)
	if err != nil {
		return nil, err
	}
	c := &h1Conn{Conn: nc, key: key}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	if key.scheme == "https" {
		cfg := t.tlsConfig
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			cfg.ServerName = req.URL.Hostname()
		}
		tc := tls.Client(nc, cfg)
		hctx, cancel := ctx, context.CancelFunc(func() {})
		if t.connect > 0 {
			hctx, cancel = context.WithTimeout(ctx, t.connect)
		}
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, err
		}
		c.Conn = tc
	}
	c.in = &capped{r: c.Conn, n: -1}
	c.br = bufio.NewReaderSize(c.in, 4<<10)
	c.bw = bufio.NewWriterSize(c.Conn, 4<<10)
	return c, nil
}

// quiet: nothing waits to be read on an idle connection (no answer nobody asked
// for, no close). A failed look says no.
func (c *h1Conn) quiet() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.raw == nil {
		// Nothing to look with: a connection the server closed fails before any
		// answer, and the call goes again on a new one.
		return true
	}
	quiet := false
	c.raw.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		quiet = errors.Is(err, syscall.EAGAIN)
		return true
	})
	return quiet
}

// lostConn is a kept-alive connection that failed before anything of the answer
// came: the server had closed it.
type lostConn struct{ err error }

func (e *lostConn) Error() string { return e.err.Error() }
func (e *lostConn) Unwrap() error { return e.err }

// aLongTimeAgo ends every read and write on a connection at once.
var aLongTimeAgo = time.Unix(1, 0)

// exchange writes req on c and reads the head of its answer; the body is read by
// whoever gets the answer, and c goes back to the pool when it is read to the end.
func (t *h1) exchange(c *h1Conn, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// The call's context ends the connection's reads and writes, wherever they are.
	var cancelled atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		cancelled.Store(true)
		c.SetDeadline(aLongTimeAgo)
	})
	fail := func(err error) (*http.Response, error) {
		stop()
		if cancelled.Load() {
			return nil, ctx.Err()
		}
		return nil, err
	}
	writeHead(c.bw, req)
	if err := c.bw.Flush(); err != nil {
		return fail(&lostConn{err})
	}
	if t.response > 0 {
		c.SetReadDeadline(time.Now().Add(t.response))
	}
	c.in.n = maxResponseHead
	if _, err := c.br.Peek(1); err != nil {
		if isTimeout(err) && !cancelled.Load() {
			return fail(fmt.Errorf("net/http: timeout awaiting response headers: %w", err))
		}
		return fail(&lostConn{err})
	}
	var resp *http.Response
	for {
		var err error
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			if errors.Is(err, errHeadTooLarge) {
				err = fmt.Errorf("the answer's head is larger than %d bytes: %w", maxResponseHead, err)
			}
			return fail(err)
		}
		// 1xx answers (103 Early Hints) come before the answer; a 101 has no place
		// here: no call on this path asks to switch protocols.
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			if resp.StatusCode == http.StatusSwitchingProtocols {
				return fail(errors.New("net/http: 101 Switching Protocols to a call that asked for no upgrade"))
			}
			continue
		}
		break
	}
	c.in.n = -1
	if t.response > 0 {
		c.SetReadDeadline(time.Time{})
	}
	b := &h1Body{rc: resp.Body, c: c, t: t, stop: stop, keep: !resp.Close}
	if resp.Body == http.NoBody {
		b.finish(true)
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// writeHead writes the request line and headers as the Transport would for a call
// without a body: Host first, User-Agent only when set, nothing of a body.
func writeHead(w *bufio.Writer, req *http.Request) {
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(req.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	if req.Host != "" {
		w.WriteString(req.Host)
	} else {
		w.WriteString(req.URL.Host)
	}
	w.WriteString("\r\n")
	if ua := req.Header.Get("User-Agent"); ua != "" {
		w.WriteString("User-Agent: ")
		w.WriteString(ua)
		w.WriteString("\r\n")
	}
	for k, vs := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(strings.TrimSpace(v))
			w.WriteString("\r\n")
		}
	}
	if req.Close {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
}

// put keeps c for the next call to its host, unless enough are kept.
func (t *h1) put(c *h1Conn) {
	c.since = time.Now()
	t.mu.Lock()
	if len(t.idle[c.key]) < t.maxIdle {
		t.idle[c.key] = append(t.idle[c.key], c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	c.Close()
}

// h1Body is an answer's body; read to its end, it gives its connection back.
type h1Body struct {
	rc   io.ReadCloser
	c    *h1Conn
	t    *h1
	stop func() bool
	keep bool // the server keeps the connection open
	done atomic.Bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done.Load() {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

// Close before the end closes the connection: what is left of the body would be
// read as the next call's answer.
func (b *h1Body) Close() error {
	b.finish(false)
	return nil
}

func (b *h1Body) finish(whole bool) {
	if !b.done.CompareAndSwap(false, true) {
		return
	}
	// stop fails when the call's context already poisoned the connection.
	if b.stop() && whole && b.keep {
		b.t.put(b.c)
		return
	}
	b.c.Close()
}

// capped reads at most n bytes while n >= 0: the answer's head.
type capped struct {
	r io.Reader
	n int64
}

var errHeadTooLarge = errors.New("answer head too large")

func (c *capped) Read(p []byte) (int, error) {
	if c.n < 0 {
		return c.r.Read(p)
	}
	if c.n == 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}
