// Package proxy routes each call to the service provider (SP) that holds its
// resource and streams the answer back: the MM-SERVICE-PROVIDER header first, then
// the stored mapping, then a broadcast search, else the local cloud.
package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"mixmatch/app/apierr"
	"mixmatch/app/config"
	"mixmatch/app/health"
	"mixmatch/app/httpclient"
	"mixmatch/app/k2k"
	"mixmatch/app/keystone"
	"mixmatch/app/metrics"
	"mixmatch/app/reqinfo"
	"mixmatch/app/reqlog"
	"mixmatch/app/services"
	"mixmatch/app/store"
	"mixmatch/app/versions"
)

// Auth validates users' tokens at the local Keystone.
type Auth interface {
	Validate(ctx context.Context, token string) (*keystone.Token, error)
}

// Tokens gives tokens at remote SPs (k2k.Exchanger).
type Tokens interface {
	Token(ctx context.Context, sp *config.SP, user *keystone.Token, userToken, project string) (k2k.Scoped, error)
	Projects(ctx context.Context, sp *config.SP, user *keystone.Token, userToken string) ([]keystone.Project, error)
	Forget(ctx context.Context, sp *config.SP, userToken, project string)
}

// Deps are what a proxy works with besides its configuration.
type Deps struct {
	Store  *store.Store
	Auth   Auth
	Tokens Tokens
	// Transport gives the round tripper towards each SP (httpclient.Clients.Transport
	// outside tests).
	Transport func(*config.SP) http.RoundTripper
	Logger    *slog.Logger
	// Tracker hears what each SP answered (for /healthcheck?detail); a private one
	// when nil.
	Tracker *health.Tracker
	// Metrics count upstream latency and learned mappings; a private set when nil.
	Metrics *metrics.Set
	// Service gives mixmatch's own token at the local Keystone ([auth];
	// keystone.Client), which K2K turns into the service token of an SP whose
	// service_token is k2k; nil sends no SP one.
	Service ServiceAccount
}

// ServiceAccount is mixmatch's own account at the local Keystone.
type ServiceAccount interface {
	ServiceToken(ctx context.Context) (string, error)
}

// Proxy is the handler of /image, /volume and /network.
type Proxy struct {
	cfg     *config.Config
	store   *store.Store
	auth    Auth
	tokens  Tokens
	service ServiceAccount
	logger  *slog.Logger
	tracker *health.Tracker
	metrics *metrics.Set
	// One reverse proxy and one transport per SP, each with its timeouts.
	reverse    map[string]*httputil.ReverseProxy
	transports map[string]http.RoundTripper
	// timeout bounds the work done before a call is forwarded or answered here
	// (validation, K2K, broadcast, aggregation): [DEFAULT] request_timeout. Under
	// FastCGI nothing cancels a request whose client went away.
	timeout time.Duration

	learning sync.WaitGroup
	// micro is the microversion range of the version documents mixmatch writes.
	micro *microversions
}

// New builds the proxy.
func New(cfg *config.Config, d Deps) *Proxy {
	timeout := cfg.RequestTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	if d.Tracker == nil {
		d.Tracker = health.NewTracker()
	}
	if d.Metrics == nil {
		d.Metrics = metrics.New()
	}
	p := &Proxy{cfg: cfg, store: d.Store, auth: d.Auth, tokens: d.Tokens, service: d.Service, logger: d.Logger, timeout: timeout,
		tracker: d.Tracker, metrics: d.Metrics,
		reverse: map[string]*httputil.ReverseProxy{}, transports: map[string]http.RoundTripper{}}
	p.micro = newMicroversions(p)
	for _, sp := range cfg.SPs {
		p.transports[sp.Name] = timed{d.Transport(sp)}
		p.reverse[sp.Name] = &httputil.ReverseProxy{
			Rewrite:   p.rewrite,
			Transport: p.transports[sp.Name],
			// 0, not -1: ReverseProxy already flushes at once what has no length
			// (chunked image data, event streams); a flush after every write of
			// the rest cost a syscall per buffer and the header one of its own.
			FlushInterval:  0,
			BufferPool:     copyBuffers,
			ModifyResponse: p.modifyResponse,
			ErrorHandler:   p.errorHandler,
			ErrorLog:       slog.NewLogLogger(d.Logger.Handler(), slog.LevelWarn),
		}
	}
	return p
}

