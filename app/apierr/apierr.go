// Package apierr is mixmatch's one error type and the one place errors become
// answers, in the JSON shape OpenStack clients print:
// {"error": {"code": 404, "title": "Not Found", "message": "..."}}.
//
// The status is chosen where the cause is known (a refused credential, a missing
// resource, a busy SP) and travels with the error; handlers only hand the error to
// Respond. What a client reads is the message mixmatch wrote for it, never the text
// of an internal error, which may name internal URLs: that goes to the log.
package apierr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// RequestIDHeader carries the request id, as OpenStack services name it.
const RequestIDHeader = "X-Openstack-Request-Id"

// Error is a failure with the status its client gets.
type Error struct {
	Status int
	// Message is for the client: written by mixmatch, it holds no token, password,
	// or internal error text.
	Message string
	// Err is the cause, for the log.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New is an error whose message is all there is to say.
func New(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// Wrap gives err a status and a message for the client; err itself is logged only.
func Wrap(status int, err error, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...), Err: err}
}

// As finds the Error in err's chain. A deadline that passed before anything chose
// a status is a 504; anything else nobody classified is mixmatch's own fault, a 500.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) || IsTimeout(err) {
		return Wrap(http.StatusGatewayTimeout, err, "timed out")
	}
	return Wrap(http.StatusInternalServerError, err, "internal error")
}

// IsTimeout reports a network timeout anywhere in err's chain.
func IsTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Respond answers err. A 5xx is logged in full and answered with its message and
// the request id, which finds the log line; a 503 says when to try again.
func Respond(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	e := As(err)
	msg := e.Message
	if e.Status >= 500 {
		id := r.Header.Get(RequestIDHeader)
		if logger != nil {
			logger.Warn("request failed", "request_id", id, "method", r.Method, "path", r.URL.Path,
				"status", e.Status, "error", err.Error())
		}
		if id != "" {
			msg += " (request " + id + ")"
		}
	}
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	Write(w, e.Status, msg)
}

type body struct {
	Error struct {
		Code    int    `json:"code"`
		Title   string `json:"title"`
		Message string `json:"message"`
	} `json:"error"`
}

// Write answers with status and message. The message must not carry a token or a
// password: it reaches the client and, through it, logs we do not control.
func Write(w http.ResponseWriter, status int, message string) {
	var b body
	b.Error.Code = status
	b.Error.Title = http.StatusText(status)
	b.Error.Message = message
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(b)
}
