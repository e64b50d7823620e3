package httpclient

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"mixmatch/app/config"
)

// ErrBusy is a call refused because max_concurrent_requests calls to its SP are
// already in flight from this process.
var ErrBusy = errors.New("too many calls in flight to this service provider")

// services is the round tripper towards one SP's services over its pool: a bound on
// calls in flight, and retries of calls without a body.
func services(pool http.RoundTripper, sp *config.SP) http.RoundTripper {
	var rt http.RoundTripper = &retrying{base: pool, retries: sp.Retries, backoff: 100 * time.Millisecond}
	if sp.MaxConcurrentRequests > 0 {
		rt = newLimited(rt, sp.MaxConcurrentRequests, sp.ConnectTimeout)
	}
	return rt
}

// limited bounds the calls in flight to one SP. A slot is held until the answer's
// body is closed, so a long image download counts for as long as it streams.
type limited struct {
	base  http.RoundTripper
	slots chan struct{}
	wait  time.Duration
}

func newLimited(base http.RoundTripper, n int, wait time.Duration) *limited {
	return &limited{base: base, slots: make(chan struct{}, n), wait: wait}
}

func (l *limited) RoundTrip(req *http.Request) (*http.Response, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		timer := time.NewTimer(l.wait)
		defer timer.Stop()
		select {
		case l.slots <- struct{}{}:
		case <-timer.C:
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, ErrBusy
		case <-req.Context().Done():
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, req.Context().Err()
		}
	}
	resp, err := l.base.RoundTrip(req)
	if err != nil {
		<-l.slots
		return nil, err
	}
	resp.Body = &releasing{ReadCloser: resp.Body, release: sync.OnceFunc(func() { <-l.slots })}
	return resp, nil
}

type releasing struct {
	io.ReadCloser
	release func()
}

func (r *releasing) Close() error {
	defer r.release()
	return r.ReadCloser.Close()
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
		// A timeout is not retried: response_timeout would multiply with retries.
		var timeout interface{ Timeout() bool }
		transient := err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) &&
			!(errors.As(err, &timeout) && timeout.Timeout()) ||
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