// timed counts the time to an SP's response headers as the call's wait on it
// (the request line's upstream_ms).
type timed struct{ http.RoundTripper }

func (t timed) RoundTrip(r *http.Request) (*http.Response, error) {
	w := reqlog.Wait(r.Context())
	defer w.Done()
	return t.RoundTripper.RoundTrip(r)
}

// copyBuffers lends ReverseProxy the buffers it copies answers through; without a
// pool it allocates (and the collector clears) 32 KiB for every call.
var copyBuffers = &bufferPool{sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.Pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.Pool.Put(&b) }

// target is where one call goes, and with which token.
type target struct {
	sp      *config.SP
	token   string
	project string // remote project id, for Cinder paths
	url     *url.URL
	info    reqinfo.Request
	// learn: record where the resource was found, once the SP answers 2xx.
	learn bool
	// in is the client's request; ReverseProxy hands its hooks the outgoing one.
	in *http.Request
	// start is when the call left for the SP.
	start time.Time
	// user and userToken are the caller as the local Keystone validated them: what a
	// new token at the SP is asked for when a call must go again.
	user      *keystone.Token
	userToken string
	// retried: the call was sent again after the SP refused a cached token.
	retried bool
	// answer, when set, is the SP's answer to this call, already in hand: it is
	// replayed instead of asked for again.
	answer *answer
	// ownersProject: project is the mapping's, the resource owner's, where the user
	// may have no role; chosen is the client's MM-PROJECT-ID.
	ownersProject bool
	chosen        string
	// parent names the parent a create went to, for messages: "volume_id <id>".
	parent string
	// callerService is the caller's X-Service-Token; serviceToken is what a remote
	// SP gets in its place, mixmatch's own K2K token there, got with serviceOwner
	// (mixmatch's own local token) and scoped to serviceProject.
	callerService, serviceToken, serviceOwner, serviceProject string
}

type ctxKey struct{}

// errRefusedToken is a remote SP answering 401 to a K2K token mixmatch had cached
// (revoked, or its keys rotated): the call goes again with a new one.
var errRefusedToken = errors.New("the service provider refused a cached K2K token")

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info, err := reqinfo.Parse(r.URL.EscapedPath())
	if errors.Is(err, reqinfo.ErrNotProxied) {
		err = apierr.New(http.StatusNotFound, "%s", err)
	}
	if err != nil {
		p.respond(w, r, err)
		return
	}
	if len(p.byPrecedence(info.Service, nil)) == 0 {
		// Not a 502 (nothing failed) nor an empty list (nothing was asked).
		p.respond(w, r, apierr.New(http.StatusNotFound, "no service provider offers /%s (enabled_services)", info.Service))
		return
	}
	local, _ := p.cfg.SP(config.LocalSP)
	if info.Version == "" && p.cfg.Aggregation {
		ctx, cancel := context.WithTimeout(r.Context(), p.timeout)
		defer cancel()
		versions.Write(w, info.Service, p.cfg.APIVersions[info.Service], p.publicURL(r), p.micro.get(ctx, info.Service))
		return
	}
	if info.Version == "" || info.ResourceType == "" {
		// Version discovery is the local cloud's; unversioned roots are aggregated
		// by the versions handler when aggregation is on.
		p.forward(w, r, &target{sp: local, token: r.Header.Get("X-Auth-Token"), info: info})
		return
	}
	// Everything before forwarding is bounded; the forwarded call itself is bounded
	// by the SP's timeouts, as its data may stream for long.
	ctx, cancel := context.WithTimeout(r.Context(), p.timeout)
	defer cancel()
	bounded := r.WithContext(ctx)
	userToken := r.Header.Get("X-Auth-Token")
	user, err := p.auth.Validate(ctx, userToken)
	if err != nil {
		p.respond(w, r, err)
		return
	}
	if p.aggregates(r, info) {
		p.aggregate(w, bounded, info, user, userToken)
		return
	}
	body, err := p.holdCreateBody(r, info)
	if err != nil {
		p.respond(w, r, err)
		return
	}
	t, err := p.locate(bounded, info, user, userToken, body)
	if err == nil {
		t.callerService = r.Header.Get("X-Service-Token")
		err = p.authorize(ctx, t)
	}
	if err != nil {
		p.respond(w, r, err)
		return
	}
	p.forward(w, r, t)
}

