//go:build load

package loadtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"mixmatch/app/store"
)

// mix is the share of each kind of request, in percent.
var mix = []struct {
	name   string
	weight int
}{
	{"get-mapped", 40}, // GET of a resource the table maps, at any of the three clouds
	{"list", 20},       // aggregated image or volume list, with a limit
	{"list-next", 5},   // the next page of an earlier list, by its marker
	{"create", 15},     // POST an image or a volume to a chosen cloud
	{"broadcast", 20},  // GET of a remote resource no row names: found by broadcast
}

func pickKind() string {
	n := rand.IntN(100)
	for _, k := range mix {
		if n < k.weight {
			return k.name
		}
		n -= k.weight
	}
	return mix[0].name
}

// generator is an open-loop client: each request starts at its scheduled time
// whether or not earlier ones have finished, as independent users would send them.
type generator struct {
	e      *env
	client *http.Client
	stats  *reqStats
	ledger *ledger
	mapped *pool
	nexts  *nextRing
	seq    atomic.Int64
	wg     sync.WaitGroup
}

func newGenerator(e *env, l *ledger) *generator {
	g := &generator{e: e, stats: newReqStats(), ledger: l, mapped: &pool{}, nexts: &nextRing{}}
	g.client = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second, DisableCompression: true}}
	g.mapped.add(e.seeds...)
	return g
}

// run sends rate requests a second until d has passed. The schedule is absolute
// (start + i/rate), so a late wake-up does not shift later requests; how late each
// one started is recorded as schedule lag. Slots whose time comes after the end
// are not sent: a generator that falls behind shows as a missed rate.
func (g *generator) run(start time.Time, d time.Duration, rate float64) {
	end := start.Add(d)
	for i := 0; ; i++ {
		due := start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
		if !due.Before(end) {
			return
		}
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		now := time.Now()
		if !now.Before(end) {
			return
		}
		kind := pickKind()
		if kind == "list-next" && g.nexts.empty() {
			kind = "list" // nothing to follow yet, in the first instants
		}
		g.stats.started(kind, now.Sub(due))
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.fire(kind)
		}()
	}
}

