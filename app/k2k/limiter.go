package k2k

import (
	"sync"
	"time"
)

// limiter counts events per key in fixed one-minute windows. Each SAML exchange
// costs a signed assertion at the local Keystone and a login at the SP, so a
// client that makes every call need one (a token the SP keeps refusing) must not
// make them without bound.
type limiter struct {
	mu      sync.Mutex
	windows map[string]window
}

type window struct {
	start time.Time
	n     int
}

// maxKeys bounds the limiter's memory; past it, windows that are over go.
const maxKeys = 100_000

// allow counts one event for key at now, and reports whether it is within limit
// for its minute.
func (l *limiter) allow(key string, limit int, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.windows == nil {
		l.windows = map[string]window{}
	}
	w, ok := l.windows[key]
	if !ok || now.Sub(w.start) >= time.Minute {
		if !ok && len(l.windows) >= maxKeys {
			l.sweep(now)
			if len(l.windows) >= maxKeys {
				return true // memory stays bounded; so many live keys are not one client
			}
		}
		w = window{start: now}
	}
	if w.n >= limit {
		return false
	}
	w.n++
	l.windows[key] = w
	return true
}

func (l *limiter) sweep(now time.Time) {
	for k, w := range l.windows {
		if now.Sub(w.start) >= time.Minute {
			delete(l.windows, k)
		}
	}
}