// locate picks the SP of a call: header, mapping (of the resource, or of the
// parents a create's body names), broadcast, local. body is what holdCreateBody
// kept of a create.
func (p *Proxy) locate(r *http.Request, info reqinfo.Request, user *keystone.Token, userToken string, body []byte) (*target, error) {
	skip := proxyList(r.Header)
	at := func(sp *config.SP, project string) *target {
		return &target{sp: sp, project: project, info: info, user: user, userToken: userToken}
	}
	if name := r.Header.Get("MM-SERVICE-PROVIDER"); name != "" {
		sp, ok := p.cfg.SP(name)
		if !ok || !sp.Enabled(info.Service) {
			return nil, apierr.New(http.StatusBadRequest, "MM-SERVICE-PROVIDER %q is not a service provider enabled for %s", name, info.Service)
		}
		if skip[sp.SPName] {
			return nil, apierr.New(http.StatusBadRequest, "MM-SERVICE-PROVIDER %q is in MM-PROXY-LIST", name)
		}
		if body != nil {
			byParent, err := p.byParents(r, info, body, user, userToken, skip)
			if err == nil {
				err = checkNamed(sp, byParent)
			}
			if err != nil || byParent != nil {
				return byParent, err
			}
		}
		return at(sp, r.Header.Get("MM-PROJECT-ID")), nil
	}
	if body != nil {
		if t, err := p.byParents(r, info, body, user, userToken, skip); err != nil || t != nil {
			return t, err
		}
	}
	// What every cloud has its own of (volume types, Glance tasks, schemas) is the
	// local cloud's to answer: a remote cloud's copy is no resource of the user. A
	// type the table does not know may be one, and is searched for.
	c, known := services.Lookup(info.Service, info.ResourceType)
	if info.ResourceID != "" && (!known || c.PerCloud) {
		m, err := p.store.Find(r.Context(), services.RowType(info.Service, info.ResourceType), info.ResourceID)
		if err == nil {
			if sp, ok := p.cfg.SP(m.ResourceSP); ok && sp.Enabled(info.Service) && !skip[sp.SPName] {
				t := at(sp, m.ProjectID)
				t.ownersProject, t.chosen = true, r.Header.Get("MM-PROJECT-ID")
				return t, nil
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			p.logger.Warn("mapping lookup failed; going on without it", "type", info.ResourceType, "id", info.ResourceID, "error", err)
		}
		if p.cfg.SearchByBroadcast {
			return p.broadcast(r, info, user, userToken, skip)
		}
	}
	local, _ := p.cfg.SP(config.LocalSP)
	return at(local, ""), nil
}

// authorize sets the token (and remote project) the target gets.
func (p *Proxy) authorize(ctx context.Context, t *target) error {
	if t.token != "" {
		return nil
	}
	if t.sp.Local() {
		t.token = t.userToken
		return nil
	}
	s, err := p.tokens.Token(ctx, t.sp, t.user, t.userToken, t.project)
	if refused(err) && t.ownersProject {
		s, err = p.ownProject(ctx, t, err)
	}
	if err != nil {
		return err
	}
	t.token, t.project = s.Token, s.ProjectID
	return p.authorizeService(ctx, t)
}

// ownProject scopes the call to a project of the user's own at the SP, once the
// owner's project (from the mapping) is refused: a user sees images they do not own
// (public, shared, community) without a role in their owner's project, and any of
// their own projects reads them. MM-PROJECT-ID first, then the user's projects there
// in order, up to max_projects_per_sp; the first that yields a token. When none
// does, the answer is the owner's refusal.
func (p *Proxy) ownProject(ctx context.Context, t *target, refusal error) (k2k.Scoped, error) {
	tried := map[string]bool{t.project: true}
	try := func(project string) (k2k.Scoped, bool, error) {
		if project == "" || tried[project] {
			return k2k.Scoped{}, false, nil
		}
		tried[project] = true
		s, err := p.tokens.Token(ctx, t.sp, t.user, t.userToken, project)
		if refused(err) {
			return s, false, nil
		}
		return s, err == nil, err
	}
	if s, ok, err := try(t.chosen); ok || err != nil {
		return s, err
	}
	projects, err := p.tokens.Projects(ctx, t.sp, t.user, t.userToken)
	if err != nil {
		return k2k.Scoped{}, refusal
	}
	if n := p.cfg.MaxProjectsPerSP; n > 0 && len(projects) > n {
		projects = projects[:n]
	}
	for _, pr := range projects {
		if s, ok, err := try(pr.ID); ok || err != nil {
			return s, err
		}
	}
	return k2k.Scoped{}, refusal
}

// refused: the SP (or the user's project list there) refused to scope the user.
func refused(err error) bool {
	var e *apierr.Error
	return errors.As(err, &e) && e.Status == http.StatusForbidden
}

// upstreamURL maps /<service>/<rest> onto the SP's endpoint. For a remote Cinder the
// project in the path becomes the one the K2K token is scoped to.
func upstreamURL(t *target, in *url.URL) (*url.URL, error) {
	base, err := url.Parse(t.sp.Endpoint(t.info.Service))
	if err != nil || base.Host == "" {
		return nil, apierr.New(http.StatusBadGateway, "service provider %s has no %s endpoint", t.sp.Name, t.info.Service)
	}
	rest := strings.TrimPrefix(in.EscapedPath(), "/"+t.info.Service)
	if t.info.ProjectID != "" && !t.sp.Local() && t.project != "" {
		segs := strings.SplitN(strings.TrimPrefix(rest, "/"), "/", 3)
		if len(segs) >= 2 {
			segs[1] = t.project
			rest = "/" + strings.Join(segs, "/")
		}
	}
	out := *base
	path, _ := url.PathUnescape(base.EscapedPath() + rest)
	out.Path, out.RawPath = path, base.EscapedPath()+rest
	out.RawQuery = in.RawQuery
	return &out, nil
}

func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, t *target) {
	u, err := upstreamURL(t, r.URL)
	if err != nil {
		p.respond(w, r, err)
		return
	}
	t.url = u
	t.in = r
	t.start = time.Now()
	reqlog.SetTarget(r.Context(), t.sp.Name)
	ctx, cancel := context.WithCancel(context.WithValue(r.Context(), ctxKey{}, t))
	defer cancel()
	rp := p.reverse[t.sp.Name]
	if t.answer != nil {
		replay := *rp
		replay.Transport = t.answer
		rp, t.start = &replay, t.answer.start
	}
	rp.ServeHTTP(w, r.WithContext(ctx))
}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(ctxKey{}).(*target)
	pr.Out.URL = t.url
	pr.Out.Host = ""
	h := http.Header{}
	copyFiltered(h, pr.In.Header, forwardedRequestHeaders)
	if carriesData(t.info) {
		copyNamed(h, pr.In.Header, dataRequestHeaders)
	}
	if t.token != "" {
		h.Set("X-Auth-Token", t.token)
	}
	// The local cloud validates the caller's service token itself; a remote one
	// knows only what K2K got there.
	if st := pr.In.Header.Get("X-Service-Token"); st != "" && t.sp.Local() {
		h.Set("X-Service-Token", st)
	} else if t.serviceToken != "" {
		h.Set("X-Service-Token", t.serviceToken)
	}
	// Chained proxies see who already handled the call and cannot loop.
	local, _ := p.cfg.SP(config.LocalSP)
	if list := pr.In.Header.Get("MM-PROXY-LIST"); list != "" {
		h.Set("MM-PROXY-LIST", list+","+local.SPName)
	} else {
		h.Set("MM-PROXY-LIST", local.SPName)
	}
	pr.Out.Header = h
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	t := resp.Request.Context().Value(ctxKey{}).(*target)
	p.tracker.Observe(t.sp.Name, resp.StatusCode, nil)
	p.metrics.Upstream.WithLabelValues(t.sp.Name, t.info.Service).Observe(time.Since(t.start).Seconds())
	if resp.StatusCode == http.StatusUnauthorized && !t.sp.Local() && t.user != nil {
		// A K2K token the SP no longer takes must not be served again until it
		// expires; a call that can go again goes with a new one, once.
		p.tokens.Forget(resp.Request.Context(), t.sp, t.userToken, t.project)
		if t.serviceOwner != "" {
			p.tokens.Forget(resp.Request.Context(), t.sp, t.serviceOwner, t.serviceProject)
		}
		if !t.retried && replayable(resp.Request) {
			resp.Body.Close()
			return errRefusedToken
		}
	}
	filterResponse(resp.Header, !t.sp.Local())
	if err := p.relink(resp, t); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return nil
	}
	if t.learn {
		p.remember(resp.Request.Context(), t, t.info.ResourceID, "broadcast")
	}
	if resp.Request.Method == http.MethodDelete && t.info.ResourceID != "" && len(t.info.Rest) == 0 {
		p.forgetDeleted(resp.Request.Context(), t)
	}
	if c, ok := services.Lookup(t.info.Service, t.info.ResourceType); ok && c.Mapped && t.info.IsCreate(resp.Request.Method) {
		return p.learnCreate(resp, t, c)
	}
	return nil
}

