package aggregate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

// fakeSource holds items and pages through them as Glance and Cinder do: sorted by
// the keys asked, after a marker it holds (an unknown marker is an error).
type fakeSource struct {
	key, sp string
	items   []Item
	keys    []SortKey
	pages   int
	fail    bool
}

func (f *fakeSource) Key() string { return f.key }
func (f *fakeSource) SP() string  { return f.sp }
func (f *fakeSource) sorted() []Item {
	out := append([]Item(nil), f.items...)
	sort.SliceStable(out, func(i, j int) bool { return compare(out[i], out[j], f.keys) < 0 })
	return out
}
func (f *fakeSource) Page(_ context.Context, marker string, limit int) ([]Item, error) {
	f.pages++
	if f.fail {
		return nil, errors.New("down")
	}
	all := f.sorted()
	start := 0
	if marker != "" {
		start = -1
		for i, it := range all {
			if it.ID() == marker {
				start = i + 1
			}
		}
		if start < 0 {
			return nil, fmt.Errorf("marker %s not found", marker)
		}
	}
	end := min(start+limit, len(all))
	return all[start:end], nil
}
func (f *fakeSource) Find(_ context.Context, id string) (Item, bool, error) {
	for _, it := range f.items {
		if it.ID() == id {
			return it, true, nil
		}
	}
	return nil, false, nil
}

// decode reads a JSON fixture with numbers kept as json.Number, as the proxy reads
// answers.
func decode(t *testing.T, path string) any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// load reads one of this package's fixtures (testdata/README.md says where each
// comes from).
func load(t *testing.T, name string) any {
	t.Helper()
	return decode(t, filepath.Join("testdata", name))
}

func items(v any, key string) []Item {
	var out []Item
	for _, x := range v.(map[string]any)[key].([]any) {
		out = append(out, Item(x.(map[string]any)))
	}
	return out
}

func ids(items []Item) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.ID())
	}
	return out
}

var byCreatedDesc = []SortKey{{Key: "created_at", Desc: true}}

// pageAll walks the merged list by the markers Merge hands out, pageSize at a time.
func pageAll(t *testing.T, sources []Source, keys []SortKey, pageSize int) []Item {
	t.Helper()
	var got []Item
	marker := ""
	for pages := 1; ; pages++ {
		res, err := Merge(context.Background(), sources, keys, pageSize, marker)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Skipped) > 0 {
			t.Fatalf("sources skipped: %v", res.Skipped)
		}
		got = append(got, res.Items...)
		if res.Next == "" {
			return got
		}
		if pages > 20 {
			t.Fatal("pagination does not end")
		}
		marker = res.Next
	}
}

func names(items []Item) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, fmt.Sprint(it["name"]))
	}
	return out
}

// Two projects' image lists from a real Glance, which both hold one public image,
// merge into the list the admin gets from that Glance: its order, the public image
// once, in one page or walked by markers.
func TestGlanceListsMergeIntoTheWhole(t *testing.T) {
	whole := items(load(t, "glance-images-admin.json"), "images")
	var sources []Source
	for i, name := range []string{"glance-images-demo.json", "glance-images-beta.json"} {
		sources = append(sources, &fakeSource{key: fmt.Sprint(i), sp: fmt.Sprint("sp", i),
			items: items(load(t, name), "images"), keys: byCreatedDesc})
	}
	for _, size := range []int{25, 2} {
		if got := pageAll(t, sources, byCreatedDesc, size); !reflect.DeepEqual(ids(got), ids(whole)) {
			t.Fatalf("pages of %d: merged %v, want Glance's %v", size, names(got), names(whole))
		}
	}
}

// Two clouds' volume details merge by size, whole items and all, paged by markers.
func TestCinderVolumeDetailsBySize(t *testing.T) {
	keys := []SortKey{{Key: "size"}}
	var sources []Source
	byID := map[string]Item{}
	for i, name := range []string{"cinder-volumes-detail-cloud-a.json", "cinder-volumes-detail-cloud-b.json"} {
		vols := items(load(t, name), "volumes")
		for _, v := range vols {
			byID[v.ID()] = v
		}
		sources = append(sources, &fakeSource{key: fmt.Sprint(i), sp: fmt.Sprint("sp", i), items: vols, keys: keys})
	}
	got := pageAll(t, sources, keys, 4)
	if fmt.Sprint(names(got)) != "[scratch logs ubuntu-boot db-data restore-test archive]" {
		t.Fatalf("by size: %v", names(got))
	}
	for _, v := range got {
		if !reflect.DeepEqual(v, byID[v.ID()]) {
			t.Fatalf("volume %s changed in the merge: %v", v.ID(), v)
		}
	}
}

