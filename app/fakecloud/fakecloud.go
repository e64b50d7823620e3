// Package fakecloud stands in for one OpenStack cloud: Glance v2 (images, their data,
// tags and members), Cinder v3 (volumes, snapshots, backups, transfers and Nova's
// attachments, within a microversion range) and Neutron v2.0 (networks) on one local
// HTTP server, and the version document of one of their roots at / when asked
// (SetRoot). It is the only such stand-in: the proxy tests and the load test use it,
// so it must be no more lenient than the services where mixmatch depends on them.
// Ids are looked up exactly as written (a dash-less form of a dashed id is a 404, as
// in the services' databases); unknown paths and ids are 404s and bad list
// parameters 400s with the services' own error bodies; lists page, sort and link as
// each service does, with absolute URLs where the services build them from the
// caller's host (Cinder's and Neutron's links, Glance's Location, the version
// documents).
//
// It records every call it receives, and can be switched to misbehave: fail, hang,
// answer slowly, break an answer off, reset connections.
package fakecloud

import (
	"crypto/sha256"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// The kinds of resources the cloud holds, as mixmatch names them.
const (
	Images      = "images"
	Volumes     = "volumes"
	Snapshots   = "snapshots"
	Backups     = "backups"
	Transfers   = "transfers"
	Attachments = "attachments"
	Networks    = "networks"
)

// Options shape a cloud; the zero value is a cloud that honours any token.
type Options struct {
	// Name goes into every resource the cloud makes as "cloud", so that a test can
	// tell which cloud answered, and into X-Openstack-Request-Id.
	Name string
	// Tokens, when set, checks X-Auth-Token as keystonemiddleware would and says
	// which project it is scoped to: an unknown token is a 401, a Cinder path of
	// another project a 400, and the project owns what the caller creates and limits
	// what it sees. Without it any token is honoured, scoped to no project.
	Tokens func(token string) (project string, ok bool)
	// ServiceTokens, when set, checks X-Service-Token as keystonemiddleware does
	// and gives its roles: an unknown one is a 401, whatever the user's token. A
	// service token with the service role (Cinder's [keystone_authtoken]
	// service_token_roles) lets a caller delete an attachment Nova still holds.
	// Without it any service token is honoured, with the service role.
	ServiceTokens func(token string) (roles []string, ok bool)
	// NovaKnows says whether the cloud's own Nova holds a server: Cinder asks it
	// before deleting an attachment for a caller without a service token, and
	// refuses (409) while Nova holds the server. Without it Nova holds every one.
	NovaKnows func(server string) bool
	// Virtual, when set, makes the cloud hold resources it never stored: every id it
	// accepts for a kind and the caller's project can be read (never listed). A load
	// test needs an endless supply of ids no one has seen.
	Virtual func(kind, project, id string) bool
	// Created hears of every resource created through the API, as the cloud's
	// notifier would.
	Created func(kind, id, project string)
	// TLS, when set, makes the cloud serve HTTPS with it.
	TLS *tls.Config
	// KeepCalls bounds how many calls Received returns, the latest; 0 keeps all. A
	// long run needs its counts, not every call.
	KeepCalls int
}

// Call is what the cloud received.
type Call struct {
	Method, Path, RawQuery, Host string
	Header                       http.Header
	// Token, ProxyList and ServiceToken are X-Auth-Token, MM-PROXY-LIST and
	// X-Service-Token.
	Token, ProxyList, ServiceToken string
	BodyHash                       [32]byte
	BodySize                       int
	// ClientCert is the common name of the TLS client certificate, if one came.
	ClientCert string
}

// Cloud is a running stand-in.
type Cloud struct {
	opts    Options
	server  *httptest.Server
	closing chan struct{}
	closed  sync.Once

	mu     sync.Mutex
	cols   map[string]*collection
	header http.Header // sent with every answer
	root   string      // the service whose root GET / answers as
	// volumeMin and volumeMax are the minor versions of Cinder's microversion
	// range: its root offers them, and a call outside them is a 406.
	volumeMin, volumeMax int
	calls                []Call
	total                int // calls received, kept or not
	waiters              []waiter
	counts               map[string]int
	conns                int
	faults               faults
}

type waiter struct {
	n  int
	ch chan struct{}
}

// New starts a cloud; Close stops it.
func New(opts Options) *Cloud {
	c := &Cloud{opts: opts, closing: make(chan struct{}), header: http.Header{}, counts: map[string]int{},
		volumeMax: 70, cols: map[string]*collection{}}
	for _, kind := range []string{Images, Volumes, Snapshots, Backups, Transfers, Attachments, Networks} {
		c.cols[kind] = newCollection()
	}
	c.faults.reset()
	c.server = httptest.NewUnstartedServer(http.HandlerFunc(c.serve))
	// The failure switches and the TLS tests make the server log what it is made to
	// do; the calls record what matters.
	c.server.Config.ErrorLog = log.New(io.Discard, "", 0)
	c.server.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.mu.Lock()
			c.conns++
			c.mu.Unlock()
		}
	}
	if opts.TLS != nil {
		c.server.TLS = opts.TLS
		c.server.StartTLS()
	} else {
		c.server.Start()
	}
	return c
}

