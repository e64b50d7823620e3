package httpclient

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mixmatch/app/apierr"
)

func newLean(response time.Duration) *h1 {
	return newH1(pool(nil, 5*time.Second, response), nil, 5*time.Second, response)
}

// counted is a test server that counts the connections it accepted.
func counted(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func call(t *testing.T, rt http.RoundTripper, method, u string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, u, err)
	}
	return resp, string(body)
}

// Calls without a body, whatever their answer's framing, go one after the other on
// one connection, and the server gets the request as it was made.
func TestBodilessCallsShareOneConnection(t *testing.T) {
	srv, conns := counted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen", r.Method+" "+r.RequestURI+" "+r.Host+" "+r.Header.Get("X-Auth-Token")+
			" ["+r.Header.Get("Accept-Encoding")+"]")
		switch r.URL.Path {
		case "/chunked":
			io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			io.WriteString(w, "whole")
		}
	})
	rt := newLean(0)
	host := strings.TrimPrefix(srv.URL, "http://")
	for i := 0; i < 5; i++ {
		for _, c := range []struct{ method, path, want string }{
			{"GET", "/v2/images/a%2Fb?limit=2&marker=x%20y", "whole"},
			{"GET", "/chunked", "part one, part two"},
			{"HEAD", "/v2/images/x", ""},
			{"DELETE", "/empty", ""},
		} {
			resp, body := call(t, rt, c.method, srv.URL+c.path, http.Header{"X-Auth-Token": {"tok"}})
			if body != c.want {
				t.Fatalf("%s %s: body %q, want %q", c.method, c.path, body, c.want)
			}
			if seen, want := resp.Header.Get("X-Seen"), c.method+" "+c.path+" "+host+" tok []"; seen != want {
				t.Fatalf("the server saw %q, want %q", seen, want)
			}
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 calls took %d connections, want 1", n)
	}
}

// An answer closed before its end takes its connection with it: the rest of it
// must not be read as the next call's answer.
func TestAnAnswerLeftUnreadClosesItsConnection(t *testing.T) {
	srv, conns := counted(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path+strings.Repeat(".", 64<<10))
	})
	rt := newLean(0)
	req, _ := http.NewRequest("GET", srv.URL+"/first", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 10))
	resp.Body.Close()
	_, body := call(t, rt, "GET", srv.URL+"/second", nil)
	if !strings.HasPrefix(body, "/second.") || len(body) != len("/second")+64<<10 {
		t.Fatalf("second answer: %q…", body[:min(len(body), 20)])
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// rawServer answers each connection with serve, on a plain TCP listener: what a
// misbehaving or closing server does on the wire.
func rawServer(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return "http://" + l.Addr().String()
}

// readRequest reads one request's head off br.
func readRequest(br *bufio.Reader) (*http.Request, error) {
	return http.ReadRequest(br)
}

// A server that closes a kept-alive connection without saying so costs the next
// call nothing: it goes again on a new connection.
func TestAConnectionTheServerClosedIsNotAnError(t *testing.T) {
	var accepted atomic.Int64
	u := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		accepted.Add(1)
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	rt := newLean(0)
	for i := 0; i < 3; i++ {
		if resp, body := call(t, rt, "GET", u+"/x", nil); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("call %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := accepted.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
}

// A server's parting answer on an idle connection (a 408 before it closes) is not
// taken for the next call's.
func TestAnUnaskedAnswerIsNotTheNextCallsAnswer(t *testing.T) {
	u := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	})
	rt := newLean(0)
	call(t, rt, "GET", u+"/x", nil)
	// What checkIdleAfter waits for, without waiting: the connection is old enough.
	rt.mu.Lock()
	for _, conns := range rt.idle {
		for _, c := range conns {
			c.since = c.since.Add(-2 * checkIdleAfter)
		}
	}
	rt.mu.Unlock()
	if resp, body := call(t, rt, "GET", u+"/y", nil); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("second call: %d %q", resp.StatusCode, body)
	}
}

// 103 Early Hints come before the answer and are not it.
func TestEarlyHintsAreSkipped(t *testing.T) {
	u := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
	})
	if resp, body := call(t, newLean(0), "GET", u, nil); resp.StatusCode != 200 || body != "final" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

// A server that never ends its headers costs a bounded read, then an error.
func TestAnEndlessHeadIsRefused(t *testing.T) {
	u := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
		for i := 0; i < 2*maxResponseHead/len(line); i++ {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	})
	req, _ := http.NewRequest("GET", u, nil)
	_, err := newLean(0).RoundTrip(req)
	if err == nil || !strings.Contains(err.Error(), "head is larger") {
		t.Fatalf("got %v, want the head refused", err)
	}
}

// A header value that would end the head and start a second request (a token
// from a lying SP, say) is refused before anything is written.
func TestAHeaderThatWouldSmuggleARequestIsRefused(t *testing.T) {
	srv, conns := counted(t, func(w http.ResponseWriter, r *http.Request) {})
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("X-Auth-Token", "tok")
	req.Header["X-Auth-Token"] = []string{"tok\r\n\r\nGET /admin HTTP/1.1"}
	if _, err := newLean(0).RoundTrip(req); err == nil || !strings.Contains(err.Error(), "invalid header") {
		t.Fatalf("got %v, want the header refused", err)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("%d connections opened for a refused call", n)
	}
}

// The call's context ends a call whose answer does not come, and response_timeout
// bounds the wait for its head with a timeout error (a 504 upstream).
func TestAWaitingCallEndsWithItsContextOrTimeout(t *testing.T) {
	release := make(chan struct{})
	srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	done := make(chan error, 1)
	go func() {
		_, err := newLean(0).RoundTrip(req)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v, want context.Canceled", err)
	}

	req, _ = http.NewRequest("GET", srv.URL, nil)
	_, err := newLean(100 * time.Millisecond).RoundTrip(req)
	if err == nil || !apierr.IsTimeout(err) {
		t.Fatalf("unanswered call: %v, want a timeout", err)
	}
}

// A body being read ends with the call's context too.
func TestABodyEndsWithItsContext(t *testing.T) {
	release := make(chan struct{})
	srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "start")
		w.(http.Flusher).Flush()
		<-release
	})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := newLean(0).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 5)
	io.ReadFull(resp.Body, buf)
	cancel()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("the body read on after its call was cancelled")
	}
}

// Connection: close in an answer is honoured: the next call opens a new one.
func TestConnectionCloseIsHonoured(t *testing.T) {
	srv, conns := counted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	rt := newLean(0)
	for i := 0; i < 2; i++ {
		if _, body := call(t, rt, "GET", srv.URL, nil); body != "bye" {
			t.Fatalf("%q", body)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// A call with a body goes through net/http's Transport, body and all.
func TestCallsWithABodyTakeTheTransport(t *testing.T) {
	srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+string(b))
	})
	req, _ := http.NewRequest("PUT", srv.URL, strings.NewReader("payload"))
	resp, err := newLean(0).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "PUT payload" {
		t.Fatalf("%q", b)
	}
}
