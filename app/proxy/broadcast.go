package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"mixmatch/app/config"
	"mixmatch/app/keystone"
	"mixmatch/app/reqinfo"
)

// broadcast asks every enabled SP, in every project the user has there, for the
// resource at once; the first 2xx wins and the others are cancelled. Ids are unique,
// so at most one cloud holds it. The winner is recorded when the real call succeeds.
func (p *Proxy) broadcast(r *http.Request, info reqinfo.Request, user *keystone.Token, userToken string, skip map[string]bool) (*target, int, string) {
	ctx, cancel := context.WithTimeout(r.Context(), p.Timeout)
	defer cancel()
	var candidates []*target
	for _, sp := range p.cfg.SPs {
		if !sp.Enabled(info.Service) || skip[sp.SPName] {
			continue
		}
		candidates = append(candidates, p.candidates(ctx, sp, info, user, userToken)...)
	}
	type result struct {
		t      *target
		status int
	}
	results := make(chan result, len(candidates))
	for _, t := range candidates {
		go func() { results <- result{t, p.probe(ctx, r, t)} }()
	}
	statuses := map[string]int{}
	for range candidates {
		res := <-results
		if res.status/100 == 2 {
			cancel() // the other probes are moot
			res.t.learn = true
			return res.t, 0, ""
		}
		if prev, seen := statuses[res.t.sp.Name]; !seen || prev == http.StatusNotFound {
			statuses[res.t.sp.Name] = res.status
		}
	}
	status, msg := summarize(info, statuses)
	return nil, status, msg
}

// candidates are the (SP, project, token) triples a broadcast asks. An SP whose
// tokens cannot be had is asked nothing; it shows as a 502 in the summary.
func (p *Proxy) candidates(ctx context.Context, sp *config.SP, info reqinfo.Request, user *keystone.Token, userToken string) []*target {
	if sp.Local() {
		return []*target{{sp: sp, token: userToken, info: info, project: info.ProjectID}}
	}
	projects, err := p.tokens.Projects(ctx, sp, user, userToken)
	if err != nil {
		p.logger.Warn("broadcast: no projects at a service provider", "sp", sp.Name, "error", err)
		return []*target{{sp: sp, info: info}} // probed without a token: reported, never used
	}
	var out []*target
	for _, pr := range projects {
		s, err := p.tokens.Token(ctx, sp, user, userToken, pr.ID)
		if err != nil {
			p.logger.Warn("broadcast: no token for a project", "sp", sp.Name, "project", pr.ID, "error", err)
			continue
		}
		out = append(out, &target{sp: sp, token: s.Token, project: s.ProjectID, info: info})
	}
	return out
}

// probe GETs the resource itself at a candidate and returns the status.
func (p *Proxy) probe(ctx context.Context, r *http.Request, t *target) int {
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
	resp, err := p.transports[t.sp.Name].RoundTrip(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0 // cancelled: another candidate won
		}
		return http.StatusBadGateway
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
// distinct status is that status; mixed statuses are a 500 naming each SP's.
func summarize(info reqinfo.Request, statuses map[string]int) (int, string) {
	distinct := map[int]bool{}
	for _, s := range statuses {
		distinct[s] = true
	}
	what := fmt.Sprintf("%s %s", strings.TrimSuffix(info.ResourceType, "s"), info.ResourceID)
	switch {
	case len(statuses) == 0:
		return http.StatusNotFound, what + " not found: no service provider to ask"
	case len(distinct) == 1:
		for s := range distinct {
			if s == http.StatusNotFound {
				return s, what + " not found at any service provider"
			}
			return s, fmt.Sprintf("every service provider answered %d for %s", s, what)
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
	return http.StatusInternalServerError, fmt.Sprintf("searching for %s, the service providers answered %s", what, detail)
}
