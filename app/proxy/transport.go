package proxy

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"mixmatch/app/config"
)

// NewTransport is the round tripper towards one SP: a connection pool of its own,
// its connect and response-header timeouts, and retries of calls without a body.
func NewTransport(sp *config.SP) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: sp.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = sp.ConnectTimeout
	t.ResponseHeaderTimeout = sp.ResponseTimeout
	t.MaxIdleConnsPerHost = 64
	// The proxy passes bodies through as they are; it must not ask for gzip and
	// hand on something else than the client would get.
	t.DisableCompression = true
	return &retrying{base: t, retries: sp.Retries, backoff: 100 * time.Millisecond}
}

// retrying repeats a call that has no body (so it can be sent again unchanged) and is
// idempotent, after a connection error or a 502, 503 or 504.
type retrying struct {
	base    http.RoundTripper
	retries int
	backoff time.Duration
}

func (t *retrying) RoundTrip(req *http.Request) (*http.Response, error) {
	if !retriable(req) {
		return t.base.RoundTrip(req)
	}
	for attempt := 0; ; attempt++ {
		resp, err := t.base.RoundTrip(req)
		transient := err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) ||
			err == nil && (resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable ||
				resp.StatusCode == http.StatusGatewayTimeout)
		if !transient || attempt >= t.retries || req.Context().Err() != nil {
			return resp, err
		}
		if resp != nil {
			resp.Body.Close()
		}
		// Exponential backoff with full jitter, bounded by the request's context.
		wait := time.Duration(rand.Int64N(int64(t.backoff) << attempt))
		timer := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		case <-timer.C:
		}
	}
}

func retriable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions:
		return req.Body == nil || req.Body == http.NoBody
	}
	return false
}
