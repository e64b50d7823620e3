package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"mixmatch/app/apierr"
	"mixmatch/app/config"
	"mixmatch/app/httpclient"
	"mixmatch/app/keystone"
	"mixmatch/app/reqinfo"
	"mixmatch/app/services"
)

// broadcast asks every enabled SP, in every project the user has there, for the
// resource at once. Several clouds may hold one id (operators copy public images
// and keep their ids): the local cloud's copy wins, then the first in
// service_providers. A hit waits for the clouds before it in that order, at most
// precedenceWait once it is in hand; it is recorded only when all of them said
// they do not hold the id, so a slow local cloud costs no wrong row. Each SP is
// searched on its own, so one whose Keystone hangs delays no other past that.
func (p *Proxy) broadcast(r *http.Request, info reqinfo.Request, user *keystone.Token, userToken string, skip map[string]bool) (*target, error) {
	ctx, cancel := context.WithTimeout(r.Context(), p.timeout)
	defer cancel()
	type result struct {
		i      int
		t      *target
		status int // 0: nothing was asked
	}
	sps := p.byPrecedence(info.Service, skip)
	results := make(chan result, len(sps))
	keep := reusable(r, info)
	for i, sp := range sps {
		go func() {
			t, status := p.search(ctx, r, p.candidates(ctx, sp, info, user, userToken), keep)
			results <- result{i, t, status}
		}()
	}
	found := make([]*target, len(sps))
	missed := make([]*target, len(sps))
	answered := make([]bool, len(sps))
	statuses := map[string]int{}
	// best is the hit of highest precedence, and whether every SP before it answered.
	best := func() (*target, bool) {
		for i := range sps {
			if found[i] != nil {
				return found[i], true
			}
			if !answered[i] {
				for _, t := range found[i+1:] {
					if t != nil {
						return t, false
					}
				}
				return nil, false
			}
		}
		return nil, false
	}
	var grace <-chan time.Time
	for pending := len(sps); pending > 0; {
		select {
		case res := <-results:
			pending--
			answered[res.i] = true
			if res.status/100 == 2 {
				found[res.i] = res.t
			} else if res.status != 0 {
				missed[res.i], statuses[sps[res.i].Name] = res.t, res.status
			}
		case <-grace:
			t, _ := best()
			cancel()
			p.logger.Info("broadcast: a cloud of higher precedence did not answer in time; the hit is not recorded",
				"type", info.ResourceType, "id", info.ResourceID, "sp", t.sp.Name)
			return t, nil
		}
		t, decided := best()
		if decided {
			cancel() // the other searches are moot
			t.learn = true
			return t, nil
		}
		if t != nil && grace == nil {
			timer := time.NewTimer(precedenceWait)
			defer timer.Stop()
			grace = timer.C
		}
	}
	if t := refusedByAll(missed, statuses); t != nil {
		return t, nil
	}
	return nil, summarize(info, statuses)
}

// refusedByAll is the candidate whose answer the client gets when every SP asked
// refused the call itself (a 404 only says the SP does not hold the id): the first
// by precedence, its answer kept by the probe.
func refusedByAll(missed []*target, statuses map[string]int) *target {
	for _, status := range statuses {
		if !clientError(status) || status == http.StatusNotFound {
			return nil
		}
	}
	for _, t := range missed {
		if t != nil {
			if t.answer == nil {
				return nil
			}
			return t
		}
	}
	return nil
}

// reusable: the call is the GET a probe makes, so a probe's 2xx is its answer, and
// the winning SP need not be asked twice. A conditional, ranged or filtered GET is
// not: the probe asks for the whole document.
func reusable(r *http.Request, info reqinfo.Request) bool {
	return r.Method == http.MethodGet && len(info.Rest) == 0 && r.URL.RawQuery == "" && replayable(r) &&
		r.Header.Get("Range") == "" && r.Header.Get("If-Match") == "" && r.Header.Get("If-None-Match") == ""
}

// precedenceWait bounds how long a broadcast hit waits for the clouds that come
// before it.
const precedenceWait = 500 * time.Millisecond

// byPrecedence lists the SPs enabled for a service that a call may still go to:
// the local cloud first, then the order of service_providers.
func (p *Proxy) byPrecedence(service string, skip map[string]bool) []*config.SP {
	var sps []*config.SP
	for _, sp := range p.cfg.SPs {
		if sp.Enabled(service) && !skip[sp.SPName] {
			if sp.Local() {
				sps = append([]*config.SP{sp}, sps...)
			} else {
				sps = append(sps, sp)
			}
		}
	}
	return sps
}

// search probes one SP's candidates at once: the first 2xx, else the status to
// report for the SP (any answer other than 404 says more than a 404), each with
// the candidate that got it.
func (p *Proxy) search(ctx context.Context, r *http.Request, candidates []*target, keep bool) (*target, int) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		t      *target
		status int
	}
	results := make(chan result, len(candidates))
	for _, t := range candidates {
		go func() { results <- result{t, p.probe(ctx, r, t, keep)} }()
	}
	var reported *target
	status := 0
	for range candidates {
		res := <-results
		if res.status/100 == 2 {
			return res.t, res.status
		}
		if status == 0 || status == http.StatusNotFound {
			reported, status = res.t, res.status
		}
	}
	return reported, status
}

