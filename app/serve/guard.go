package serve

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"mixmatch/app/apierr"
)

// LimitHeaders answers 431 to a request whose header lines add up to more than max
// bytes, counted as they travel: "Name: value\r\n". Apache bounds each line; this
// bounds their sum, which it does not.
func LimitHeaders(max int, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size := 0
		for name, values := range r.Header {
			for _, v := range values {
				size += len(name) + len(v) + 4
			}
		}
		if size > max {
			apierr.Write(w, http.StatusRequestHeaderFieldsTooLarge,
				fmt.Sprintf("the request's headers are %d bytes, more than max_request_header_size (%d)", size, max))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// recoverer keeps a worker alive through a panic in a handler. net/http recovers
// panics itself, but net/http/fcgi does not: there, one panic would end the process
// and every request it is serving. httputil.ReverseProxy panics with
// http.ErrAbortHandler on purpose when an SP breaks off a stream it already
// started; over HTTP that must reach net/http, which then cuts the client's
// connection so the client sees the answer is incomplete; under FastCGI, abort
// (non-nil) does the same through Apache.
func recoverer(h http.Handler, abort func(http.ResponseWriter), logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &startedWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				logger.Warn("answer cut short: the service provider broke off while it was streaming",
					"method", r.Method, "path", r.URL.Path)
				if abort == nil {
					panic(v)
				}
				abort(sw)
				return
			}
			logger.Error("panic while serving a request", "method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if !sw.started {
				apierr.Write(w, http.StatusInternalServerError, "internal error; the worker logged it")
			}
		}()
		h.ServeHTTP(sw, r)
	})
}

// startedWriter notes whether the answer has begun, so a recovered panic does not
// append an error to a body already on its way.
type startedWriter struct {
	http.ResponseWriter
	started bool
}

func (s *startedWriter) WriteHeader(code int) {
	if code >= 200 {
		s.started = true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *startedWriter) Write(b []byte) (int, error) {
	s.started = true
	return s.ResponseWriter.Write(b)
}

func (s *startedWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *startedWriter) Flush() {
	s.started = true
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
