package aggregate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
)

// fuzzBytes hands out the fuzzer's bytes one at a time, then zeros, so that every
// input, however short, describes some list.
type fuzzBytes []byte

func (b *fuzzBytes) next() byte {
	if len(*b) == 0 {
		return 0
	}
	c := (*b)[0]
	*b = (*b)[1:]
	return c
}

// Few values, so that ties are common; of every JSON type, so that the order has to
// hold across types as well as within one.
var fuzzValues = [][]any{
	{"", "a", "b", "B", "10", "9", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00.000000"},
	{json.Number("0"), json.Number("-0"), json.Number("1"), json.Number("1.0"), json.Number("9"),
		json.Number("10"), json.Number("1e3"), json.Number("-2.5")},
	{true, false},
	{[]any{"a"}, []any{}, map[string]any{"k": json.Number("1")}, map[string]any{}},
}

var fuzzSortKeys = []string{"created_at", "name", "size", "id", "status"}

// fuzzList is what one input describes: sources holding items of one pool (an item
// held by two sources is the same item, as a public image seen from two projects
// is), a sort order and a limit.
type fuzzList struct {
	sources []*fakeSource
	keys    []SortKey
	limit   int
	// want is every id a healthy source holds; down is the SP of every failing one.
	want map[string]bool
	down []string
}

func decodeFuzzList(data []byte) fuzzList {
	b := fuzzBytes(data)
	var l fuzzList
	n := 1 + int(b.next()%4)
	failing := b.next()
	l.limit = int(b.next() % 9)
	for range b.next() % 4 {
		k := b.next()
		l.keys = append(l.keys, SortKey{Key: fuzzSortKeys[int(k&0x7f)%len(fuzzSortKeys)], Desc: k&0x80 != 0})
	}
	if len(l.keys) == 0 {
		l.keys = []SortKey{{Key: "created_at", Desc: true}}
	}
	// The sources sort as Glance does: ties by created_at, then id, in the direction
	// of the first key.
	sourceKeys := slices.Clone(l.keys)
	for _, key := range []string{"created_at", "id"} {
		if !slices.ContainsFunc(sourceKeys, func(k SortKey) bool { return k.Key == key }) {
			sourceKeys = append(sourceKeys, SortKey{Key: key, Desc: l.keys[0].Desc})
		}
	}
	for i := range n {
		// Two sources per SP, as two projects of one cloud are.
		s := &fakeSource{key: fmt.Sprintf("sp%d/p%d", i/2, i), sp: fmt.Sprintf("sp%d", i/2), keys: sourceKeys}
		// Only a few inputs have a failing source: most exercise the merge.
		s.fail = failing>>(4+i)&1 == 1 && failing&0xf == 0
		l.sources = append(l.sources, s)
	}
	l.want = map[string]bool{}
	for i := range int(b.next() % 16) {
		it := Item{"id": fmt.Sprintf("i%d", i)}
		held := b.next()
		for _, key := range []string{"created_at", "name", "size"} {
			v := b.next()
			switch kind := int(v % 6); kind {
			case 0: // missing
			case 1:
				it[key] = nil
			default:
				vals := fuzzValues[kind-2]
				it[key] = vals[int(v>>3)%len(vals)]
			}
		}
		for j, s := range l.sources {
			if held>>j&1 == 1 {
				s.items = append(s.items, it)
				if !s.fail {
					l.want[it.ID()] = true
				}
			}
		}
	}
	for _, s := range l.sources {
		if s.fail {
			l.down = append(l.down, s.sp)
		}
	}
	l.down = dedupe(l.down)
	return l
}

func (l fuzzList) asSources() []Source {
	out := make([]Source, len(l.sources))
	for i, s := range l.sources {
		out[i] = s
	}
	return out
}

func (l fuzzList) total() int {
	n := 0
	for _, s := range l.sources {
		n += len(s.items)
	}
	return n
}

// checkPage holds for any page, whatever marker it follows.
func (l fuzzList) checkPage(t *testing.T, res Result) {
	t.Helper()
	if len(res.Items) > l.limit {
		t.Fatalf("%d items, limit %d", len(res.Items), l.limit)
	}
	seen := map[string]bool{}
	for i, it := range res.Items {
		if seen[it.ID()] {
			t.Fatalf("%s twice in one page: %v", it.ID(), ids(res.Items))
		}
		seen[it.ID()] = true
		if i > 0 && compare(res.Items[i-1], it, l.keys) > 0 {
			t.Fatalf("%v after %v under %v", it, res.Items[i-1], l.keys)
		}
	}
}

// FuzzMerge: one page after any marker is refused as a bad request or is sorted and
// within the limit; walking the pages by their markers ends, in order, and lists
// every item of the healthy sources exactly once.
func FuzzMerge(f *testing.F) {
	walkable := encodeMarker(cursors{"sp0/p0": "i1", "sp0/p1": "-"})
	for _, seed := range []struct {
		data   []byte
		marker string
	}{
		// Two sources, limit 3, by created_at desc, six items over both.
		{[]byte{1, 0, 3, 1, 0x80, 6, 3, 2, 7, 3, 1, 10, 5, 2, 2, 0, 15, 3, 3, 2, 1, 12, 2, 4, 3, 20, 2, 6, 1, 1, 1}, ""},
		// Four sources, limit 1, by name then size, many ties and missing keys.
		{[]byte{3, 0, 1, 2, 1, 2, 12, 15, 0, 2, 3, 9, 7, 0, 5, 1, 4, 8, 2, 0, 0, 6, 3, 4, 2, 11, 12, 13, 5, 4,
			14, 15, 16, 8, 17, 0, 19, 9, 0, 0, 18, 1, 1, 15, 2, 2, 2}, ""},
		// A failing source among three.
		{[]byte{2, 0x20, 2, 1, 0x80, 5, 7, 2, 2, 2, 7, 10, 10, 10, 3, 18, 18, 18, 7, 26, 26, 26, 5, 34, 34, 34}, ""},
		{[]byte{1, 0, 2, 1, 0x80, 4, 3, 2, 2, 2, 3, 10, 2, 2, 3, 18, 2, 2, 3, 26, 2, 2}, "i2"},
		{[]byte{1, 0, 2, 1, 0x80, 4, 3, 2, 2, 2, 3, 10, 2, 2, 3, 18, 2, 2, 3, 26, 2, 2}, walkable},
		{[]byte{0, 0, 4, 0, 3, 1, 2, 3, 4}, "no-such-image"},
		{[]byte{0, 0, 4, 0, 3, 1, 2, 3, 4}, "mm1.bm90IGpzb24"},
		{[]byte{0, 0, 0, 0, 3, 1, 2, 3, 4}, ""},
		{nil, ""},
	} {
		f.Add(seed.data, seed.marker)
	}
	f.Fuzz(func(t *testing.T, data []byte, marker string) {
		l := decodeFuzzList(data)
		ctx := context.Background()

		if marker != "" {
			res, err := Merge(ctx, l.asSources(), l.keys, l.limit, marker)
			if err != nil && !errors.Is(err, ErrBadRequest) {
				t.Fatalf("marker %q: %v, want a bad request or a page", marker, err)
			}
			if err == nil {
				l.checkPage(t, res)
			}
		}

		var got []Item
		next, pages := "", 0
		for {
			res, err := Merge(ctx, l.asSources(), l.keys, l.limit, next)
			if err != nil {
				t.Fatalf("page %d (marker %q): %v", pages, next, err)
			}
			l.checkPage(t, res)
			if !slices.Equal(res.Skipped, l.down) {
				t.Fatalf("skipped %v, want %v", res.Skipped, l.down)
			}
			if len(got) > 0 && len(res.Items) > 0 && compare(got[len(got)-1], res.Items[0], l.keys) > 0 {
				t.Fatalf("page %d starts with %v after %v", pages, res.Items[0], got[len(got)-1])
			}
			got = append(got, res.Items...)
			pages++
			if res.Next == "" {
				break
			}
			if res.Next == next {
				t.Fatalf("page %d hands out its own marker", pages)
			}
			if pages > l.total()+len(l.sources)+2 {
				t.Fatalf("%d pages of %d for %d items in %d sources", pages, l.limit, l.total(), len(l.sources))
			}
			next = res.Next
		}
		if l.limit == 0 {
			if len(got) != 0 || pages != 1 {
				t.Fatalf("limit 0: %d items in %d pages", len(got), pages)
			}
			return
		}
		listed := map[string]bool{}
		for _, it := range got {
			if listed[it.ID()] {
				t.Fatalf("%s listed twice: %v", it.ID(), ids(got))
			}
			listed[it.ID()] = true
		}
		if len(listed) != len(l.want) {
			want := make([]string, 0, len(l.want))
			for id := range l.want {
				want = append(want, id)
			}
			sort.Strings(want)
			t.Fatalf("listed %v, want %v", ids(got), want)
		}
		for id := range listed {
			if !l.want[id] {
				t.Fatalf("listed %s, which no healthy source holds", id)
			}
		}
	})
}
