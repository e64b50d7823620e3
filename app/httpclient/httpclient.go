// Package httpclient builds every HTTP client mixmatch uses toward a cloud, from that
// cloud's section of mixmatch.conf. Having one place means no client can talk through
// the environment's proxy, or reach a cloud without its CA bundle, client certificate
// and timeouts.
package httpclient

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"

	"mixmatch/app/config"
)

// Clients builds the clients of one process and keeps them, so that everything
// calling a cloud shares one connection pool and one max_concurrent_requests bound.
type Clients struct {
	cfg *config.Config

	mu    sync.Mutex
	sps   map[string]*spClients
	local *http.Client
}

type spClients struct {
	services, keystone *http.Client
}

// New gives the clients of the clouds cfg describes.
func New(cfg *config.Config) *Clients {
	return &Clients{cfg: cfg, sps: map[string]*spClients{}}
}

// Transport is the round tripper towards sp's services (Glance, Cinder, Neutron):
// bodies pass through undecoded, idempotent calls without a body are retried, and at
// most max_concurrent_requests calls are in flight, or it fails with ErrBusy.
func (c *Clients) Transport(sp *config.SP) http.RoundTripper { return c.of(sp).services.Transport }

// Services is a client of sp's services, over Transport.
func (c *Clients) Services(sp *config.SP) *http.Client { return c.of(sp).services }

// Keystone is the client of sp's Keystone. It shares the SP's connection pool, not
// the services' retries and bound: max_concurrent_requests counts calls to Glance,
// Cinder and Neutron, and the K2K exchange such a call needs first must not wait for
// a slot of its own.
func (c *Clients) Keystone(sp *config.SP) *http.Client { return c.of(sp).keystone }

// LocalKeystone is the client of [auth] auth_url, with [auth]'s TLS options. [auth]
// has no timeouts: the local cloud's connect_timeout and response_timeout apply.
func (c *Clients) LocalKeystone() *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.local == nil {
		var connect, response time.Duration
		if local, ok := c.cfg.SP(config.LocalSP); ok {
			connect, response = local.ConnectTimeout, local.ResponseTimeout
		}
		c.local = client(pool(c.cfg.Auth.TLSConfig, connect, response))
	}
	return c.local
}

// of gives sp's clients by name: the proxy and the extensions look an SP up in the
// same configuration, and must land on the same pool.
func (c *Clients) of(sp *config.SP) *spClients {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sps[sp.Name]
	if !ok {
		p := pool(sp.TLSConfig, sp.ConnectTimeout, sp.ResponseTimeout)
		lean := newH1(p, sp.TLSConfig, sp.ConnectTimeout, sp.ResponseTimeout)
		s = &spClients{services: client(services(lean, sp)), keystone: client(p)}
		c.sps[sp.Name] = s
	}
	return s
}

// client follows no redirect: a redirect would carry X-Auth-Token, or replay a
// POST's body, to wherever a cloud (or whoever answers in its name) points, and
// hand the answer back to the user. A 3xx is returned as it is.
func client(rt http.RoundTripper) *http.Client {
	return &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// pool is the connection pool towards one cloud; connect bounds the dial and the TLS
// handshake, response the wait for an answer's headers (a body may then stream).
func pool(tlsConfig *tls.Config, connect, response time.Duration) *http.Transport {
	return &http.Transport{
		// Only the configured endpoints are contacted: an HTTP(S)_PROXY meant for the
		// host's other programs must not see the tokens.
		Proxy:       nil,
		DialContext: (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
		// net/http adds "h2" to the configuration's NextProtos; a copy leaves the
		// loaded configuration as it is for every other transport built from it.
		TLSClientConfig:       tlsConfig.Clone(),
		TLSHandshakeTimeout:   connect,
		ResponseHeaderTimeout: response,
		// net/http's defaults, but for the idle connections kept per host: the proxy
		// has many calls in flight to few hosts.
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// The proxy passes bodies through as they are; it must not ask for gzip and
		// hand on something else than the client would get.
		DisableCompression: true,
	}
}