// replayable: a call without a body can be sent again elsewhere.
func replayable(r *http.Request) bool {
	return r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 && r.Method != http.MethodPost
}

// maxCreateBody bounds the create answer read to learn the new resource's id.
const maxCreateBody = 1 << 20

// learnCreate records the SP of a resource created through mixmatch, from the id in
// the answer.
func (p *Proxy) learnCreate(resp *http.Response, t *target, c *services.Collection) error {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxCreateBody))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if json.Unmarshal(raw, &body) != nil {
		return nil
	}
	var id string
	if json.Unmarshal(c.Member(body)["id"], &id) == nil && id != "" {
		p.remember(resp.Request.Context(), t, id, "create")
	}
	return nil
}

// learnWait bounds how long an answer waits for its mapping to be written: a
// locked or slow database must not hold up the answer. The write itself goes on
// for up to learnTimeout (beyond SQLite's busy_timeout), so a lock that clears
// soon costs nothing; what is still missed is logged, and found again by
// broadcast or recorded from the cloud's notification.
const (
	learnWait    = 2 * time.Second
	learnTimeout = 30 * time.Second
)

func (p *Proxy) remember(ctx context.Context, t *target, id, source string) {
	project := t.project
	if t.sp.Local() || project == "" {
		project = t.info.ProjectID
	}
	if project == "" && t.user != nil {
		// A resource created in the local cloud without a project in its path lives
		// in the project of the user's local token.
		project = t.user.Project.ID
	}
	m := store.Mapping{ResourceType: services.RowType(t.info.Service, t.info.ResourceType), ResourceID: id,
		ResourceSP: t.sp.Name, ProjectID: project}
	done := make(chan struct{})
	p.learning.Add(1)
	// A client that hangs up after the SP answered must not cost the mapping.
	go func() {
		defer p.learning.Done()
		defer close(done)
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), learnTimeout)
		defer cancel()
		err := p.store.Learn(wctx, m)
		if errors.Is(err, store.ErrHeldElsewhere) {
			// A create answer or a broadcast hit never moves a row: a user can choose
			// a Glance image's id, and an SP can claim any id.
			p.logger.Warn("mapping not recorded: the table names another service provider", "type", m.ResourceType,
				"id", id, "sp", m.ResourceSP, "source", source, "error", err)
			p.metrics.Conflicts.WithLabelValues(source).Inc()
			return
		}
		if err != nil {
			p.logger.Warn("could not record a mapping", "type", m.ResourceType, "id", id, "sp", m.ResourceSP, "error", err)
			return
		}
		p.metrics.Learned.WithLabelValues(source).Inc()
	}()
	select {
	case <-done:
	case <-time.After(learnWait):
		p.logger.Warn("the database is slow: answering before the mapping is recorded",
			"type", m.ResourceType, "id", id, "sp", m.ResourceSP)
	}
}

