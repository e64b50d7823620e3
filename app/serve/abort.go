package serve

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
)

// A FastCGI answer ends with FCGI_END_REQUEST, which Apache's mod_proxy_fcgi takes
// as a complete response: it ends the chunked body cleanly, and a download an SP
// broke off would reach the client as a shorter, seemingly whole image. Only a
// FastCGI connection that breaks makes Apache cut the client's connection.
// net/http/fcgi does not expose its connections, so the handler asks for the break
// in band: it writes a per-process random marker in a record of its own, and the
// connection that would carry that record closes instead.

var errAborted = errors.New("answer aborted: the service provider broke off")

type abortingListener struct {
	net.Listener
	marker []byte
}

func newAbortingListener(l net.Listener) *abortingListener {
	marker := make([]byte, 32)
	rand.Read(marker)
	return &abortingListener{Listener: l, marker: marker}
}

func (l *abortingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &abortingConn{Conn: c, marker: l.marker}, nil
}

// abort breaks the FastCGI connection that carries w's answer.
func (l *abortingListener) abort(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	// The marker goes alone into one record: what was buffered goes first.
	if rc.Flush() != nil {
		return
	}
	w.Write(l.marker)
	rc.Flush()
}

type abortingConn struct {
	net.Conn
	marker []byte
}

// markerRecord bounds a record that can hold only the marker: the 8-byte FastCGI
// header, the marker, up to 7 bytes of padding.
const markerRecord = 8 + 32 + 7

func (c *abortingConn) Write(b []byte) (int, error) {
	if len(b) <= markerRecord && bytes.Contains(b, c.marker) {
		c.Conn.Close()
		return 0, errAborted
	}
	return c.Conn.Write(b)
}
