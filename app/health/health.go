// Package health answers GET /healthcheck from the worker itself: 200 while the
// database answers, 503 when it does not; ?detail adds the cache and what each
// service provider last answered.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"mixmatch/app/store"
)

// SPState is what a service provider last did.
type SPState struct {
	LastStatus int       `json:"last_status,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	LastSeen   time.Time `json:"last_seen"`
}

// Tracker remembers each SP's last answer; the proxy feeds it.
type Tracker struct {
	mu  sync.Mutex
	sps map[string]SPState
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{sps: map[string]SPState{}} }

// Observe records an answer (status) or a failure to get one (err).
func (t *Tracker) Observe(sp string, status int, err error) {
	if t == nil {
		return
	}
	s := SPState{LastStatus: status, LastSeen: time.Now().UTC()}
	if err != nil {
		s.LastError = err.Error()
	}
	t.mu.Lock()
	t.sps[sp] = s
	t.mu.Unlock()
}

func (t *Tracker) snapshot(names []string) map[string]SPState {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]SPState{}
	for _, n := range names {
		out[n] = t.sps[n]
	}
	return out
}

// Summary answers /healthcheck on the API: 200 or 503 and a one-word state. It
// is reachable by anyone Apache lets in, so it says nothing else.
func Summary(s *store.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dbErr := ping(r.Context(), s)
		state := "ok"
		if dbErr != nil {
			state = "database unavailable"
		}
		answer(w, dbErr, map[string]string{"status": state})
	})
}

// Detail answers /healthcheck on the metrics listener, which only operators reach:
// the database, the token cache, and each SP's last answer, errors included (they
// may name internal addresses). cache describes the token cache ("memory",
// "memcached", "disabled").
func Detail(s *store.Store, cache string, sps []string, t *Tracker) http.Handler {
	sorted := append([]string(nil), sps...)
	sort.Strings(sorted)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dbErr := ping(r.Context(), s)
		db := map[string]any{"engine": s.Engine(), "ok": dbErr == nil}
		if dbErr != nil {
			db["error"] = dbErr.Error()
		}
		answer(w, dbErr, map[string]any{"database": db, "cache": map[string]string{"backend": cache},
			"service_providers": t.snapshot(sorted)})
	})
}

func ping(ctx context.Context, s *store.Store) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return s.DB().PingContext(ctx)
}

func answer(w http.ResponseWriter, dbErr error, body any) {
	status := http.StatusOK
	if dbErr != nil {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}
