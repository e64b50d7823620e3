package serve

import (
	"bufio"
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
	return &abortingConn{Conn: c, marker: l.marker, in: bufio.NewReaderSize(c, 4<<10)}, nil
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

// abortingConn is also where a FastCGI connection saves system calls.
// net/http/fcgi reads each record straight from the socket, its 8-byte header
// and then its content: a GET from Apache, five records, took ten read(2)s; in
// comes through a buffer. And it writes each record on its own: the CGI header
// (flushed alone), each part of the body, the empty record that ends the body and
// FCGI_END_REQUEST, four writes for a small answer. The CGI header waits for the
// body's first record, and the empty record for FCGI_END_REQUEST, which always
// follow: two writes. net/http/fcgi sends no header before the body's first
// bytes, so holding it delays nothing a client could see.
type abortingConn struct {
	net.Conn
	marker []byte
	in     *bufio.Reader
	// held are records waiting for the next one; answering: the CGI header of the
	// answer being written went by.
	held      []byte
	answering bool
}

func (c *abortingConn) Read(b []byte) (int, error) { return c.in.Read(b) }

const (
	fcgiHeader         = 8
	fcgiTypeEndRequest = 3
	fcgiTypeStdout     = 6
	// maxJoined bounds what is copied to go in one write; larger goes by writev.
	maxJoined = 16 << 10
)

func recordType(b []byte) byte {
	if len(b) < fcgiHeader || b[0] != 1 {
		return 0
	}
	return b[1]
}

// endsStdout: b is an FCGI_STDOUT record with no content, the end of an answer.
func endsStdout(b []byte) bool {
	return len(b) == fcgiHeader && recordType(b) == fcgiTypeStdout && b[4] == 0 && b[5] == 0
}

// markerRecord bounds a record that can hold only the marker: the 8-byte FastCGI
// header, the marker, up to 7 bytes of padding.
const markerRecord = 8 + 32 + 7

func (c *abortingConn) Write(b []byte) (int, error) {
	if len(b) <= markerRecord && bytes.Contains(b, c.marker) {
		c.Conn.Close()
		return 0, errAborted
	}
	// net/http/fcgi writes a record at a time, holding its connection's lock.
	switch {
	case endsStdout(b), recordType(b) == fcgiTypeStdout && !c.answering:
		c.answering = true
		c.held = append(c.held, b...)
		return len(b), nil
	case recordType(b) == fcgiTypeEndRequest:
		c.answering = false
	}
	if len(c.held) > 0 {
		held := c.held
		c.held = nil
		var err error
		if len(held)+len(b) <= maxJoined {
			held = append(held, b...)
			_, err = c.Conn.Write(held)
		} else {
			both := net.Buffers{held, b}
			_, err = both.WriteTo(c.Conn)
		}
		if cap(held) <= maxJoined {
			c.held = held[:0]
		}
		if err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return c.Conn.Write(b)
}