func makeSources(n, per int, keys []SortKey) ([]*fakeSource, []Item) {
	var srcs []*fakeSource
	var all []Item
	for s := 0; s < n; s++ {
		f := &fakeSource{key: fmt.Sprintf("sp%d/p", s), sp: fmt.Sprintf("sp%d", s), keys: keys}
		for i := 0; i < per; i++ {
			it := Item{"id": fmt.Sprintf("s%d-%02d", s, i), "created_at": fmt.Sprintf("2026-01-%02dT%02d:00:00Z", 1+(i*7+s*3)%28, (i+s)%24),
				"size": json.Number(fmt.Sprint((i*37 + s*11) % 50))}
			f.items = append(f.items, it)
			all = append(all, it)
		}
		srcs = append(srcs, f)
	}
	sort.SliceStable(all, func(i, j int) bool { return compare(all[i], all[j], keys) < 0 })
	return srcs, all
}

func asSources(fs []*fakeSource) []Source {
	out := make([]Source, len(fs))
	for i, f := range fs {
		out[i] = f
	}
	return out
}

// Walking the pages by the markers handed out lists everything once, in order, and
// reads no source further than the pages shown need.
func TestPaginationByMarkers(t *testing.T) {
	keys := []SortKey{{Key: "size"}, {Key: "created_at", Desc: true}}
	fs, all := makeSources(3, 10, keys)
	var got []Item
	marker, pages := "", 0
	for {
		res, err := Merge(context.Background(), asSources(fs), keys, 4, marker)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, res.Items...)
		pages++
		if res.Next == "" {
			break
		}
		marker = res.Next
		if pages > 20 {
			t.Fatal("pagination does not end")
		}
	}
	if !reflect.DeepEqual(ids(got), ids(all)) {
		t.Fatalf("paged %v\nwant  %v", ids(got), ids(all))
	}
	// First page alone: each source read once, with the client's limit.
	for _, f := range fs {
		f.pages = 0
	}
	if _, err := Merge(context.Background(), asSources(fs), keys, 4, ""); err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.pages != 1 {
			t.Fatalf("source %s read %d pages for one page of 4", f.key, f.pages)
		}
	}
}

func TestPlainMarker(t *testing.T) {
	fs, all := makeSources(3, 6, byCreatedDesc)
	res, err := Merge(context.Background(), asSources(fs), byCreatedDesc, 100, all[7].ID())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids(res.Items), ids(all[8:])) {
		t.Fatalf("after %s: %v\nwant %v", all[7].ID(), ids(res.Items), ids(all[8:]))
	}
	if _, err := Merge(context.Background(), asSources(fs), byCreatedDesc, 10, "no-such-image"); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("unknown marker: %v", err)
	}
}

func TestMissingKeysSortLastAndDuplicatesOnce(t *testing.T) {
	keys := []SortKey{{Key: "name", Desc: true}}
	a := &fakeSource{key: "a", sp: "a", keys: keys, items: []Item{{"id": "1", "name": "x"}, {"id": "2"}, {"id": "pub", "name": "public"}}}
	b := &fakeSource{key: "b", sp: "a", keys: keys, items: []Item{{"id": "3", "name": "y"}, {"id": "pub", "name": "public"}}}
	res, err := Merge(context.Background(), []Source{a, b}, keys, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ids(res.Items)); got != "[3 1 pub 2]" {
		t.Fatalf("got %s", got)
	}
}

func TestFailingSourceIsSkippedAndNamed(t *testing.T) {
	fs, _ := makeSources(3, 3, byCreatedDesc)
	fs[1].fail = true
	res, err := Merge(context.Background(), asSources(fs), byCreatedDesc, 100, "")
	if err != nil || len(res.Items) != 6 || fmt.Sprint(res.Skipped) != "[sp1]" {
		t.Fatalf("%d items, skipped %v, %v", len(res.Items), res.Skipped, err)
	}
}

func TestParseSort(t *testing.T) {
	def := []SortKey{{Key: "created_at", Desc: true}}
	for _, tc := range []struct {
		q    string
		want []SortKey
		bad  bool
	}{
		{"", def, false},
		{"sort=name:asc,size:desc", []SortKey{{Key: "name"}, {Key: "size", Desc: true}}, false},
		{"sort=name", []SortKey{{Key: "name"}}, false},
		{"sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc", []SortKey{{Key: "name"}, {Key: "size", Desc: true}}, false},
		{"sort_key=name", []SortKey{{Key: "name", Desc: true}}, false},
		{"sort=name&sort_key=size", nil, true},
		{"sort=name:up", nil, true},
	} {
		q, _ := url.ParseQuery(tc.q)
		got, err := ParseSort(q, def)
		if tc.bad != (err != nil) || (!tc.bad && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("ParseSort(%s) = %v, %v", tc.q, got, err)
		}
	}
}

// A source that ignores the marker and answers its first page again ends the list
// instead of repeating it forever.
type stubborn struct{ fakeSource }

func (s *stubborn) Page(ctx context.Context, _ string, limit int) ([]Item, error) {
	return s.fakeSource.Page(ctx, "", limit)
}