// allCandidates are the candidates of several SPs, found concurrently. K2K for them
// gets at most half of the time left, so that an SP whose Keystone hangs leaves
// time for asking the others; it is then asked without a token (a failure).
func (p *Proxy) allCandidates(ctx context.Context, sps []*config.SP, info reqinfo.Request, user *keystone.Token, userToken string) [][]*target {
	kctx := ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		kctx, cancel = context.WithTimeout(ctx, time.Until(deadline)/2)
		defer cancel()
	}
	out := make([][]*target, len(sps))
	var wg sync.WaitGroup
	for i, sp := range sps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = p.candidates(kctx, sp, info, user, userToken)
		}()
	}
	wg.Wait()
	return out
}

// candidates are the (SP, project, token) triples a broadcast asks. An SP whose
// tokens cannot be had is asked nothing; it shows as a 502 in the summary.
func (p *Proxy) candidates(ctx context.Context, sp *config.SP, info reqinfo.Request, user *keystone.Token, userToken string) []*target {
	if sp.Local() {
		return []*target{{sp: sp, token: userToken, info: info, project: info.ProjectID, user: user, userToken: userToken}}
	}
	projects, err := p.tokens.Projects(ctx, sp, user, userToken)
	if err != nil {
		p.logger.Warn("broadcast: no projects at a service provider", "sp", sp.Name, "error", err)
		return []*target{{sp: sp, info: info}} // probed without a token: reported, never used
	}
	if n := p.cfg.MaxProjectsPerSP; n > 0 && len(projects) > n {
		p.logger.Info("asking only the first projects of the user at a service provider", "sp", sp.Name,
			"projects", len(projects), "max_projects_per_sp", n)
		projects = projects[:n]
	}
	var out []*target
	for _, pr := range projects {
		s, err := p.tokens.Token(ctx, sp, user, userToken, pr.ID)
		if err != nil {
			p.logger.Warn("broadcast: no token for a project", "sp", sp.Name, "project", pr.ID, "error", err)
			continue
		}
		out = append(out, &target{sp: sp, token: s.Token, project: s.ProjectID, info: info, user: user, userToken: userToken})
	}
	return out
}

// probe GETs the resource itself at a candidate and returns the status. It keeps
// the answer in t when it may be the client's: a 2xx when keep says the call is
// this same GET, a refusal of the call (clientError) that is not a 404.
func (p *Proxy) probe(ctx context.Context, r *http.Request, t *target, keep bool) int {
	if t.token == "" {
		return http.StatusBadGateway
	}
	member := &url.URL{Path: memberPath(t.info)}
	u, err := upstreamURL(t, member)
	if err != nil {
		return http.StatusBadGateway
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return http.StatusBadGateway
	}
	req.Header.Set("X-Auth-Token", t.token)
	req.Header.Set("Accept", "application/json")
	if v := r.Header.Get("OpenStack-API-Version"); v != "" {
		req.Header.Set("OpenStack-API-Version", v)
	}
	start := time.Now()
	resp, err := p.transports[t.sp.Name].RoundTrip(req)
	if err != nil {
		if errors.Is(err, httpclient.ErrBusy) {
			return http.StatusServiceUnavailable
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return http.StatusGatewayTimeout // request_timeout passed: reported as not answering
		}
		if ctx.Err() != nil {
			return 0 // cancelled: another candidate won
		}
		return http.StatusBadGateway
	}
	switch {
	case resp.StatusCode/100 == 2 && keep:
		t.answer = readAnswer(resp, start, maxKeptMember)
	case clientError(resp.StatusCode) && resp.StatusCode != http.StatusNotFound:
		t.answer = readAnswer(resp, start, maxKeptError)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode
}

// memberPath is the path of the resource a call is about: /<service>/<version>/
// [<project>/]<type>/<id>.
func memberPath(info reqinfo.Request) string {
	parts := []string{"", info.Service, info.Version}
	if info.ProjectID != "" {
		parts = append(parts, info.ProjectID)
	}
	return strings.Join(append(parts, info.ResourceType, info.ResourceID), "/")
}

// summarize turns a broadcast with no winner into an answer: all 404 is a 404; one
// distinct status is that status; 404s and 503s (an SP too busy to be asked) are a
// 503, as the resource may be at the busy one; other mixes are a 500 naming each
// SP's status.
func summarize(info reqinfo.Request, statuses map[string]int) error {
	distinct := map[int]bool{}
	for _, s := range statuses {
		distinct[s] = true
	}
	what := fmt.Sprintf("%s %s", services.Noun(info.Service, info.ResourceType), info.ResourceID)
	switch {
	case len(statuses) == 0:
		return apierr.New(http.StatusNotFound, "%s not found: no service provider to ask", what)
	case len(distinct) == 2 && distinct[http.StatusNotFound] && distinct[http.StatusServiceUnavailable]:
		return apierr.New(http.StatusServiceUnavailable, "%s not found at the service providers that could be asked; try again", what)
	case len(distinct) == 1:
		for s := range distinct {
			if s == http.StatusNotFound {
				return apierr.New(s, "%s not found at any service provider", what)
			}
			return apierr.New(s, "every service provider answered %d for %s", s, what)
		}
	}
	names := make([]string, 0, len(statuses))
	for n := range statuses {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s: %d", n, statuses[n])
	}
	detail, _ := json.Marshal(parts)
	return apierr.New(http.StatusInternalServerError, "searching for %s, the service providers answered %s", what, detail)
}
