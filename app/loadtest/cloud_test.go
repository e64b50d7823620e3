//go:build load

package loadtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cloud stands in for one cloud's Glance v2 and Cinder v3. It never answers 5xx, so
// every 5xx the generator sees was made by mixmatch. Each answer names the cloud
// ("cloud" key), so the generator can tell a call that reached the wrong one.
type cloud struct {
	name string
	// project is where resources it holds without storing them live.
	project string
	// virtual: any id whose normalised form starts with it is a resource this cloud
	// holds. Broadcasts need an endless supply of ids no table row names yet;
	// minting them costs the stand-in nothing.
	virtual string
	// valid says which project a token is scoped to.
	valid func(token string) (string, bool)
	// created hears of every resource created here, as the cloud's notifier would.
	created func(kind, id, project string)

	srv   *httptest.Server
	mu    sync.Mutex
	store map[string]*collection // "images/<project>", "volumes/<project>"
	calls map[string]int
}

// collection is one project's images or volumes in Glance's and Cinder's default
// order reversed (created_at, then id, ascending), so that paging by marker is a
// binary search however many resources the run creates.
type collection struct {
	items []*resourceDoc
	byID  map[string]*resourceDoc
}

type resourceDoc struct {
	key  string // created_at + " " + id
	body map[string]any
}

func newCloud(name, project, virtual string, valid func(string) (string, bool)) *cloud {
	c := &cloud{name: name, project: project, virtual: virtual, valid: valid,
		store: map[string]*collection{}, calls: map[string]int{}}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	return c
}

func (c *cloud) close() { c.srv.Close() }

func (c *cloud) count(op string) {
	c.mu.Lock()
	c.calls[op]++
	c.mu.Unlock()
}

func (c *cloud) callCounts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

// seed puts n images and n volumes in the cloud's project, created in the past so
// that what the run creates lists first.
func (c *cloud) seed(n int) []resource {
	var out []resource
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		at := base.Add(time.Duration(i) * time.Minute)
		img := c.add("images", c.project, newUUID(), fmt.Sprintf("seed-image-%d", i), at)
		vol := c.add("volumes", c.project, newUUID(), fmt.Sprintf("seed-volume-%d", i), at)
		out = append(out, resource{Type: "images", ID: img, SP: c.name, Project: c.project},
			resource{Type: "volumes", ID: vol, SP: c.name, Project: c.project})
	}
	return out
}

func (c *cloud) add(kind, project, id, name string, at time.Time) string {
	body := c.doc(kind, project, id, name, at)
	d := &resourceDoc{key: body["created_at"].(string) + " " + normalize(id), body: body}
	c.mu.Lock()
	defer c.mu.Unlock()
	col := c.store[kind+"/"+project]
	if col == nil {
		col = &collection{byID: map[string]*resourceDoc{}}
		c.store[kind+"/"+project] = col
	}
	i := sort.Search(len(col.items), func(i int) bool { return col.items[i].key >= d.key })
	col.items = append(col.items, nil)
	copy(col.items[i+1:], col.items[i:])
	col.items[i] = d
	col.byID[normalize(id)] = d
	return id
}

func (c *cloud) doc(kind, project, id, name string, at time.Time) map[string]any {
	if kind == "images" {
		now := at.UTC().Format(time.RFC3339)
		return map[string]any{"id": id, "name": name, "status": "queued", "owner": project, "visibility": "shared",
			"created_at": now, "updated_at": now, "self": "/v2/images/" + id, "file": "/v2/images/" + id + "/file",
			"schema": "/v2/schemas/image", "disk_format": "raw", "container_format": "bare", "cloud": c.name}
	}
	now := at.UTC().Format("2006-01-02T15:04:05.000000")
	return map[string]any{"id": id, "name": name, "status": "available", "size": 1, "os-vol-tenant-attr:tenant_id": project,
		"created_at": now, "updated_at": now, "links": []any{}, "cloud": c.name}
}

// find returns a resource the project may see, stored or virtual.
func (c *cloud) find(kind, project, id string) (map[string]any, bool) {
	norm := normalize(id)
	c.mu.Lock()
	col := c.store[kind+"/"+project]
	var d *resourceDoc
	if col != nil {
		d = col.byID[norm]
	}
	c.mu.Unlock()
	if d != nil {
		return d.body, true
	}
	if c.virtual != "" && project == c.project && strings.HasPrefix(norm, c.virtual) {
		return c.doc(kind, project, id, "held-"+norm[:12], time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)), true
	}
	return nil, false
}

