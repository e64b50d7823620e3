package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"mixmatch/app/aggregate"
	"mixmatch/app/apierr"
	"mixmatch/app/httpclient"
	"mixmatch/app/keystone"
	"mixmatch/app/reqinfo"
	"mixmatch/app/reqlog"
	"mixmatch/app/services"
	"mixmatch/app/versions"
)

// v1VolumeSummaryKeys are the keys of a Cinder v1 summary list item.
var v1VolumeSummaryKeys = []string{"attachments", "availability_zone", "bootable", "created_at", "display_description",
	"display_name", "encrypted", "id", "metadata", "multiattach", "size", "snapshot_id", "source_volid", "status", "volume_type"}

// snapshotSummaryKeys are the keys of a Cinder snapshot summary list item: all but
// what the detail adds (os-extended-snapshot-attributes:*, and from microversions
// on group_snapshot_id, user_id, consumes_quota).
var snapshotSummaryKeys = []string{"created_at", "description", "id", "metadata", "name", "size", "status",
	"updated_at", "volume_id"}

// SkippedHeader names the SPs an aggregated list lacks because they failed.
const SkippedHeader = "MM-Skipped-Service-Providers"

// servedHeaders say which microversion an SP served a list in (Cinder answers
// every v3 call with them, and clients check the version against the one they
// asked for); a merged list carries those of the first SP by precedence.
var servedHeaders = []string{"OpenStack-API-Version", "Vary"}

func (p *Proxy) aggregates(r *http.Request, info reqinfo.Request) bool {
	c, ok := services.Lookup(info.Service, info.ResourceType)
	return p.cfg.Aggregation && ok && c.Aggregate && info.IsList(r.Method) &&
		r.Header.Get("MM-SERVICE-PROVIDER") == ""
}