// forgetDeleted drops the row of a resource its holder just deleted: only the
// cloud that holds a resource says it is gone (a 404 may be another user's view,
// or an id misspelt), so a row goes on its holder's 2xx to a DELETE, or its delete
// notification.
func (p *Proxy) forgetDeleted(ctx context.Context, t *target) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), learnWait)
	defer cancel()
	row := services.RowType(t.info.Service, t.info.ResourceType)
	if _, err := p.store.DeleteHeldBy(wctx, row, t.info.ResourceID, t.sp.Name); err != nil {
		p.logger.Warn("could not forget a deleted resource's mapping", "type", t.info.ResourceType,
			"id", t.info.ResourceID, "sp", t.sp.Name, "error", err)
	}
}

// Drain waits for the mappings still being written, so that a worker that stops
// loses none of them.
func (p *Proxy) Drain() { p.learning.Wait() }

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	t := r.Context().Value(ctxKey{}).(*target)
	switch {
	case errors.Is(err, errRefusedToken):
		p.reauthorize(w, t.in, t)
		return
	case errors.Is(err, errUncheckedAnswer):
		p.respond(w, t.in, apierr.Wrap(http.StatusBadGateway, err, "service provider %s answered what mixmatch cannot check for links", t.sp.Name))
		return
	case errors.Is(err, httpclient.ErrBusy):
		p.logger.Warn("call refused: max_concurrent_requests reached", "sp", t.sp.Name)
		p.respond(w, t.in, apierr.Wrap(http.StatusServiceUnavailable, err, "too many calls in flight to service provider %s; try again", t.sp.Name))
		return
	}
	p.tracker.Observe(t.sp.Name, 0, err)
	status := http.StatusBadGateway
	if errors.Is(err, context.DeadlineExceeded) || apierr.IsTimeout(err) {
		status = http.StatusGatewayTimeout
	}
	p.respond(w, t.in, apierr.Wrap(status, fmt.Errorf("%s: %w", t.url.Redacted(), err), "service provider %s did not answer", t.sp.Name))
}

// reauthorize sends a call again, once, with a new token at the same SP.
func (p *Proxy) reauthorize(w http.ResponseWriter, r *http.Request, refused *target) {
	t := *refused
	t.token, t.retried = "", true
	ctx, cancel := context.WithTimeout(r.Context(), p.timeout)
	defer cancel()
	if err := p.authorize(ctx, &t); err != nil {
		p.respond(w, r, err)
		return
	}
	p.forward(w, r, &t)
}

// respond answers an error with the status its cause chose.
func (p *Proxy) respond(w http.ResponseWriter, r *http.Request, err error) {
	apierr.Respond(w, r, p.logger, err)
}

// proxyList reads MM-PROXY-LIST: the SPs (by sp_name) a call already went through.
func proxyList(h http.Header) map[string]bool {
	skip := map[string]bool{}
	for _, name := range strings.Split(h.Get("MM-PROXY-LIST"), ",") {
		if name = strings.TrimSpace(name); name != "" {
			skip[name] = true
		}
	}
	return skip
}
