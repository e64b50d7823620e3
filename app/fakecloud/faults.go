package fakecloud

import (
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"time"
)

// faults are the failure switches; every call takes a copy when it arrives, so a
// switch thrown later does not change a call already under way.
type faults struct {
	failLeft   int
	failStatus int
	hold       chan struct{} // calls wait until it is closed
	delay      time.Duration
	cut        int // -1: off
	truncate   int // -1: off
	resetConns bool
}

func (f *faults) reset() {
	if f.hold != nil {
		close(f.hold)
	}
	*f = faults{cut: -1, truncate: -1}
}

// take is the faults one arriving call meets.
func (f *faults) take() faults {
	out := *f
	out.failStatus = 0
	if f.failLeft > 0 {
		f.failLeft--
		out.failStatus = f.failStatus
	}
	return out
}

// FailNext answers the next n calls with status and the service's error body,
// without doing anything else.
func (c *Cloud) FailNext(n, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.failLeft, c.faults.failStatus = n, status
}

// Hang holds every call arriving from now on, once recorded, until release is called
// (or Heal, or Close) or the client gives up, as a wedged service does. release may
// be called more than once.
func (c *Cloud) Hang() (release func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.faults.hold == nil {
		c.faults.hold = make(chan struct{})
	}
	hold := c.faults.hold
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.faults.hold == hold {
			close(hold)
			c.faults.hold = nil
		}
	}
}

// SlowHeaders makes every call arriving from now on wait d (or until the client
// gives up) before it is handled and answered.
func (c *Cloud) SlowHeaders(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.delay = d
}

// BreakAfter makes every answer whose body is longer than n bytes stop after its
// headers and n bytes of body, and the connection drop: the client is left with
// less than Content-Length announced, as when a service's store fails mid-image.
func (c *Cloud) BreakAfter(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.cut = n
}

// TruncateAfter makes every answer whose body is longer than n bytes end cleanly
// after n bytes, Content-Length included: a whole HTTP answer whose JSON is cut
// short.
func (c *Cloud) TruncateAfter(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.truncate = n
}

// ResetConnections makes every call arriving from now on, once recorded, end in a
// TCP reset without an answer, as a crashing server's kernel sends.
func (c *Cloud) ResetConnections() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.resetConns = true
}

// Heal turns every switch off and releases the held calls.
func (c *Cloud) Heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.reset()
}

// wait holds a call while the cloud hangs, then delays it; false when the client
// gave up or the cloud is closing meanwhile.
func (c *Cloud) wait(r *http.Request, hold chan struct{}, delay time.Duration) bool {
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return false
		case <-c.closing:
			return false
		}
	}
	if delay > 0 {
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return false
		case <-c.closing:
			return false
		}
	}
	return true
}

// write sends an answer, broken off or cut short as the switches say.
func (c *Cloud) write(w http.ResponseWriter, r *http.Request, resp response, f faults) {
	h := w.Header()
	for k, v := range resp.hdr {
		h[k] = v
	}
	if c.opts.Name != "" {
		h.Set("X-Openstack-Request-Id", "req-"+c.opts.Name)
	}
	body := resp.body
	if f.truncate >= 0 && len(body) > f.truncate {
		body = body[:f.truncate]
	}
	if resp.status != http.StatusNoContent && resp.status != http.StatusNotModified {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	if resp.status < 400 && resp.op != "" {
		c.count(resp.op)
	} else {
		c.count(strconv.Itoa(resp.status))
	}
	w.WriteHeader(resp.status)
	if r.Method == http.MethodHead {
		return
	}
	if f.cut >= 0 && len(body) > f.cut {
		w.Write(body[:f.cut])
		rc := http.NewResponseController(w)
		rc.Flush()
		if conn, _, err := rc.Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	w.Write(body)
}

// resetConnection drops a call's connection with a TCP reset.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if t, ok := conn.(*tls.Conn); ok {
		conn = t.NetConn()
	}
	if t, ok := conn.(*net.TCPConn); ok {
		t.SetLinger(0)
	}
	conn.Close()
}