// page lists newest first, limit items after marker; an unknown marker is a 400 as
// in Glance and Cinder.
func (c *cloud) page(kind, project, marker string, limit int) ([]map[string]any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	col := c.store[kind+"/"+project]
	if col == nil {
		return []map[string]any{}, marker == ""
	}
	end := len(col.items)
	if marker != "" {
		d, ok := col.byID[normalize(marker)]
		if !ok {
			return nil, false
		}
		end = sort.Search(len(col.items), func(i int) bool { return col.items[i].key >= d.key })
	}
	out := make([]map[string]any, 0, min(limit, end))
	for i := end - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, col.items[i].body)
	}
	return out, true
}

func (c *cloud) serve(w http.ResponseWriter, r *http.Request) {
	project, ok := c.valid(r.Header.Get("X-Auth-Token"))
	if !ok {
		c.fail(w, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(segs) >= 2 && segs[0] == "v2" && segs[1] == "images":
		c.glance(w, r, segs[2:], project)
	case len(segs) >= 3 && segs[0] == "v3" && segs[2] == "volumes":
		// Cinder refuses a path whose project is not the token's.
		if normalize(segs[1]) != project {
			c.fail(w, http.StatusForbidden)
			return
		}
		c.cinder(w, r, segs[3:], project)
	default:
		c.fail(w, http.StatusNotFound)
	}
}

// create makes a resource, tells the notifier, and returns its document.
func (c *cloud) create(kind, project, name string) map[string]any {
	id := c.add(kind, project, newUUID(), name, time.Now())
	c.count("create")
	if c.created != nil {
		c.created(kind, id, project)
	}
	body, _ := c.find(kind, project, id)
	return body
}

func (c *cloud) glance(w http.ResponseWriter, r *http.Request, rest []string, project string) {
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		c.list(w, r, "images", project, func(items []map[string]any) any {
			return map[string]any{"images": items, "first": "/v2/images", "schema": "/v2/schemas/images"}
		})
	case len(rest) == 0 && r.Method == http.MethodPost:
		var in struct {
			Name string `json:"name"`
		}
		if json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in) != nil {
			c.fail(w, http.StatusBadRequest)
			return
		}
		body := c.create("images", project, in.Name)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(body)
	case len(rest) == 1 && r.Method == http.MethodGet:
		c.show(w, "images", project, rest[0], func(body map[string]any) any { return body })
	default:
		c.fail(w, http.StatusNotFound)
	}
}

func (c *cloud) cinder(w http.ResponseWriter, r *http.Request, rest []string, project string) {
	switch {
	case len(rest) == 0 && r.Method == http.MethodPost:
		var in struct {
			Volume struct {
				Name string `json:"name"`
			} `json:"volume"`
		}
		if json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in) != nil {
			c.fail(w, http.StatusBadRequest)
			return
		}
		body := c.create("volumes", project, in.Volume.Name)
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]any{"volume": body})
	case r.Method == http.MethodGet && (len(rest) == 0 || len(rest) == 1 && rest[0] == "detail"):
		summary := len(rest) == 0
		c.list(w, r, "volumes", project, func(items []map[string]any) any {
			if summary {
				for i, it := range items {
					items[i] = map[string]any{"id": it["id"], "name": it["name"], "links": it["links"]}
				}
			}
			return map[string]any{"volumes": items}
		})
	case len(rest) == 1 && r.Method == http.MethodGet:
		c.show(w, "volumes", project, rest[0], func(body map[string]any) any { return map[string]any{"volume": body} })
	default:
		c.fail(w, http.StatusNotFound)
	}
}

func (c *cloud) list(w http.ResponseWriter, r *http.Request, kind, project string, wrap func([]map[string]any) any) {
	q := r.URL.Query()
	limit := 25
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			c.fail(w, http.StatusBadRequest)
			return
		}
		limit = min(n, 1000)
	}
	items, ok := c.page(kind, project, q.Get("marker"), limit)
	if !ok {
		c.fail(w, http.StatusBadRequest)
		return
	}
	c.count("list")
	json.NewEncoder(w).Encode(wrap(items))
}

func (c *cloud) show(w http.ResponseWriter, kind, project, id string, wrap func(map[string]any) any) {
	body, ok := c.find(kind, project, id)
	if !ok {
		c.fail(w, http.StatusNotFound)
		return
	}
	c.count("get")
	json.NewEncoder(w).Encode(wrap(body))
}

// fail answers an error as OpenStack does, and counts it by status.
func (c *cloud) fail(w http.ResponseWriter, status int) {
	c.count(strconv.Itoa(status))
	writeError(w, status)
}

func writeError(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": http.StatusText(status)}})
}

// newUUID is a random version-4 UUID with dashes, as clouds write ids.
func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:]
}

// virtualUUID is a random id the cloud whose prefix it starts with holds.
func virtualUUID(prefix string) string {
	id := newUUID()
	return prefix + id[len(prefix):]
}

// normalize is how mixmatch stores ids: lower case, no dashes.
func normalize(id string) string { return strings.ToLower(strings.ReplaceAll(id, "-", "")) }