// wait waits for the requests in flight, at most timeout.
func (g *generator) wait(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (g *generator) fire(kind string) {
	switch kind {
	case "get-mapped":
		g.get(kind, g.mapped.pick(), "")
	case "list":
		g.list(kind)
	case "list-next":
		g.listNext()
	case "create":
		g.create()
	case "broadcast":
		sp := []string{"remote1", "remote2"}[rand.IntN(2)]
		r := resource{Type: []string{"images", "volumes"}[rand.IntN(2)], ID: virtualID(g.e.clouds[sp].virtual),
			SP: sp, Project: g.e.projectAt(sp)}
		g.get(kind, r, "broadcast")
	}
}

// answer is one exchange with mixmatch.
type answer struct {
	status  int
	header  http.Header
	body    []byte
	latency time.Duration
	err     error
}

func (g *generator) do(method, path string, body []byte, header http.Header) answer {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, g.e.workerURL+path, rd)
	if err != nil {
		return answer{err: err}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("X-Auth-Token", g.e.users[rand.IntN(len(g.e.users))])
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := g.client.Do(req)
	if err != nil {
		return answer{err: err, latency: time.Since(start)}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	resp.Body.Close()
	return answer{status: resp.StatusCode, header: resp.Header, body: raw, latency: time.Since(start), err: err}
}

func (g *generator) record(kind string, a answer, problem, detail string) {
	if a.err == nil && a.status >= 500 {
		problem, detail = "", truncate(string(a.body), 300)
	}
	g.stats.outcome(kind, a.latency, a.status, a.err, problem, detail)
}

func memberPath(r resource) string {
	if r.Type == "images" {
		return "/image/v2/images/" + r.ID
	}
	return "/volume/v3/" + userProject + "/volumes/" + r.ID
}

// get reads one resource; learned, when set, records it in the ledger once found
// (a broadcast's winner is written to the table before the answer is sent).
func (g *generator) get(kind string, r resource, learned string) {
	a := g.do(http.MethodGet, memberPath(r), nil, nil)
	problem, detail := "", ""
	if a.err == nil && a.status < 500 {
		problem, detail = checkDoc(a, http.StatusOK, r.Type, r.SP, func(id, _ string) string {
			if store.NormalizeID(id) != store.NormalizeID(r.ID) {
				return "another resource"
			}
			return ""
		})
	}
	if problem == "" && a.err == nil && a.status < 500 && learned != "" {
		g.ledger.live(learned, r)
		g.mapped.add(r)
	}
	g.record(kind, a, problem, detail)
}

// checkDoc checks an answer holding one image (bare) or volume ({"volume": ...}):
// the status, the cloud that answered, and what more check says about id and name.
func checkDoc(a answer, status int, typ, sp string, check func(id, name string) string) (string, string) {
	if a.status != status {
		return fmt.Sprintf("status %d", a.status), truncate(string(a.body), 300)
	}
	var doc map[string]any
	if err := json.Unmarshal(a.body, &doc); err != nil {
		return "not JSON", truncate(string(a.body), 300)
	}
	if typ == "volumes" {
		doc, _ = doc["volume"].(map[string]any)
	}
	id, _ := doc["id"].(string)
	name, _ := doc["name"].(string)
	if cloud, _ := doc["cloud"].(string); cloud != sp {
		return "wrong cloud", fmt.Sprintf("%s %s answered by %q, want %q", typ, id, cloud, sp)
	}
	if p := check(id, name); p != "" {
		return p, truncate(string(a.body), 300)
	}
	return "", ""
}

func (g *generator) create() {
	sp := []string{"default", "remote1", "remote2"}[rand.IntN(3)]
	typ := []string{"images", "images", "volumes"}[rand.IntN(3)]
	base := fmt.Sprintf("load-%d", g.seq.Add(1))
	name, header := base+"@"+sp, http.Header{}
	if rand.IntN(2) == 0 {
		name = base
		header.Set("MM-SERVICE-PROVIDER", sp)
	}
	path, body, want := "/image/v2/images", fmt.Sprintf(`{"name": %q, "disk_format": "raw", "container_format": "bare"}`, name), http.StatusCreated
	if typ == "volumes" {
		path, body, want = "/volume/v3/"+userProject+"/volumes", fmt.Sprintf(`{"volume": {"name": %q, "size": 1}}`, name), http.StatusAccepted
	}
	a := g.do(http.MethodPost, path, []byte(body), header)
	problem, detail, id := "", "", ""
	if a.err == nil && a.status < 500 {
		problem, detail = checkDoc(a, want, typ, sp, func(gotID, gotName string) string {
			id = gotID
			switch {
			case gotID == "":
				return "no id"
			case gotName != base:
				return "name not cut at @"
			}
			return ""
		})
	}
	if problem == "" && a.err == nil && a.status < 500 {
		r := resource{Type: typ, ID: id, SP: sp, Project: g.e.projectAt(sp)}
		g.ledger.live("create", r)
		g.mapped.add(r)
	}
	g.record("create", a, problem, detail)
}

var listLimits = []int{10, 25, 50}

func (g *generator) list(kind string) {
	typ, limit := []string{"images", "volumes"}[rand.IntN(2)], listLimits[rand.IntN(len(listLimits))]
	path := fmt.Sprintf("/image/v2/images?limit=%d", limit)
	if typ == "volumes" {
		path = fmt.Sprintf("/volume/v3/%s/volumes%s?limit=%d", userProject, []string{"", "/detail"}[rand.IntN(2)], limit)
	}
	a := g.do(http.MethodGet, path, nil, nil)
	problem, detail := "", ""
	if a.err == nil && a.status < 500 {
		var ids map[string]bool
		var next string
		problem, detail, ids, next = checkPage(a, typ, limit)
		if problem == "" {
			if next == "" {
				problem, detail = "no next page", truncate(string(a.body), 300)
			} else {
				g.nexts.put(nextPage{path: next, typ: typ, limit: limit, seen: ids})
			}
		}
	}
	g.record(kind, a, problem, detail)
}

func (g *generator) listNext() {
	n, ok := g.nexts.take()
	if !ok {
		g.list("list-next") // taken by another since it was scheduled
		return
	}
	a := g.do(http.MethodGet, n.path, nil, nil)
	problem, detail := "", ""
	if a.err == nil && a.status < 500 {
		var ids map[string]bool
		problem, detail, ids, _ = checkPage(a, n.typ, n.limit)
		for id := range ids {
			if problem == "" && n.seen[id] {
				problem, detail = "page 2 repeats page 1", id
			}
		}
	}
	g.record("list-next", a, problem, detail)
}

// checkPage checks an aggregated list: full (every cloud holds more than two pages),
// no service provider skipped; it returns the ids and the next page's path.
func checkPage(a answer, typ string, limit int) (problem, detail string, ids map[string]bool, next string) {
	if a.status != http.StatusOK {
		return fmt.Sprintf("status %d", a.status), truncate(string(a.body), 300), nil, ""
	}
	if skipped := a.header.Get("MM-Skipped-Service-Providers"); skipped != "" {
		return "service provider skipped", skipped, nil, ""
	}
	var body struct {
		Images  []map[string]any `json:"images"`
		Volumes []map[string]any `json:"volumes"`
		Next    string           `json:"next"`
		Links   []struct {
			Rel, Href string
		} `json:"volumes_links"`
	}
	if err := json.Unmarshal(a.body, &body); err != nil {
		return "not JSON", truncate(string(a.body), 300), nil, ""
	}
	items := body.Images
	if typ == "volumes" {
		items = body.Volumes
	}
	if len(items) != limit {
		return "short page", fmt.Sprintf("%d %s, limit %d", len(items), typ, limit), nil, ""
	}
	ids = map[string]bool{}
	prev := ""
	for _, it := range items {
		id, _ := it["id"].(string)
		ids[id] = true
		// Newest first, ties by id, as the clouds sort; summary volume lists carry no date.
		if created, ok := it["created_at"].(string); ok {
			key := created + " " + id
			if prev != "" && key > prev {
				return "out of order", fmt.Sprintf("%s listed after %s", key, prev), nil, ""
			}
			prev = key
		}
	}
	if len(ids) != len(items) {
		return "an item twice", fmt.Sprintf("%d distinct ids in %d items", len(ids), len(items)), nil, ""
	}
	switch {
	case body.Next != "":
		next = "/image" + body.Next
	case len(body.Links) > 0 && body.Links[0].Rel == "next":
		if u, err := url.Parse(body.Links[0].Href); err == nil {
			next = u.EscapedPath() + "?" + u.RawQuery
		}
	}
	return "", "", ids, next
}

// nextPage is a page to follow, with the ids of the page before it.
type nextPage struct {
	path  string
	typ   string
	limit int
	seen  map[string]bool
}

// nextRing keeps the latest next-page links; older ones are dropped.
type nextRing struct {
	mu    sync.Mutex
	pages []nextPage
}

func (r *nextRing) put(p nextPage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pages) == 64 {
		r.pages = append(r.pages[:0], r.pages[1:]...)
	}
	r.pages = append(r.pages, p)
}

func (r *nextRing) take() (nextPage, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pages) == 0 {
		return nextPage{}, false
	}
	p := r.pages[len(r.pages)-1]
	r.pages = r.pages[:len(r.pages)-1]
	return p, true
}

func (r *nextRing) empty() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pages) == 0
}