// URL is the endpoint of all three services.
func (c *Cloud) URL() string { return c.server.URL }

// Close stops the server after releasing held and delayed calls; the cloud then
// refuses connections, as a cloud that is down. It may be called more than once.
func (c *Cloud) Close() {
	c.closed.Do(func() { close(c.closing) })
	c.server.Close()
}

// SetHeader makes every answer carry a header, as a web server in front of the
// service might add one.
func (c *Cloud) SetHeader(key, value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.header.Set(key, value)
}

// Received returns the calls so far (the latest KeepCalls of them), oldest first.
func (c *Cloud) Received() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls := c.calls
	if keep := c.opts.KeepCalls; keep > 0 && len(calls) > keep {
		calls = calls[len(calls)-keep:]
	}
	return append([]Call(nil), calls...)
}

// Arrived is closed once n calls have arrived in all, held or answered: a test waits
// on it instead of sleeping.
func (c *Cloud) Arrived(n int) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	if c.total >= n {
		close(ch)
		return ch
	}
	c.waiters = append(c.waiters, waiter{n, ch})
	return ch
}

// Counts says how many calls were answered, by operation ("list", "get", "create",
// "update", "delete", "upload", "download", "tag", "member") for successes and by
// status ("404") for the others.
func (c *Cloud) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// Connections is how many connections the cloud accepted.
func (c *Cloud) Connections() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns
}

// Add stores a resource of a kind in a project ("" for one every project sees)
// under id, exactly as written. props override the fields the cloud fills in
// (created_at among them; now by default). An id already held is a programming
// error.
func (c *Cloud) Add(kind, project, id string, props map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	col := c.cols[kind]
	if col == nil {
		panic("fakecloud: no kind " + kind)
	}
	if col.byID[id] != nil {
		panic("fakecloud: " + kind + " " + id + " is already held")
	}
	doc := c.newDoc(kind, project, id, time.Now())
	for k, v := range props {
		doc[k] = v
	}
	col.insert(newResource(kind, project, id, doc))
}

// PutData gives an image its data, as an upload would: it becomes active.
func (c *Cloud) PutData(id string, data []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.cols[Images].byID[id]
	if r == nil {
		return false
	}
	setImageData(r, data)
	return true
}

// Has reports whether the cloud stores a resource under exactly that id.
func (c *Cloud) Has(kind, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	col := c.cols[kind]
	return col != nil && col.byID[id] != nil
}

func (c *Cloud) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	call := Call{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone(),
		Token: r.Header.Get("X-Auth-Token"), ProxyList: r.Header.Get("MM-PROXY-LIST"),
		ServiceToken: r.Header.Get("X-Service-Token"), BodyHash: sha256.Sum256(body), BodySize: len(body)}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		call.ClientCert = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	c.mu.Lock()
	c.record(call)
	f := c.faults.take()
	extra := c.header.Clone()
	c.mu.Unlock()

	if f.resetConns {
		c.count("reset")
		resetConnection(w)
		return
	}
	if !c.wait(r, f.hold, f.delay) {
		return // the client gave up, or the cloud is closing
	}
	var resp response
	if f.failStatus != 0 {
		resp = serviceOf(r.URL.Path).fail(r, f.failStatus, "the fault switch of this stand-in")
	} else {
		resp = c.handle(r, body)
	}
	for k, v := range extra {
		resp.header()[k] = v
	}
	c.write(w, r, resp, f)
	if resp.after != nil {
		resp.after()
	}
}

