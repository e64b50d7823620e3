// Package reqlog writes one structured line per request: request id, service,
// method, path, target service provider, status, bytes, duration and the part of
// it spent waiting on service providers. Tokens never appear: only a short hash
// of the one the request carried.
package reqlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"mixmatch/app/apierr"
	"mixmatch/app/keystone"
)

// Header carries the request id, as OpenStack services name it.
const Header = apierr.RequestIDHeader

type entry struct {
	mu sync.Mutex
	sp string
	// quiet: no line for this call.
	quiet bool
	// The time the call spent waiting on service providers' answers, however many
	// at once: waiting counts the waits open, since waitFrom; waited is the total
	// of the spans with one open; asked: there was one.
	waiting  int
	waitFrom time.Time
	waited   time.Duration
	asked    bool
}

type ctxKey struct{}

// SetTarget records the service provider a request went to.
func SetTarget(ctx context.Context, sp string) {
	if e, ok := ctx.Value(ctxKey{}).(*entry); ok {
		e.mu.Lock()
		e.sp = sp
		e.mu.Unlock()
	}
}

// now is the clock of the durations; the tests set it.
var now = time.Now

// Waiter ends a wait begun by Wait.
type Waiter struct{ e *entry }

// Wait marks the call as waiting on a service provider until Done: the line's
// upstream_ms is the time with at least one such wait open, so that what the
// call cost mixmatch itself is duration_ms less it. A list asked of every SP at
// once counts its slowest, not the sum.
func Wait(ctx context.Context) Waiter {
	e, ok := ctx.Value(ctxKey{}).(*entry)
	if !ok {
		return Waiter{}
	}
	e.mu.Lock()
	if e.waiting == 0 {
		e.waitFrom = now()
	}
	e.waiting++
	e.asked = true
	e.mu.Unlock()
	return Waiter{e}
}

// Done ends the wait; call it once.
func (w Waiter) Done() {
	if w.e == nil {
		return
	}
	w.e.mu.Lock()
	if w.e.waiting--; w.e.waiting == 0 {
		w.e.waited += now().Sub(w.e.waitFrom)
	}
	w.e.mu.Unlock()
}

// Quiet asks for no line for the call: one shed under overload, which the admission
// summarises once every few seconds and the metrics count. A line per shed call
// cost more than the 503 itself, and flooded the log when it could least afford it.
func Quiet(ctx context.Context) {
	if e, ok := ctx.Value(ctxKey{}).(*entry); ok {
		e.mu.Lock()
		e.quiet = true
		e.mu.Unlock()
	}
}

var requestIDRE = regexp.MustCompile(`^req-[0-9a-fA-F-]{1,64}$`)

// Observe hears of every answered request (the requests metric).
type Observe func(service, method, sp string, status int)

// Middleware logs every request once it is answered. A client's request id in the
// OpenStack form is kept; any other is replaced, so logs cannot be forged.
func Middleware(logger *slog.Logger, observe Observe, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := now()
		id := r.Header.Get(Header)
		if !requestIDRE.MatchString(id) {
			b := make([]byte, 16)
			rand.Read(b)
			h := hex.EncodeToString(b)
			id = "req-" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
			r.Header.Set(Header, id)
		}
		e := &entry{}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK, id: id}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), ctxKey{}, e)))
		e.mu.Lock()
		sp, quiet, asked, waited := e.sp, e.quiet, e.asked, e.waited
		if e.waiting > 0 { // a wait the handler did not end: it ends with the call
			waited += now().Sub(e.waitFrom)
		}
		e.mu.Unlock()
		service, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if quiet {
			if observe != nil {
				observe(service, r.Method, sp, rec.status)
			}
			return
		}
		// Typed attributes: the line is written for every call, and boxing each
		// value as an any cost an allocation apiece.
		attrs := make([]slog.Attr, 0, 10)
		attrs = append(attrs, slog.String("request_id", id), slog.String("service", service),
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("sp", sp),
			slog.Int("status", rec.status), slog.Int64("bytes", rec.bytes),
			slog.Float64("duration_ms", float64(now().Sub(start).Microseconds())/1000))
		if asked {
			attrs = append(attrs, slog.Float64("upstream_ms", float64(waited.Microseconds())/1000))
		}
		if tok := r.Header.Get("X-Auth-Token"); tok != "" {
			attrs = append(attrs, slog.String("token", keystone.ShortHash(tok)))
		}
		if observe != nil {
			observe(service, r.Method, sp, rec.status)
		}
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelWarn
		}
		logger.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// recorder notes the status and size of an answer; Unwrap lets
// http.ResponseController reach the writer's Flush, which streaming needs.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	// id goes out with every answer that has none of its own: the answers
	// mixmatch builds itself (its errors, aggregated lists, version documents), so
	// that a client can quote it and an access log record it.
	id string
}

func (r *recorder) stamp() {
	if !r.wroteHeader && r.Header().Get(Header) == "" {
		r.Header().Set(Header, r.id)
	}
}

func (r *recorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.stamp()
		r.status, r.wroteHeader = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.stamp()
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush passes through for writers that wrap us without ResponseController.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
