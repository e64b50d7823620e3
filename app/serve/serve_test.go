package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fcgiGet speaks just enough FastCGI (the responder role, as mod_proxy_fcgi does) to
// send one GET and return the raw response the application wrote.
func fcgiGet(t *testing.T, network, addr, path string) string {
	t.Helper()
	out, ended := fcgiTry(t, network, addr, path)
	if !ended {
		t.Fatalf("the FastCGI connection broke before the end of %s: %q", path, out)
	}
	return out
}

// fcgiTry is one FastCGI request: the answer's STDOUT, and whether it ended with
// END_REQUEST rather than a broken connection.
func fcgiTry(t *testing.T, network, addr, path string) (string, bool) {
	t.Helper()
	conn, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	record := func(typ byte, content []byte) {
		h := []byte{1, typ, 0, 1, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(h[4:], uint16(len(content)))
		if _, err := conn.Write(append(h, content...)); err != nil {
			t.Fatal(err)
		}
	}
	record(1, []byte{0, 1, 0, 0, 0, 0, 0, 0}) // BEGIN_REQUEST, responder
	var params bytes.Buffer
	for _, kv := range [][2]string{{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", path}, {"SCRIPT_NAME", ""},
		{"SERVER_PROTOCOL", "HTTP/1.1"}, {"HTTP_HOST", "mixmatch"}} {
		params.Write([]byte{byte(len(kv[0])), byte(len(kv[1]))})
		params.WriteString(kv[0] + kv[1])
	}
	record(4, params.Bytes()) // PARAMS
	record(4, nil)
	record(5, nil) // STDIN, empty
	var out bytes.Buffer
	r := bufio.NewReader(conn)
	for {
		h := make([]byte, 8)
		if _, err := io.ReadFull(r, h); err != nil {
			return out.String(), false
		}
		body := make([]byte, int(binary.BigEndian.Uint16(h[4:]))+int(h[6]))
		if _, err := io.ReadFull(r, body); err != nil {
			return out.String(), false
		}
		switch h[1] {
		case 6: // STDOUT
			out.Write(body[:binary.BigEndian.Uint16(h[4:])])
		case 3: // END_REQUEST
			return out.String(), true
		}
	}
}

func TestFastCGIOnUnixSocketAndShutdown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "mixmatch.sock")
	l, err := Listen(Frontend{FCGI: "unix:" + sock})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"path":"` + r.URL.Path + `"}`))
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, l, true, h, slog.New(slog.DiscardHandler)) }()

	if got := fcgiGet(t, "unix", sock, "/image/v2/images"); !strings.Contains(got, `{"path":"/image/v2/images"}`) ||
		!strings.Contains(got, "Content-Type: application/json") {
		t.Fatalf("FastCGI response = %q", got)
	}

	// A request in flight when shutdown begins is answered before Serve returns.
	slow := make(chan string, 1)
	go func() { slow <- fcgiGet(t, "unix", sock, "/slow") }()
	<-entered
	cancel()
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	if got := <-slow; !strings.Contains(got, `{"path":"/slow"}`) {
		t.Fatalf("in-flight response = %q", got)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := net.Dial("unix", sock); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

func TestHTTPShutdownWaitsForInFlight(t *testing.T) {
	l, err := Listen(Frontend{HTTP: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.Write([]byte("done"))
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, l, false, h, slog.New(slog.DiscardHandler)) }()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + l.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-entered
	cancel()
	close(release)
	if body := <-got; body != "done" {
		t.Fatalf("in-flight request got %q", body)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
}

func TestListenRefuses(t *testing.T) {
	for _, fe := range []Frontend{
		{FCGI: "127.0.0.1:9000"},
		{FCGI: "udp:127.0.0.1:9000"},
		{FCGI: "unix:"},
	} {
		if l, err := Listen(fe); err == nil {
			l.Close()
			t.Errorf("Listen(%+v) succeeded", fe)
		}
	}
	// Under go test, standard input is not a socket.
	if _, err := Listen(Frontend{}); err == nil || !strings.Contains(err.Error(), "--http") {
		t.Errorf("Listen without a front end = %v", err)
	}
}

// Past max_connections a new connection is not served until one closes; then it is.
func TestLimitConnectionsHoldsTheNextOneUntilOneCloses(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := LimitConnections(raw, 2)
	opened := make(chan struct{}, 10)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				opened <- struct{}{}
			}
		}}
	go srv.Serve(l)
	defer srv.Close()
	var idle []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		<-opened
		idle = append(idle, c)
	}
	third, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	io.WriteString(third, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	third.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _ := third.Read(make([]byte, 1)); n != 0 {
		t.Fatal("a third connection was served with two open and a bound of 2")
	}
	idle[0].Close()
	third.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	if err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	if b, _ := io.ReadAll(io.LimitReader(resp.Body, 2)); string(b) != "ok" {
		t.Fatalf("after one closed: %q", b)
	}
}
