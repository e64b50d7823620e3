package reqlog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestOneLinePerRequest(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	var observed []string
	h := Middleware(logger, func(service, method, sp string, status int) {
		observed = append(observed, fmt.Sprint(service, method, sp, status))
	}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetTarget(r.Context(), "remote1")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("streaming cannot flush through the log middleware: %v", err)
		}
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte("hello"))
	}))
	for _, id := range []string{"req-0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f", "forged\nline"} {
		buf.Reset()
		req := httptest.NewRequest("POST", "/volume/v3/8a1e/volumes", nil)
		req.Header.Set("X-Auth-Token", "gAAAAAB-secret-token")
		req.Header.Set(Header, id)
		h.ServeHTTP(httptest.NewRecorder(), req)
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil || strings.Count(buf.String(), "\n") != 1 {
			t.Fatalf("not one JSON line: %q", buf.String())
		}
		for k, want := range map[string]any{"service": "volume", "method": "POST", "path": "/volume/v3/8a1e/volumes",
			"sp": "remote1", "status": float64(201), "bytes": float64(5)} {
			if line[k] != want {
				t.Errorf("%s = %v, want %v", k, line[k], want)
			}
		}
		if _, ok := line["duration_ms"]; !ok {
			t.Error("no duration")
		}
		if strings.Contains(buf.String(), "secret-token") || len(line["token"].(string)) != 12 {
			t.Fatalf("token in the log: %s", buf.String())
		}
		got := line["request_id"].(string)
		if id == "forged\nline" {
			if !regexp.MustCompile(`^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(got) {
				t.Errorf("generated request id %q", got)
			}
		} else if got != id {
			t.Errorf("request id %q, want the client's %q", got, id)
		}
	}
	if fmt.Sprint(observed) != "[volumePOSTremote1201 volumePOSTremote1201]" {
		t.Errorf("observed %v", observed)
	}
}

// An answer mixmatch builds itself goes out with the request's id; one that
// carries its cloud's id keeps it.
func TestEveryAnswerCarriesARequestID(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name, upstream string
		write          func(w http.ResponseWriter)
	}{
		{"an error of mixmatch's", "", func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) }},
		{"a body without WriteHeader", "", func(w http.ResponseWriter) { w.Write([]byte("{}")) }},
		{"a cloud's answer", "req-from-the-cloud", func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }},
	} {
		h := Middleware(logger, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.upstream != "" {
				w.Header().Set(Header, tc.upstream)
			}
			tc.write(w)
		}))
		req := httptest.NewRequest("GET", "/image/v2/images", nil)
		req.Header.Set(Header, "req-0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		want := tc.upstream
		if want == "" {
			want = "req-0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f"
		}
		if got := rec.Header().Values(Header); len(got) != 1 || got[0] != want {
			t.Errorf("%s: %s = %q, want %q", tc.name, Header, got, want)
		}
	}
}

// upstream_ms is the time with at least one wait open: overlapping waits (a list
// asked of every SP at once) count once, separate ones add up, one left open ends
// with the call, and a call that asked no SP has none.
func TestUpstreamTime(t *testing.T) {
	clock := time.Unix(1e9, 0)
	now = func() time.Time { return clock }
	t.Cleanup(func() { now = time.Now })
	at := func(ms int) { clock = time.Unix(1e9, 0).Add(time.Duration(ms) * time.Millisecond) }
	for _, c := range []struct {
		name  string
		calls func(r *http.Request)
		want  any
	}{
		{"overlapping", func(r *http.Request) {
			a := Wait(r.Context())
			at(10)
			b := Wait(r.Context())
			at(30)
			a.Done()
			at(45)
			b.Done()
			at(100)
		}, 45.0},
		{"one after the other", func(r *http.Request) {
			a := Wait(r.Context())
			at(20)
			a.Done()
			at(50)
			b := Wait(r.Context())
			at(55)
			b.Done()
			at(70)
		}, 25.0},
		{"left open", func(r *http.Request) {
			at(5)
			Wait(r.Context())
			at(12)
		}, 7.0},
		{"none", func(r *http.Request) { at(3) }, nil},
	} {
		at(0)
		var buf bytes.Buffer
		h := Middleware(slog.New(slog.NewJSONHandler(&buf, nil)), nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.calls(r)
		}))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/image/v2/images", nil))
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("%s: %q", c.name, buf.String())
		}
		if got := line["upstream_ms"]; got != c.want {
			t.Errorf("%s: upstream_ms %v, want %v", c.name, got, c.want)
		}
		if got, want := line["duration_ms"], float64(clock.Sub(time.Unix(1e9, 0)).Milliseconds()); got != want {
			t.Errorf("%s: duration_ms %v, want %v", c.name, got, want)
		}
	}
	// Outside a logged call (a background refresh) a wait is nothing.
	Wait(context.Background()).Done()
}
