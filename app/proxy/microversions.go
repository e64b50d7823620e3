package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"mixmatch/app/config"
	"mixmatch/app/services"
	"mixmatch/app/versions"
)

// The version document mixmatch writes with aggregation offers the microversions
// every enabled SP serves, as read from each SP's own root: a client that
// negotiates a microversion (Nova asks Cinder for at least 3.44 before any
// attach) gets one every cloud takes, and no more.
const (
	// microversionsTTL: SPs are upgraded rarely, and a document read by every
	// client must not cost a call to every SP.
	microversionsTTL = 10 * time.Minute
	// microversionsRetry: an SP that could not be read is asked again soon.
	microversionsRetry = 30 * time.Second
	// maxRootDocument bounds what is read of an SP's version document (a few
	// hundred bytes).
	maxRootDocument = 64 << 10
)

// microversions caches each service's range. An SP that cannot be read keeps the
// range it last offered; one never read is left out (and logged), so that a
// cloud that is down does not make the document fail or narrow it to x.0 for
// every other cloud's volumes: its own calls may then get its 406.
type microversions struct {
	p     *Proxy
	now   func() time.Time
	group singleflight.Group

	mu     sync.Mutex
	ranges map[string]cachedRange    // by service
	last   map[string]versions.Range // by service and SP: the last range read
}

type cachedRange struct {
	r     versions.Range
	until time.Time
}

func newMicroversions(p *Proxy) *microversions {
	return &microversions{p: p, now: time.Now, ranges: map[string]cachedRange{}, last: map[string]versions.Range{}}
}

// get returns a service's range; the zero Range for a service without
// microversions. A stale range is served while it is read again; only the first
// call waits for the SPs, at most until ctx ends.
func (m *microversions) get(ctx context.Context, service string) versions.Range {
	if svc, ok := services.Get(service); !ok || svc.Microversions == "" {
		return versions.Range{}
	}
	m.mu.Lock()
	c, cached := m.ranges[service]
	m.mu.Unlock()
	if cached && m.now().Before(c.until) {
		return c.r
	}
	ch := m.group.DoChan(service, func() (any, error) { return m.refresh(service), nil })
	if cached {
		return c.r
	}
	select {
	case res := <-ch:
		return res.Val.(versions.Range)
	case <-ctx.Done():
		return versions.Range{}
	}
}

// refresh reads every enabled SP's root at once; it serves every waiter, so it has
// its own bound.
func (m *microversions) refresh(service string) versions.Range {
	svc, _ := services.Get(service)
	ctx, cancel := context.WithTimeout(context.Background(), m.p.timeout)
	defer cancel()
	sps := m.p.byPrecedence(service, nil)
	read := make([]versions.Range, len(sps))
	errs := make([]error, len(sps))
	var wg sync.WaitGroup
	for i, sp := range sps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			read[i], errs[i] = m.p.rootRange(ctx, sp, svc)
		}()
	}
	wg.Wait()
	var ranges []versions.Range
	ttl := microversionsTTL
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, sp := range sps {
		key := service + "\x00" + sp.Name
		if errs[i] == nil {
			m.last[key] = read[i]
		} else {
			ttl = microversionsRetry
			m.p.logger.Warn("the microversions of a service provider could not be read; its last known range is used, or none",
				"sp", sp.Name, "service", service, "error", errs[i])
		}
		if r, ok := m.last[key]; ok {
			ranges = append(ranges, r)
		}
	}
	r, ok := versions.Narrow(ranges)
	if !ok {
		if len(ranges) > 0 {
			m.p.logger.Error("the service providers share no microversion; offering the base version only",
				"service", service, "ranges", fmt.Sprint(ranges))
		}
		r = versions.Range{}
	}
	m.ranges[service] = cachedRange{r: r, until: m.now().Add(ttl)}
	return r
}

// rootRange reads the microversion range an SP's own version document offers for
// the service's major version. The root is the endpoint as configured, path
// included (http://sp/volume/), and is answered without a token.
func (p *Proxy) rootRange(ctx context.Context, sp *config.SP, svc *services.Service) (versions.Range, error) {
	endpoint := sp.Endpoint(svc.Name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/", nil)
	if err != nil {
		return versions.Range{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.transports[sp.Name].RoundTrip(req)
	if err != nil {
		return versions.Range{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusMultipleChoices {
		return versions.Range{}, fmt.Errorf("its root answered %d", resp.StatusCode)
	}
	var doc struct {
		Versions []struct {
			ID         string `json:"id"`
			Version    string `json:"version"`
			MinVersion string `json:"min_version"`
		} `json:"versions"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxRootDocument)).Decode(&doc); err != nil {
		return versions.Range{}, fmt.Errorf("its version document is unreadable: %w", err)
	}
	want, _, _ := versions.ParseMicroversion(strings.TrimPrefix(svc.Microversions, "v") + ".0")
	for _, v := range doc.Versions {
		if major, _, _ := strings.Cut(v.ID, "."); major != svc.Microversions {
			continue
		}
		lo, _, okLo := versions.ParseMicroversion(v.MinVersion)
		hi, _, okHi := versions.ParseMicroversion(v.Version)
		if !okLo || !okHi || lo != want || hi != want {
			return versions.Range{}, fmt.Errorf("its %s entry offers %q to %q", v.ID, v.MinVersion, v.Version)
		}
		return versions.Range{Min: v.MinVersion, Max: v.Version}, nil
	}
	return versions.Range{}, fmt.Errorf("its version document has no %s", svc.Microversions)
}