// aggregate answers a list call with the merged lists of every enabled SP and every
// project the user has there.
func (p *Proxy) aggregate(w http.ResponseWriter, r *http.Request, info reqinfo.Request, user *keystone.Token, userToken string) {
	svc, _ := services.Get(info.Service)
	c, _ := svc.Collection(info.ResourceType)
	q := r.URL.Query()
	keys, err := aggregate.ParseSort(q, []aggregate.SortKey{{Key: "created_at", Desc: true}})
	if err != nil {
		p.respond(w, r, apierr.New(http.StatusBadRequest, "%s", err))
		return
	}
	limit := svc.DefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			p.respond(w, r, apierr.New(http.StatusBadRequest, "limit %q is not a non-negative whole number", v))
			return
		}
		limit = min(n, svc.MaxLimit)
	}
	marker := q.Get("marker")
	if !aggregate.IsMarker(marker) && marker != "" && !idRE.MatchString(marker) {
		// A plain marker is looked up as a member at every SP: it goes into a path.
		p.respond(w, r, apierr.New(http.StatusBadRequest, "marker %q is not an id", marker))
		return
	}
	summary := c.Detail && len(info.Rest) == 0
	base := url.Values{}
	for k, v := range q {
		if k != "limit" && k != "marker" {
			base[k] = v
		}
	}
	var sources []aggregate.Source
	sps := p.byPrecedence(info.Service, proxyList(r.Header))
	for _, targets := range p.allCandidates(r.Context(), sps, info, user, userToken) {
		for _, t := range targets {
			sources = append(sources, &listSource{p: p, t: t, r: r, coll: c, query: base, summary: summary})
		}
	}
	reqlog.SetTarget(r.Context(), "aggregate")
	res, err := aggregate.Merge(r.Context(), sources, keys, limit, marker)
	if errors.Is(err, aggregate.ErrMarkerNotFound) && len(sources) > 0 {
		// Refused as the service refuses it (Glance with a 400, Cinder and Neutron
		// with a 404), in its words: the first SP is asked for the page after it.
		sources[0].Page(r.Context(), marker, limit)
	}
	if t := refusal(sources); t != nil {
		p.forward(w, r, t)
		return
	}
	if errors.Is(err, aggregate.ErrBadRequest) {
		// The client's own marker or sort keys: its text names nothing internal.
		p.respond(w, r, apierr.New(http.StatusBadRequest, "%s", err))
		return
	}
	if err != nil {
		p.respond(w, r, apierr.Wrap(http.StatusBadGateway, err, "the service providers' lists could not be merged"))
		return
	}
	if len(sources) > 0 && len(res.Items) == 0 && allSkipped(sources, res.Skipped) {
		// An empty list would tell the client there is nothing; there is no answer.
		status := http.StatusBadGateway
		switch {
		case errors.Is(r.Context().Err(), context.DeadlineExceeded):
			status = http.StatusGatewayTimeout
		case anyBusy(sources):
			status = http.StatusServiceUnavailable
		}
		p.respond(w, r, apierr.New(status, "no service provider answered the list: %s", strings.Join(res.Skipped, ", ")))
		return
	}
	items := make([]map[string]any, len(res.Items))
	for i, it := range res.Items {
		items[i] = trim(it, info, summary)
	}
	body := map[string]any{c.ListKey: items}
	nextQuery := func() string {
		nq := url.Values{}
		for k, v := range base {
			nq[k] = v
		}
		nq.Set("limit", strconv.Itoa(limit))
		nq.Set("marker", res.Next)
		return nq.Encode()
	}
	switch {
	case svc.Paging == services.FirstNext && info.Version != "v1" && !strings.HasPrefix(info.Version, "v1."):
		// The links are relative to the endpoint, which is the proxy's /<service>;
		// Glance v1 lists had none.
		path := "/" + info.Version + "/" + c.Type
		body["first"] = path
		if len(base) > 0 {
			body["first"] = path + "?" + base.Encode()
		}
		body["schema"] = "/" + info.Version + "/schemas/" + c.Type
		if res.Next != "" {
			body["next"] = path + "?" + nextQuery()
		}
	case svc.Paging == services.LinksKey && res.Next != "":
		body[c.ListKey+"_links"] = []map[string]string{{"rel": "next",
			"href": p.publicURL(r) + r.URL.EscapedPath() + "?" + nextQuery()}}
	}
	served := false
	for _, src := range sources {
		if h := src.(*listSource).served.Load(); h != nil {
			copyNamed(w.Header(), *h, servedHeaders)
			served = true
			break
		}
	}
	if !served && svc.Microversions != "" {
		p.servedMicroversion(r, w.Header(), svc)
	}
	if len(res.Skipped) > 0 {
		w.Header().Set(SkippedHeader, strings.Join(res.Skipped, ","))
		p.logger.Warn("aggregated list without some service providers", "skipped", res.Skipped)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

// idRE is what an id from a query string or a body may be before mixmatch puts it
// into a path: no separators, no dot segments, nothing to escape.
var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_:-]{0,254}$`)

// refusal is the SP that refused the list as the client wrote it, the first by
// precedence (sources are in that order), with its answer: the query is wrong for
// every cloud, and a list without that SP's items would hide it.
func refusal(sources []aggregate.Source) *target {
	for _, s := range sources {
		ls := s.(*listSource)
		if a := ls.refused.Load(); a != nil {
			t := *ls.t
			t.answer = a
			return &t
		}
	}
	return nil
}

func allSkipped(sources []aggregate.Source, skipped []string) bool {
	failed := map[string]bool{}
	for _, name := range skipped {
		failed[name] = true
	}
	for _, s := range sources {
		if !failed[s.SP()] {
			return false
		}
	}
	return true
}

// trim cuts a detail item back to what the summary list the client asked for holds.
func trim(it aggregate.Item, info reqinfo.Request, summary bool) map[string]any {
	if !summary {
		return it
	}
	keep := []string{"id", "links", "name"}
	switch {
	case info.Version == "v1":
		keep = v1VolumeSummaryKeys
	case info.ResourceType == "snapshots":
		keep = snapshotSummaryKeys
	}
	out := map[string]any{}
	for _, k := range keep {
		if v, ok := it[k]; ok {
			out[k] = v
		}
	}
	return out
}

// listSource reads one SP and project's list for the merge.
type listSource struct {
	p       *Proxy
	t       *target
	r       *http.Request
	coll    *services.Collection
	query   url.Values
	summary bool
	// busy is set when max_concurrent_requests refused a call to this SP.
	busy atomic.Bool
	// refused is the SP's first refusal of a page (clientError).
	refused atomic.Pointer[answer]
	// served holds the servedHeaders of the SP's first answer that had any.
	served atomic.Pointer[http.Header]
}

func anyBusy(sources []aggregate.Source) bool {
	for _, s := range sources {
		if s.(*listSource).busy.Load() {
			return true
		}
	}
	return false
}

func (s *listSource) Key() string { return s.t.sp.Name + "/" + s.t.project }
func (s *listSource) SP() string  { return s.t.sp.Name }

func (s *listSource) Page(ctx context.Context, marker string, limit int) ([]aggregate.Item, error) {
	path := s.r.URL.EscapedPath()
	if s.summary {
		path = strings.TrimSuffix(path, "/") + "/detail"
	}
	q := url.Values{}
	for k, v := range s.query {
		q[k] = v
	}
	q.Set("limit", strconv.Itoa(limit))
	if marker != "" {
		q.Set("marker", marker)
	}
	var items []aggregate.Item
	err := s.get(ctx, path, q, pageBytes(limit), func(r io.Reader) (err error) {
		items, err = readList(r, s.coll.ListKey, limit)
		return err
	})
	// Only a page: a plain marker's lookup (Find) is refused by every cloud but its
	// holder.
	var se *statusError
	if errors.As(err, &se) && se.answer != nil {
		s.refused.CompareAndSwap(nil, se.answer)
	}
	return items, err
}

func (s *listSource) Find(ctx context.Context, id string) (aggregate.Item, bool, error) {
	member := s.t.info
	member.ResourceID = id
	var body map[string]json.RawMessage
	err := s.get(ctx, memberPath(member), nil, pageBytes(1), func(r io.Reader) error { return decodeFrom(r, &body) })
	var se *statusError
	if errors.As(err, &se) && se.status == http.StatusNotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	raw, _ := json.Marshal(s.coll.Member(body))
	var it aggregate.Item
	return it, true, decode(raw, &it)
}

// statusError is an answer other than 200; answer is kept when it is a client error.
type statusError struct {
	status int
	answer *answer
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d", e.status) }

// get reads one answer of the source's SP with read, at most bound bytes of it.
func (s *listSource) get(ctx context.Context, path string, q url.Values, bound int64, read func(io.Reader) error) error {
	if s.t.token == "" {
		return errors.New("no token at this service provider")
	}
	u, err := upstreamURL(s.t, &url.URL{Path: path, RawPath: path, RawQuery: q.Encode()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", s.t.token)
	req.Header.Set("Accept", "application/json")
	if v := s.r.Header.Get("OpenStack-API-Version"); v != "" {
		req.Header.Set("OpenStack-API-Version", v)
	}
	start := time.Now()
	resp, err := s.p.transports[s.t.sp.Name].RoundTrip(req)
	if err != nil {
		if errors.Is(err, httpclient.ErrBusy) {
			s.busy.Store(true)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized && !s.t.sp.Local() {
		// The next call must not be served the K2K token the SP refused.
		s.p.tokens.Forget(ctx, s.t.sp, s.t.userToken, s.t.project)
	}
	if resp.StatusCode != http.StatusOK {
		se := &statusError{status: resp.StatusCode}
		if clientError(resp.StatusCode) {
			se.answer = readAnswer(resp, start, maxKeptError)
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return se
	}
	served := http.Header{}
	copyNamed(served, resp.Header, servedHeaders)
	if len(served) > 0 {
		s.served.CompareAndSwap(nil, &served)
	}
	lr := &io.LimitedReader{R: resp.Body, N: bound}
	// Items carry their SP's links (Cinder's self and bookmark).
	if err := read(s.p.newRelinker(s.t, s.r).reader(lr)); err != nil {
		if lr.N == 0 {
			return fmt.Errorf("%w (%d bytes)", errPageTooLarge, bound)
		}
		return err
	}
	return nil
}

func decode(raw []byte, out any) error { return decodeFrom(bytes.NewReader(raw), out) }

func decodeFrom(r io.Reader, out any) error {
	d := json.NewDecoder(r)
	d.UseNumber()
	return d.Decode(out)
}

// servedMicroversion says which microversion a list no SP was asked for (the empty
// page after the last full one) is served in, as the service would: the one asked
// for, the highest every SP serves for "latest", the lowest without one. Clients
// check it against the one they sent.
func (p *Proxy) servedMicroversion(r *http.Request, h http.Header, svc *services.Service) {
	version := strings.TrimPrefix(svc.Microversions, "v") + ".0"
	if asked := r.Header.Get("OpenStack-API-Version"); asked != "" {
		name, v, _ := strings.Cut(strings.TrimSpace(asked), " ")
		v = strings.TrimSpace(v)
		switch {
		case name != svc.Name:
		case v == "latest":
			if micro := p.micro.get(r.Context(), svc.Name); micro.Max != "" {
				version = micro.Max
			}
		default:
			if _, _, ok := versions.ParseMicroversion(v); ok {
				version = v
			}
		}
	}
	h.Set("OpenStack-API-Version", svc.Name+" "+version)
	h.Set("Vary", "OpenStack-API-Version")
}