func (c *Cloud) record(call Call) {
	c.total++
	c.calls = append(c.calls, call)
	// Trimmed in batches, so that keeping the latest costs no copy per call.
	if keep := c.opts.KeepCalls; keep > 0 && len(c.calls) > 2*keep {
		c.calls = append(c.calls[:0], c.calls[len(c.calls)-keep:]...)
	}
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if c.total >= w.n {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

func (c *Cloud) count(key string) {
	c.mu.Lock()
	c.counts[key]++
	c.mu.Unlock()
}

// handle answers a call as the service its path names.
func (c *Cloud) handle(r *http.Request, body []byte) response {
	if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && c.rootService() != "" {
		return c.rootDocument(r)
	}
	// keystonemiddleware stands before every route: no valid token, no 404 either.
	token := r.Header.Get("X-Auth-Token")
	project, ok := "", token != ""
	if ok && c.opts.Tokens != nil {
		project, ok = c.opts.Tokens(token)
	}
	if !ok {
		return unauthorized()
	}
	var roles []string
	if st := r.Header.Get("X-Service-Token"); st != "" {
		// keystonemiddleware refuses the call when a service token came and is
		// invalid, however good the user's token.
		roles, ok = []string{"service"}, true
		if c.opts.ServiceTokens != nil {
			roles, ok = c.opts.ServiceTokens(st)
		}
		if !ok {
			return unauthorized()
		}
	}
	q, err := parseQuery(r.URL.RawQuery)
	svc := serviceOf(r.URL.Path)
	if err != nil {
		return svc.fail(r, http.StatusBadRequest, err.Error())
	}
	req := &request{Request: r, body: body, project: project, q: q, svc: svc, serviceRoles: roles}
	segs := splitPath(r.URL.Path)
	c.mu.Lock()
	defer c.mu.Unlock()
	if svc == cinder {
		if resp, ok := c.checkMicroversion(req); !ok {
			return resp
		}
	}
	switch {
	case len(segs) >= 2 && segs[0] == "v2" && segs[1] == "images":
		return c.glance(req, segs[2:])
	case len(segs) >= 3 && segs[0] == "v3" && (segs[2] == Volumes || segs[2] == Snapshots):
		return c.cinder(req, segs[1], segs[2], segs[3:])
	case len(segs) >= 3 && segs[0] == "v3" && segs[2] == Attachments:
		return c.attachments(req, segs[1], segs[3:])
	case len(segs) >= 3 && segs[0] == "v3" && segs[2] == Backups:
		return c.backups(req, segs[1], segs[3:])
	case len(segs) >= 3 && segs[0] == "v3" && (segs[2] == "os-volume-transfer" || segs[2] == "volume-transfers"):
		return c.transfers(req, segs[1], segs[2], segs[3:])
	case len(segs) >= 2 && segs[0] == "v2.0" && segs[1] == "networks":
		return c.neutron(req, segs[2:])
	}
	return svc.noRoute(r)
}

// find returns what the caller may read of a kind under exactly id: stored, or held
// virtually.
func (c *Cloud) find(kind, project, id string) (*resource, bool) {
	if r := c.cols[kind].byID[id]; r != nil {
		return r, true
	}
	if c.opts.Virtual != nil && id != "" && c.opts.Virtual(kind, project, id) {
		// Long before anything the run creates.
		at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
		return newResource(kind, project, id, c.newDoc(kind, project, id, at)), true
	}
	return nil, false
}

// create stores a resource made through the API and tells the notifier.
func (c *Cloud) create(kind, project string, doc map[string]any, resp response) response {
	id, _ := doc["id"].(string)
	c.cols[kind].insert(newResource(kind, project, id, doc))
	if c.opts.Created != nil {
		created := c.opts.Created
		resp.after = func() { created(kind, id, project) }
	}
	return resp
}
