package fakecloud

import (
	"cmp"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// resource is one image, volume, snapshot or network.
type resource struct {
	kind, id, project string
	created           string // created_at, which with id is the default order
	doc               map[string]any
	data              []byte                    // image data
	members           map[string]map[string]any // image members by project
}

func newResource(kind, project, id string, doc map[string]any) *resource {
	created, _ := doc["created_at"].(string)
	return &resource{kind: kind, id: id, project: project, created: created, doc: doc}
}

// visibleTo says whether a caller of a project may read it: "" on either side is
// everyone.
func (r *resource) visibleTo(project string) bool {
	return project == "" || r.project == "" || r.project == project
}

// collection keeps one kind sorted by (created_at, id) ascending, the services'
// default order reversed: a marker is then found by binary search, and a page costs
// its own length however many resources there are.
type collection struct {
	byID   map[string]*resource
	sorted []*resource
}

func newCollection() *collection { return &collection{byID: map[string]*resource{}} }

func before(a, b *resource) bool {
	if a.created != b.created {
		return a.created < b.created
	}
	return a.id < b.id
}

// position is where r stands, or would stand, in sorted.
func (col *collection) position(r *resource) int {
	return sort.Search(len(col.sorted), func(i int) bool { return !before(col.sorted[i], r) })
}

func (col *collection) insert(r *resource) {
	i := col.position(r)
	col.sorted = append(col.sorted, nil)
	copy(col.sorted[i+1:], col.sorted[i:])
	col.sorted[i] = r
	col.byID[r.id] = r
}

func (col *collection) remove(r *resource) {
	i := col.position(r)
	if i < len(col.sorted) && col.sorted[i] == r {
		col.sorted = append(col.sorted[:i], col.sorted[i+1:]...)
	}
	delete(col.byID, r.id)
}

// sortKey is one key of an order.
type sortKey struct {
	key  string
	desc bool
}

// tiebreak completes keys as the services' databases do before they sort, so that
// the order is total and a marker names one place: Glance and Cinder add created_at
// and id, Neutron id ascending.
func tiebreak(keys []sortKey, extra []string, desc bool) []sortKey {
	out := append([]sortKey(nil), keys...)
	for _, k := range extra {
		found := false
		for _, have := range out {
			found = found || have.key == k
		}
		if !found {
			out = append(out, sortKey{k, desc})
		}
	}
	return out
}

// sortParam reads sort=k1:dir,k2 as Glance and Cinder do, desc where no direction is
// given.
func sortParam(v string) (names, dirs []string) {
	for _, part := range strings.Split(strings.TrimSpace(v), ",") {
		k, dir, _ := strings.Cut(part, ":")
		if dir == "" {
			dir = "desc"
		}
		names, dirs = append(names, strings.TrimSpace(k)), append(dirs, strings.TrimSpace(dir))
	}
	return names, dirs
}

// page is what one list call asks for.
type page struct {
	keys    []sortKey // complete: see tiebreak
	marker  *resource // nil: from the start
	limit   int       // < 0: no limit
	offset  int
	reverse bool // the items before the marker (Neutron's page_reverse)
	keep    func(*resource) bool
}

func (p page) full(n int) bool { return p.limit >= 0 && n >= p.limit }

func (col *collection) list(p page) []*resource {
	if len(p.keys) == 2 && p.keys[0] == (sortKey{"created_at", true}) && p.keys[1] == (sortKey{"id", true}) && !p.reverse {
		// The default order: walk the index down from the marker.
		i := len(col.sorted)
		if p.marker != nil {
			i = col.position(p.marker)
		}
		out, skip := []*resource{}, p.offset
		for j := i - 1; j >= 0 && !p.full(len(out)); j-- {
			if r := col.sorted[j]; p.keep(r) {
				if skip > 0 {
					skip--
					continue
				}
				out = append(out, r)
			}
		}
		return out
	}
	var all []*resource
	for _, r := range col.sorted {
		if p.keep(r) {
			all = append(all, r)
		}
	}
	cmp := func(a, b *resource) int {
		for _, k := range p.keys {
			c := compareValues(field(a, k.key), field(b, k.key))
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	}
	sort.SliceStable(all, func(i, j int) bool { return cmp(all[i], all[j]) < 0 })
	// A marker is a place in the order, found by its values: it need not pass the
	// filters, as in the services' SQL.
	lo, hi := 0, len(all)
	if p.marker != nil {
		cut := sort.Search(len(all), func(i int) bool { return cmp(all[i], p.marker) > 0 })
		if p.reverse {
			hi = sort.Search(len(all), func(i int) bool { return cmp(all[i], p.marker) >= 0 })
		} else {
			lo = cut
		}
	}
	all = all[lo:hi]
	if p.reverse {
		if p.limit >= 0 && len(all) > p.limit {
			all = all[len(all)-p.limit:]
		}
		return all
	}
	all = all[min(p.offset, len(all)):]
	if p.limit >= 0 && len(all) > p.limit {
		all = all[:p.limit]
	}
	return all
}

func field(r *resource, key string) any {
	switch key {
	case "id":
		return r.id
	case "created_at":
		return r.created
	}
	return r.doc[key]
}

// compareValues orders the values of one column as the services' databases do:
// NULL first, numbers by value, text by its bytes. A column holds one type; mixed
// ones are ordered by type only so that the order is total.
func compareValues(a, b any) int {
	if ra, rb := typeRank(a), typeRank(b); ra != rb {
		return cmp.Compare(ra, rb)
	}
	if fa, ok := number(a); ok {
		fb, _ := number(b)
		return cmp.Compare(fa, fb)
	}
	if a == nil {
		return 0
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

func typeRank(v any) int {
	if v == nil {
		return 0
	}
	if _, ok := number(v); ok {
		return 1
	}
	return 2
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

// matches is an equality filter on a document's fields, compared as text: what the
// services' filters on plain attributes do.
func matches(doc map[string]any, filters query) bool {
	for _, f := range filters {
		v, ok := doc[f.key]
		if !ok || v == nil || fmt.Sprint(v) != f.value {
			return false
		}
	}
	return true
}

// pageLimit reads limit as Glance and Cinder do (the same code and messages in
// both): def when absent, at most max; msg says what is wrong.
func pageLimit(q query, def, max int) (limit int, msg string) {
	v, ok := q.first("limit")
	if !ok {
		return min(def, max), ""
	}
	n, ok := pyInt(v)
	switch {
	case !ok:
		return 0, "limit param must be an integer"
	case n < 0:
		return 0, "limit param must be positive"
	}
	return min(n, max), ""
}

// pyInt is Python's int() of a query value.
func pyInt(v string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	return n, err == nil
}