func TestASourceIgnoringMarkersEnds(t *testing.T) {
	src := &stubborn{fakeSource{key: "s", sp: "s", keys: byCreatedDesc, items: []Item{{"id": "a", "created_at": "2"}, {"id": "b", "created_at": "1"}}}}
	marker, seen := "", 0
	for page := 0; page < 10; page++ {
		res, err := Merge(context.Background(), []Source{src}, byCreatedDesc, 1, marker)
		if err != nil {
			t.Fatal(err)
		}
		seen += len(res.Items)
		if res.Next == "" {
			break
		}
		marker = res.Next
	}
	if seen > 3 {
		t.Fatalf("%d items listed from a source of 2", seen)
	}
}

// ignoring answers its first page whatever the marker, as a broken or hostile
// source may.
type ignoring struct{ fakeSource }

func (f *ignoring) Page(ctx context.Context, _ string, limit int) ([]Item, error) {
	return f.fakeSource.Page(ctx, "", limit)
}

func numbered(prefix string, n int) []Item {
	out := make([]Item, n)
	for i := range out {
		out[i] = Item{"id": fmt.Sprintf("%s%05d", prefix, i), "created_at": fmt.Sprintf("2026-01-01T00:00:%05d", i)}
	}
	return out
}

func TestASourceThatIgnoresTheMarkerIsStopped(t *testing.T) {
	bad := &ignoring{fakeSource{key: "remote1/p", sp: "remote1", items: numbered("b", 20)}}
	good := &fakeSource{key: "default/p", sp: "default", items: []Item{{"id": "old", "created_at": "2025-01-01T00:00:00"}}}
	keys := []SortKey{{Key: "created_at", Desc: true}}
	bad.keys, good.keys = tiebreak(keys), tiebreak(keys)
	res, err := Merge(context.Background(), []Source{bad, good}, keys, 8, "")
	if err != nil {
		t.Fatal(err)
	}
	if bad.pages > 2 || !reflect.DeepEqual(res.Skipped, []string{"remote1"}) {
		t.Fatalf("%d pages from a source that ignores markers, skipped %v", bad.pages, res.Skipped)
	}
	seen := map[string]bool{}
	for _, it := range res.Items {
		if seen[it.ID()] {
			t.Fatalf("%s listed twice", it.ID())
		}
		seen[it.ID()] = true
	}
}

// A plain marker that sorts after a whole cloud makes that cloud skip every item;
// with limit=1 that took a call per item.
func TestSkippingToAPlainMarkerReadsLargePages(t *testing.T) {
	keys := []SortKey{{Key: "created_at"}}
	big := &fakeSource{key: "remote1/p", sp: "remote1", items: numbered("a", 5000), keys: tiebreak(keys)}
	other := &fakeSource{key: "default/p", sp: "default", keys: tiebreak(keys),
		items: []Item{{"id": "last", "created_at": "2027-01-01T00:00:00"}, {"id": "after", "created_at": "2027-01-02T00:00:00"}}}
	res, err := Merge(context.Background(), []Source{big, other}, keys, 1, "last")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 1 || res.Items[0].ID() != "after" || big.pages > 6 {
		t.Fatalf("items %v after %d pages of the large source", res.Items, big.pages)
	}
}

// Glance and Cinder hand out a next link with every full page, the last one too, and
// Tempest's paging tests expect it; the empty page after it costs no upstream call.
func TestAFullLastPageHasANextOne(t *testing.T) {
	a := &fakeSource{key: "a", sp: "a", keys: byCreatedDesc, items: []Item{{"id": "1", "created_at": "2"}}}
	b := &fakeSource{key: "b", sp: "b", keys: byCreatedDesc, items: []Item{{"id": "2", "created_at": "1"}}}
	sources := []Source{a, b}
	ctx := context.Background()
	marker := ""
	for _, want := range []string{"1", "2"} {
		res, err := Merge(ctx, sources, byCreatedDesc, 1, marker)
		if err != nil || len(res.Items) != 1 || res.Items[0].ID() != want || res.Next == "" {
			t.Fatalf("page of %s: %v, next %q, %v", want, ids(res.Items), res.Next, err)
		}
		marker = res.Next
	}
	before := a.pages + b.pages
	res, err := Merge(ctx, sources, byCreatedDesc, 1, marker)
	if err != nil || len(res.Items) != 0 || res.Next != "" {
		t.Fatalf("after the last item: %v, next %q, %v", ids(res.Items), res.Next, err)
	}
	if calls := a.pages + b.pages - before; calls != 0 {
		t.Fatalf("the empty page cost %d upstream calls", calls)
	}
	// A page that is not full is the last, with no link.
	if res, _ := Merge(ctx, sources, byCreatedDesc, 5, ""); len(res.Items) != 2 || res.Next != "" {
		t.Fatalf("limit 5: %v, next %q", ids(res.Items), res.Next)
	}
}
