package proxy_test

import (
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mixmatch/app/fakecloud"
	"mixmatch/app/reqlog"
)

// The request line says how long the call waited on SPs (upstream_ms), so that
// duration_ms less it is mixmatch's own: every way a call reaches an SP counts
// (forwarded, found by broadcast, listed from all), and a call answered without
// asking one has none.
func TestRequestLineTimesTheWaitOnSPs(t *testing.T) {
	const slow = 30 * time.Millisecond
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	s := newSetup(t, withBroadcast(), withAggregation(), withLogger(logger))
	s.handler = reqlog.Middleware(logger, nil, s.handler)
	s.backends["remote2"].Add(fakecloud.Images, "", imageID, nil)
	for _, b := range s.backends {
		b.SlowHeaders(slow)
	}
	calls := []struct {
		name, path, token string
		status            int
		waits             bool
	}{
		{"found by broadcast", "/image/v2/images/" + imageID, localToken, 200, true},
		{"forwarded to the mapping", "/image/v2/images/" + imageID, localToken, 200, true},
		{"listed from every SP", "/image/v2/images", localToken, 200, true},
		{"refused before any SP", "/image/v2/images", "not-a-valid-token", 401, false},
	}
	lineRE := regexp.MustCompile(`duration_ms=([0-9.]+)(?: upstream_ms=([0-9.]+))?`)
	for _, c := range calls {
		before := len(logs.String())
		if rec := s.do(t, "GET", c.path, nil, "X-Auth-Token", c.token); rec.Code != c.status {
			t.Fatalf("%s: %d %s", c.name, rec.Code, rec.Body)
		}
		var lines []string
		for _, l := range strings.Split(logs.String()[before:], "\n") {
			if strings.Contains(l, "msg=request ") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 {
			t.Fatalf("%s: %d request lines: %q", c.name, len(lines), lines)
		}
		line := lines[0]
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("%s: no duration: %q", c.name, line)
		}
		if !c.waits {
			if m[2] != "" {
				t.Errorf("%s: upstream_ms without an SP asked: %s", c.name, line)
			}
			continue
		}
		duration, _ := strconv.ParseFloat(m[1], 64)
		upstream, err := strconv.ParseFloat(m[2], 64)
		if err != nil || upstream < float64(slow.Milliseconds()) || upstream > duration {
			t.Errorf("%s: upstream_ms %q, want from %v to duration_ms %v: %s", c.name, m[2], slow, duration, line)
		}
	}
}
