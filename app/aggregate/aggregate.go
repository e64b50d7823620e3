// Package aggregate merges one collection (images, volumes, snapshots) from many
// sources (an SP and a project each) into one sorted, paginated list. Each source is
// read a page at a time with the client's sort and limit, and a next page is asked
// only when the merge reaches the end of the one in hand, so a large cloud is never
// read whole. The marker handed out carries one cursor per source.
package aggregate

import (
	"container/heap"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Item is one element of a list, as decoded from JSON (numbers as json.Number).
type Item map[string]any

// ID is the item's id.
func (it Item) ID() string { s, _ := it["id"].(string); return s }

// Source is one SP and project.
type Source interface {
	// Key identifies the source in markers ("remote1/8a1e...").
	Key() string
	// SP names the service provider, for the header listing skipped ones.
	SP() string
	// Page returns up to limit items after marker ("" for the first), sorted as asked
	// and ties broken as Glance and Cinder break them (see tiebreak).
	Page(ctx context.Context, marker string, limit int) ([]Item, error)
	// Find returns the item of an id, or ok false when the source does not hold it.
	Find(ctx context.Context, id string) (Item, bool, error)
}

// SortKey is one key of the order.
type SortKey struct {
	Key  string
	Desc bool
}

// ErrBadRequest is a sort or marker the client must fix (400).
var ErrBadRequest = errors.New("bad request")

// ErrMarkerNotFound is a plain marker no source holds; it is an ErrBadRequest too.
var ErrMarkerNotFound = errors.New("matches no item")

// ParseSort reads sort=k1:asc,k2:desc or repeated sort_key/sort_dir, as Glance and
// Cinder take them; mixing both is refused as they refuse it. def applies when
// neither is given.
func ParseSort(q url.Values, def []SortKey) ([]SortKey, error) {
	if q.Has("sort") && (q.Has("sort_key") || q.Has("sort_dir")) {
		return nil, fmt.Errorf("%w: sort and sort_key/sort_dir cannot be mixed", ErrBadRequest)
	}
	var keys []SortKey
	if q.Has("sort") {
		for _, part := range strings.Split(q.Get("sort"), ",") {
			k, dir, _ := strings.Cut(strings.TrimSpace(part), ":")
			if k == "" {
				return nil, fmt.Errorf("%w: empty sort key", ErrBadRequest)
			}
			desc, err := parseDir(dir, false)
			if err != nil {
				return nil, err
			}
			keys = append(keys, SortKey{Key: k, Desc: desc})
		}
		return keys, nil
	}
	dirs := q["sort_dir"]
	for i, k := range q["sort_key"] {
		dir := ""
		if i < len(dirs) {
			dir = dirs[i]
		} else if len(dirs) > 0 {
			dir = dirs[len(dirs)-1]
		}
		desc, err := parseDir(dir, true)
		if err != nil {
			return nil, err
		}
		keys = append(keys, SortKey{Key: k, Desc: desc})
	}
	if len(keys) == 0 {
		return def, nil
	}
	return keys, nil
}

func parseDir(dir string, def bool) (bool, error) {
	switch dir {
	case "":
		return def, nil
	case "asc":
		return false, nil
	case "desc":
		return true, nil
	}
	return false, fmt.Errorf("%w: sort direction %q is not asc or desc", ErrBadRequest, dir)
}

// compare orders two items by keys; an item lacking a key sorts after one that
// has it, whatever the direction.
func compare(a, b Item, keys []SortKey) int {
	for _, k := range keys {
		va, oka := present(a, k.Key)
		vb, okb := present(b, k.Key)
		switch {
		case !oka && !okb:
			continue
		case !oka:
			return 1
		case !okb:
			return -1
		}
		c := compareValues(va, vb)
		if k.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

func present(it Item, key string) (any, bool) {
	v, ok := it[key]
	return v, ok && v != nil
}

func compareValues(a, b any) int {
	na, aNum := a.(json.Number)
	nb, bNum := b.(json.Number)
	switch {
	case aNum && bNum:
		fa, _ := na.Float64()
		fb, _ := nb.Float64()
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	case aNum:
		// Numbers before everything else: compared as text with the rest, 9 < 10
		// < "9" = 9 would be no order, and the merge needs one.
		return -1
	case bNum:
		return 1
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// tiebreak completes keys as Glance and Cinder complete theirs before they sort:
// created_at, then id, in the direction of the first key. The merge has to order ties
// as the sources do, or an item two sources hold (a public image seen from two
// projects) is not met in both at once and is listed on two pages.
func tiebreak(keys []SortKey) []SortKey {
	desc := len(keys) == 0 || keys[0].Desc
	out := slices.Clone(keys)
	for _, key := range []string{"created_at", "id"} {
		if !slices.ContainsFunc(out, func(k SortKey) bool { return k.Key == key }) {
			out = append(out, SortKey{Key: key, Desc: desc})
		}
	}
	return out
}

// cursors are the per-source positions a marker carries: the last id handed out,
// "" for not started, "-" for exhausted.
type cursors map[string]string

const markerPrefix = "mm1."

func encodeMarker(c cursors) string {
	b, _ := json.Marshal(c)
	return markerPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// IsMarker reports a marker this package issued (a plain id is not one).
func IsMarker(m string) bool { _, ok := decodeMarker(m); return ok }

func decodeMarker(m string) (cursors, bool) {
	if !strings.HasPrefix(m, markerPrefix) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(m, markerPrefix))
	var c cursors
	if err != nil || json.Unmarshal(b, &c) != nil {
		return nil, false
	}
	return c, true
}

// Result is one merged page.
type Result struct {
	Items []Item
	// Next is the marker of the following page, "" on the last one.
	Next string
	// Skipped names the SPs that failed and are missing from the list.
	Skipped []string
}

type stream struct {
	src   Source
	index int
	buf   []Item
	// cursor is the last id placed before the page boundary (handed out, or skipped
	// as sorting before a plain marker); it goes into the next marker.
	cursor string
	// fetched is the last id read from the source: the upstream marker of its next page.
	fetched string
	more    bool // the last page was full: there may be more
	after   Item // for a plain marker: items up to this one are skipped
	limit   int
	failed  bool
	// pages counts the pages read in this call; ids, the ids they held.
	pages int
	ids   map[string]bool
}

// Bounds on what one client call costs each source: a source that ignores the
// marker, or answers the same items again, would otherwise be paged until the
// request's deadline.
const (
	// maxPages is the most pages read from one source for one merged page.
	maxPages = 20
	// seekPage is the page size while skipping what sorts before a plain marker:
	// Glance's and Cinder's default most, so that skipping a cloud of items costs
	// pages of them, not one call each.
	seekPage = 1000
)

// Merge returns one page of limit items after marker (a marker this package
// issued, or a plain id of an item in one of the sources). Items with the same id
// from two sources (a public image seen from two projects) are listed once.
func Merge(ctx context.Context, sources []Source, keys []SortKey, limit int, marker string) (Result, error) {
	keys = tiebreak(keys)
	streams := make([]*stream, len(sources))
	for i, s := range sources {
		streams[i] = &stream{src: s, index: i, more: true, limit: limit}
	}
	if marker != "" {
		if c, ok := decodeMarker(marker); ok {
			for _, s := range streams {
				if cur := c[s.src.Key()]; cur == "-" {
					s.more = false
				} else {
					s.cursor, s.fetched = cur, cur
				}
			}
		} else if err := seekPlainMarker(ctx, streams, marker); err != nil {
			return Result{}, err
		}
	}
	// First pages concurrently; later ones only as the merge needs them.
	var wg sync.WaitGroup
	for _, s := range streams {
		if s.more {
			wg.Add(1)
			go func() { defer wg.Done(); s.fill(ctx, keys) }()
		}
	}
	wg.Wait()
	h := &mergeHeap{keys: keys}
	for _, s := range streams {
		if len(s.buf) > 0 {
			h.streams = append(h.streams, s)
		}
	}
	heap.Init(h)
	var res Result
	seen := map[string]bool{}
	// Once the page is full, copies of items it already lists are still taken: left
	// at a source's head they would open the next page again.
	for h.Len() > 0 && (len(res.Items) < limit || seen[h.streams[0].buf[0].ID()]) {
		s := h.streams[0]
		it := s.buf[0]
		s.buf = s.buf[1:]
		s.cursor = it.ID()
		if !seen[it.ID()] {
			seen[it.ID()] = true
			res.Items = append(res.Items, it)
		}
		if len(s.buf) == 0 && s.more {
			s.fill(ctx, keys)
		}
		if len(s.buf) == 0 {
			heap.Pop(h)
		} else {
			heap.Fix(h, 0)
		}
	}
	next := cursors{}
	for _, s := range streams {
		if s.failed {
			res.Skipped = append(res.Skipped, s.src.SP())
		}
		if len(s.buf) > 0 || s.more || s.failed {
			next[s.src.Key()] = s.cursor
		} else {
			next[s.src.Key()] = "-"
		}
	}
	// A full page has a next one, even when every source is known to be done: Glance
	// and Cinder answer so (they cannot know), and clients, Tempest's paging tests
	// among them, follow it to an empty page. That page costs no upstream call.
	if limit > 0 && len(res.Items) == limit {
		res.Next = encodeMarker(next)
	}
	res.Skipped = dedupe(res.Skipped)
	return res, nil
}

// fill reads the source's next page; a failing source drops out of this list, and
// so does one that makes no progress: it answers an item it answered before, or
// needs more than maxPages pages.
func (s *stream) fill(ctx context.Context, keys []SortKey) {
	for s.more && len(s.buf) == 0 {
		if s.pages == maxPages {
			s.failed, s.more = true, false
			return
		}
		s.pages++
		marker := s.fetched
		size := s.limit
		if s.after != nil {
			size = max(size, seekPage)
		}
		items, err := s.src.Page(ctx, marker, size)
		if err != nil {
			s.failed, s.more = true, false
			return
		}
		// Some sources answer with their marker item again; that one is no loop.
		if marker != "" && len(items) > 0 && items[0].ID() == marker {
			items = items[1:]
			if len(items) == 0 {
				s.more = false
				return
			}
		}
		if len(items) > size {
			items = items[:size] // more than asked for is not the page's to hold
		}
		if s.ids == nil {
			s.ids = map[string]bool{}
		}
		for _, it := range items {
			if s.ids[it.ID()] {
				s.failed, s.more, s.buf = true, false, nil
				return
			}
			s.ids[it.ID()] = true
		}
		s.more = len(items) > 0 && len(items) >= size
		for _, it := range items {
			s.fetched = it.ID()
			if s.after != nil && compare(it, s.after, keys) <= 0 {
				s.cursor = it.ID()
				continue
			}
			s.buf = append(s.buf, it)
		}
		if len(s.buf) > 0 {
			s.after = nil
		}
	}
}

// seekPlainMarker places every stream after the item a plain id names: the source
// holding it continues from it, the others skip what sorts before it.
func seekPlainMarker(ctx context.Context, streams []*stream, id string) error {
	type found struct {
		s  *stream
		it Item
	}
	results := make(chan found, len(streams))
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if it, ok, err := s.src.Find(ctx, id); err == nil && ok {
				results <- found{s, it}
			}
		}()
	}
	wg.Wait()
	close(results)
	f, ok := <-results
	if !ok {
		return fmt.Errorf("%w: marker %s %w", ErrBadRequest, id, ErrMarkerNotFound)
	}
	for _, s := range streams {
		if s == f.s {
			s.cursor, s.fetched = id, id
		} else {
			s.after = f.it
		}
	}
	return nil
}

func dedupe(names []string) []string {
	sort.Strings(names)
	out := names[:0]
	for i, n := range names {
		if i == 0 || n != names[i-1] {
			out = append(out, n)
		}
	}
	return out
}

// mergeHeap orders streams by their head item; ties keep source order, so the merge
// is stable.
type mergeHeap struct {
	streams []*stream
	keys    []SortKey
}

func (h *mergeHeap) Len() int { return len(h.streams) }
func (h *mergeHeap) Less(i, j int) bool {
	c := compare(h.streams[i].buf[0], h.streams[j].buf[0], h.keys)
	if c != 0 {
		return c < 0
	}
	return h.streams[i].index < h.streams[j].index
}
func (h *mergeHeap) Swap(i, j int) { h.streams[i], h.streams[j] = h.streams[j], h.streams[i] }
func (h *mergeHeap) Push(x any)    { h.streams = append(h.streams, x.(*stream)) }
func (h *mergeHeap) Pop() any {
	last := h.streams[len(h.streams)-1]
	h.streams = h.streams[:len(h.streams)-1]
	return last
}
