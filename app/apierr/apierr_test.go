package apierr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

func respond(t *testing.T, err error) (status int, message string, retryAfter, logs string) {
	t.Helper()
	var buf bytes.Buffer
	r := httptest.NewRequest("GET", "/image/v2/images", nil)
	r.Header.Set(RequestIDHeader, "req-0123abcd")
	w := httptest.NewRecorder()
	Respond(w, r, slog.New(slog.NewTextHandler(&buf, nil)), err)
	var b body
	if e := json.Unmarshal(w.Body.Bytes(), &b); e != nil || b.Error.Code != w.Code || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("not an OpenStack JSON error: %d %q", w.Code, w.Body)
	}
	return w.Code, b.Error.Message, w.Header().Get("Retry-After"), buf.String()
}

func TestClientErrorsSayTheirMessageOnly(t *testing.T) {
	status, msg, retry, logs := respond(t, fmt.Errorf("while locating: %w", New(400, "MM-SERVICE-PROVIDER %q is unknown", "x")))
	if status != 400 || msg != `MM-SERVICE-PROVIDER "x" is unknown` || retry != "" || logs != "" {
		t.Fatalf("400: %d %q retry %q logs %q", status, msg, retry, logs)
	}
}

func TestServerErrorsAreLoggedInFullAndAnsweredWithTheRequestID(t *testing.T) {
	cause := errors.New("issuing a token at http://keystone.internal:5000/v3: status 401")
	status, msg, _, logs := respond(t, Wrap(502, cause, "the local Keystone refused mixmatch's own credentials"))
	if status != 502 || msg != "the local Keystone refused mixmatch's own credentials (request req-0123abcd)" {
		t.Fatalf("502: %d %q", status, msg)
	}
	if strings.Contains(msg, "keystone.internal") {
		t.Fatalf("the internal URL reached the client: %q", msg)
	}
	for _, want := range []string{"request failed", "req-0123abcd", "status=502", "keystone.internal:5000"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log line lacks %q: %s", want, logs)
		}
	}
}

func TestUnclassifiedErrorsNeverReachTheClient(t *testing.T) {
	for err, want := range map[error]int{
		errors.New("dial tcp 10.0.0.7:9292: connection refused"):      500,
		fmt.Errorf("listing: %w", context.DeadlineExceeded):           504,
		fmt.Errorf("oops: %w", New(503, "too many calls; try again")): 503,
	} {
		status, msg, retry, logs := respond(t, err)
		if status != want || strings.Contains(msg, "10.0.0.7") || strings.Contains(msg, "listing") || logs == "" {
			t.Errorf("%v: %d %q (logged %q), want %d with a message of mixmatch's own", err, status, msg, logs, want)
		}
		if (status == 503) != (retry == "1") {
			t.Errorf("%v: Retry-After %q", err, retry)
		}
	}
}
