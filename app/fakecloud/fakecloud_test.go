package fakecloud_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mixmatch/app/fakecloud"
)

const dashed = "0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f"

func newCloud(t *testing.T, opts fakecloud.Options) *fakecloud.Cloud {
	c := fakecloud.New(opts)
	t.Cleanup(c.Close)
	return c
}

type answer struct {
	status int
	header http.Header
	body   string
}

// call sends one request with a token ("X-Auth-Token", "" sends none) and the
// other headers given as pairs.
func call(t *testing.T, c *fakecloud.Cloud, method, path, body string, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, c.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", "token")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if req.Header.Get("X-Auth-Token") == "" {
		req.Header.Del("X-Auth-Token")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(raw)}
}

func (a answer) want(t *testing.T, what string, status int, contains ...string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: %d %s, want %d", what, a.status, a.body, status)
	}
	for _, s := range contains {
		if !strings.Contains(a.body, s) {
			t.Fatalf("%s: %d %s, want it to hold %s", what, a.status, a.body, s)
		}
	}
}

// decode reads the answer into v, which it zeroes first: json.Unmarshal would keep
// what an earlier answer left in it.
func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	reflect.ValueOf(v).Elem().SetZero()
	if err := json.Unmarshal([]byte(a.body), v); err != nil {
		t.Fatalf("%s: %v", a.body, err)
	}
}

// An id is found exactly as it was written: not without its dashes, not in upper
// case, and the 404 is in each service's own shape.
func TestIDsAreLookedUpExactly(t *testing.T) {
	c := newCloud(t, fakecloud.Options{Name: "east"})
	for _, kind := range []string{fakecloud.Images, fakecloud.Volumes, fakecloud.Networks} {
		c.Add(kind, "", dashed, nil)
	}
	dashless, upper := strings.ReplaceAll(dashed, "-", ""), strings.ToUpper(dashed)
	call(t, c, "GET", "/v2/images/"+dashed, "").want(t, "image as written", 200, `"id": "`+dashed+`"`, `"cloud": "east"`)
	call(t, c, "GET", "/v3/8a1e/volumes/"+dashed, "").want(t, "volume as written", 200, `"volume": {`)
	call(t, c, "GET", "/v2.0/networks/"+dashed, "").want(t, "network as written", 200, `"network": {`)
	for _, id := range []string{dashless, upper} {
		call(t, c, "GET", "/v2/images/"+id, "", "Accept", "application/json").
			want(t, "image "+id, 404, `"code": "404 Not Found"`, "No image found with ID "+id)
		call(t, c, "GET", "/v3/8a1e/volumes/"+id, "").
			want(t, "volume "+id, 404, `{"itemNotFound": {"code": 404, "message": "Volume `+id+` could not be found."}}`)
		call(t, c, "GET", "/v2.0/networks/"+id, "").want(t, "network "+id, 404, `"NeutronError": {`, `"type": "NetworkNotFound"`)
		call(t, c, "DELETE", "/v2/images/"+id, "").want(t, "delete of image "+id, 404)
	}
	if !c.Has(fakecloud.Images, dashed) || c.Has(fakecloud.Images, dashless) {
		t.Fatal("the dashed image went, or a dash-less one appeared")
	}
	// Glance's errors are webob's: JSON when asked for, as a real Glance answered it.
	var glanceJSON, want map[string]any
	call(t, c, "GET", "/v2/images/"+dashless, "", "Accept", "application/json").decode(t, &glanceJSON)
	json.Unmarshal([]byte(`{"message": "No image found with ID `+dashless+`<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}`), &want)
	if !reflect.DeepEqual(glanceJSON, want) {
		t.Fatalf("Glance's JSON 404: %v", glanceJSON)
	}
	// HTML unless JSON is asked for.
	a := call(t, c, "GET", "/v2/images/"+dashless, "")
	if a.status != 404 || a.header.Get("Content-Type") != "text/html; charset=UTF-8" ||
		!strings.Contains(a.body, "<h1>404 Not Found</h1>\n  No image found with ID "+dashless+"<br /><br />\n\n\n\n </body>") {
		t.Fatalf("Glance 404 without Accept: %d %v %s", a.status, a.header, a.body)
	}
}

func TestUnknownPathsAre404s(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	c.Add(fakecloud.Images, "", dashed, nil)
	for _, path := range []string{"/", "/v2", "/v2/imagez", "/v2/images/", "/v2/images/" + dashed + "/nothing",
		"/v2/images/" + dashed + "/file/x", "/v1/images", "/v3/8a1e/volumez", "/v3/8A1E/volumes", "/v3/project/volumes",
		"/v3/8a1e/volumes/x/y", "/v3/volumes", "/v2.0/nets", "/v2.0/networks/x/y", "/image/v2/images"} {
		call(t, c, "GET", path, "").want(t, path, 404)
	}
	call(t, c, "PUT", "/v2/images", "", "Accept", "application/json").
		want(t, "PUT on Glance's collection", 405, `"message": "The method PUT is not allowed for this resource. <br /><br />\n"`)
	call(t, c, "PUT", "/v3/8a1e/volumes", "").want(t, "PUT on Cinder's collection (no route)", 404)
	call(t, c, "GET", "/v2/images", "", "X-Auth-Token", "").want(t, "no token", 401, `"code": 401`)
}

func TestBadListParametersAre400s(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	for _, kind := range []string{fakecloud.Images, fakecloud.Volumes, fakecloud.Networks} {
		c.Add(kind, "", dashed, nil)
	}
	for _, q := range []string{"marker=nothing", "marker=" + strings.ReplaceAll(dashed, "-", ""), "marker=", "limit=x",
		"limit=-1", "limit=1.5", "sort_key=bogus", "sort_dir=up", "sort=name:up", "sort=bogus", "sort=name&sort_key=size",
		"sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc&sort_dir=asc", "member_status=maybe", "visibility=everyone"} {
		call(t, c, "GET", "/v2/images?"+q, "", "Accept", "application/json").want(t, "Glance "+q, 400, `"code": "400 Bad Request"`)
	}
	for _, q := range []string{"limit=x", "limit=-1", "offset=-1", "sort_key=bogus", "sort_dir=up", "sort=bogus:asc",
		"sort=name:up", "sort=name&sort_dir=asc", "owner=me", "sort_key=name&sort_key=size"} {
		call(t, c, "GET", "/v3/8a1e/volumes/detail?"+q, "").want(t, "Cinder "+q, 400, `{"badRequest": {"code": 400`)
	}
	// Cinder looks the marker up as a volume: an unknown one is its 404.
	call(t, c, "GET", "/v3/8a1e/volumes?marker=nothing", "").want(t, "Cinder's unknown marker", 404, `"itemNotFound"`)
	for _, q := range []string{"limit=x", "limit=-1", "sort_key=name", "sort_key=bogus&sort_dir=asc", "sort_key=name&sort_dir=up", "owner=me"} {
		call(t, c, "GET", "/v2.0/networks?"+q, "").want(t, "Neutron "+q, 400, `"NeutronError"`)
	}
	call(t, c, "GET", "/v2.0/networks?limit=1&marker=nothing", "").want(t, "Neutron's unknown marker", 404, `"NetworkNotFound"`)
	for _, path := range []string{"/v2/images?limit=0", "/v3/8a1e/volumes?limit=0&sort=name:asc,size", "/v2.0/networks?limit=0&marker=nothing"} {
		call(t, c, "GET", path, "").want(t, path, 200)
	}
}

// addAt adds n resources of a kind created a minute apart, the newest last; their
// ids are id0, id1...
func addAt(c *fakecloud.Cloud, kind string, n int, format string) []string {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range n {
		id := fmt.Sprintf("id%d", i)
		c.Add(kind, "", id, map[string]any{"created_at": base.Add(time.Duration(i) * time.Minute).Format(format),
			"name": fmt.Sprintf("n%d", (i*7)%n)})
		ids = append(ids, id)
	}
	return ids
}

func ids(items []map[string]any) string {
	var out []string
	for _, it := range items {
		out = append(out, fmt.Sprint(it["id"]))
	}
	return strings.Join(out, " ")
}

func TestGlancePagesAsGlance(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	addAt(c, fakecloud.Images, 4, time.RFC3339)
	var body struct {
		Images              []map[string]any
		First, Next, Schema string
	}
	call(t, c, "GET", "/v2/images?limit=2", "").decode(t, &body)
	if ids(body.Images) != "id3 id2" || body.First != "/v2/images?limit=2" || body.Next != "/v2/images?limit=2&marker=id2" ||
		body.Schema != "/v2/schemas/images" {
		t.Fatalf("first page: %+v", body)
	}
	call(t, c, "GET", "/v2/images?limit=2&marker=id2", "").decode(t, &body)
	if ids(body.Images) != "id1 id0" || body.Next != "/v2/images?limit=2&marker=id0" {
		t.Fatalf("second page, full: %+v", body)
	}
	call(t, c, "GET", "/v2/images?marker=id0&limit=2", "").decode(t, &body)
	if ids(body.Images) != "" || body.Next != "" || body.First != "/v2/images?limit=2" {
		t.Fatalf("past the end: %+v", body)
	}
	call(t, c, "GET", "/v2/images?limit=3", "").decode(t, &body)
	call(t, c, "GET", "/v2/images?limit=3&marker=id1", "").decode(t, &body)
	if ids(body.Images) != "id0" || body.Next != "" {
		t.Fatalf("a short page has no next: %+v", body)
	}
	// Names are n0 n3 n2 n1 for id0..id3.
	call(t, c, "GET", "/v2/images?sort=name:asc", "").decode(t, &body)
	if ids(body.Images) != "id0 id3 id2 id1" {
		t.Fatalf("sort=name:asc: %s", ids(body.Images))
	}
	call(t, c, "GET", "/v2/images?sort_key=name&sort_dir=asc&limit=2&marker=id3", "").decode(t, &body)
	if ids(body.Images) != "id2 id1" {
		t.Fatalf("sorted by name after a marker: %s", ids(body.Images))
	}
	call(t, c, "GET", "/v2/images?name=n2", "").decode(t, &body)
	if ids(body.Images) != "id2" {
		t.Fatalf("filtered by name: %s", ids(body.Images))
	}
}

func TestCinderPagesAsCinder(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	addAt(c, fakecloud.Volumes, 3, "2006-01-02T15:04:05.000000")
	var body struct {
		Volumes []map[string]any
		Links   []struct{ Href, Rel string } `json:"volumes_links"`
	}
	a := call(t, c, "GET", "/v3/8a1e/volumes/detail?limit=2", "")
	a.decode(t, &body)
	want := c.URL() + "/v3/8a1e/volumes/detail?limit=2&marker=id1"
	if ids(body.Volumes) != "id2 id1" || len(body.Links) != 1 || body.Links[0].Rel != "next" || body.Links[0].Href != want {
		t.Fatalf("first page: %s", a.body)
	}
	call(t, c, "GET", "/v3/8a1e/volumes/detail?limit=2&marker=id1", "").decode(t, &body)
	if ids(body.Volumes) != "id0" || body.Links != nil {
		t.Fatalf("last page: %+v", body)
	}
	call(t, c, "GET", "/v3/8a1e/volumes?sort=name:asc", "").decode(t, &body)
	for _, v := range body.Volumes {
		if len(v) != 3 || v["links"] == nil {
			t.Fatalf("a summary item: %v", v)
		}
	}
	// Names are n0 n1 n2 for id0..id2 (7i mod 3).
	if ids(body.Volumes) != "id0 id1 id2" {
		t.Fatalf("sort=name:asc: %s", ids(body.Volumes))
	}
}

func TestNeutronPagesAsNeutron(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	addAt(c, fakecloud.Networks, 3, time.RFC3339)
	var body struct {
		Networks []map[string]any
		Links    []struct{ Href, Rel string } `json:"networks_links"`
	}
	call(t, c, "GET", "/v2.0/networks", "").decode(t, &body)
	if ids(body.Networks) != "id0 id1 id2" || body.Links != nil {
		t.Fatalf("no limit, by id, no links: %+v", body)
	}
	call(t, c, "GET", "/v2.0/networks?limit=2", "").decode(t, &body)
	if ids(body.Networks) != "id0 id1" || len(body.Links) != 2 ||
		body.Links[0].Href != c.URL()+"/v2.0/networks?limit=2&marker=id1" ||
		body.Links[1].Href != c.URL()+"/v2.0/networks?limit=2&marker=id0&page_reverse=True" {
		t.Fatalf("first page: %+v", body)
	}
	call(t, c, "GET", "/v2.0/networks?limit=2&marker=id1", "").decode(t, &body)
	if ids(body.Networks) != "id2" || len(body.Links) != 1 || body.Links[0].Rel != "previous" {
		t.Fatalf("last page: %+v", body)
	}
	call(t, c, "GET", "/v2.0/networks?limit=2&marker=id2&page_reverse=true", "").decode(t, &body)
	if ids(body.Networks) != "id0 id1" {
		t.Fatalf("page_reverse: %+v", body)
	}
	call(t, c, "GET", "/v2.0/networks?sort_key=name&sort_dir=desc&fields=id", "").decode(t, &body)
	if ids(body.Networks) != "id2 id1 id0" || len(body.Networks[0]) != 1 {
		t.Fatalf("sorted by name, fields=id: %+v", body)
	}
}

// A deep page of a large collection costs its own length: the marker is found by
// binary search.
func TestLargeCollectionsPageByMarker(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	ids := addAt(c, fakecloud.Volumes, 100000, "2006-01-02T15:04:05.000000")
	var body struct{ Volumes []map[string]any }
	call(t, c, "GET", "/v3/8a1e/volumes?limit=2&marker="+ids[50000], "").decode(t, &body)
	if len(body.Volumes) != 2 || body.Volumes[0]["id"] != ids[49999] || body.Volumes[1]["id"] != ids[49998] {
		t.Fatalf("%+v", body)
	}
}

func BenchmarkDeepPage(b *testing.B) {
	c := fakecloud.New(fakecloud.Options{})
	defer c.Close()
	ids := addAt(c, fakecloud.Images, 100000, time.RFC3339)
	client := &http.Client{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("GET", c.URL()+"/v2/images?limit=25&marker="+ids[50000+i%40000], nil)
		req.Header.Set("X-Auth-Token", "t")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// With tokens checked, a project sees and makes its own: another project's path is a
// 400 at Cinder, another project's resources are 404s, creations are the caller's.
func TestProjectsAreKeptApart(t *testing.T) {
	tokens := map[string]string{"tok-a": "aaaa", "tok-b": "bbbb"}
	var mu sync.Mutex
	var created []string
	c := newCloud(t, fakecloud.Options{Tokens: func(tok string) (string, bool) { p, ok := tokens[tok]; return p, ok },
		Created: func(kind, id, project string) { mu.Lock(); created = append(created, kind+" "+project); mu.Unlock() }})
	c.Add(fakecloud.Volumes, "aaaa", dashed, nil)
	c.Add(fakecloud.Images, "aaaa", dashed, map[string]any{"visibility": "private"})
	call(t, c, "GET", "/v3/aaaa/volumes/"+dashed, "", "X-Auth-Token", "tok-a").want(t, "own volume", 200)
	call(t, c, "GET", "/v3/aaaa/volumes/"+dashed, "", "X-Auth-Token", "tok-x").want(t, "unknown token", 401)
	call(t, c, "GET", "/v3/aaaa/volumes/"+dashed, "", "X-Auth-Token", "tok-b").want(t, "another project's path", 400, "Malformed request url")
	call(t, c, "GET", "/v3/bbbb/volumes/"+dashed, "", "X-Auth-Token", "tok-b").want(t, "another project's volume", 404)
	call(t, c, "GET", "/v2/images/"+dashed, "", "X-Auth-Token", "tok-b").want(t, "another project's private image", 404)
	call(t, c, "GET", "/v3/bbbb/volumes", "", "X-Auth-Token", "tok-b").want(t, "another project's list", 200, `{"volumes": []}`)
	call(t, c, "POST", "/v3/bbbb/volumes", `{"volume": {"size": 1}}`, "X-Auth-Token", "tok-b").want(t, "create", 202)
	call(t, c, "POST", "/v2/images", `{"name": "x"}`, "X-Auth-Token", "tok-b").want(t, "create", 201, `"owner": "bbbb"`)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(created) != "[volumes bbbb images bbbb]" {
		t.Fatalf("the notifier heard %v", created)
	}
}

func TestVirtualResources(t *testing.T) {
	c := newCloud(t, fakecloud.Options{Virtual: func(kind, project, id string) bool {
		return kind == fakecloud.Images && strings.HasPrefix(id, "bcbc")
	}})
	call(t, c, "GET", "/v2/images/bcbc0001", "").want(t, "a virtual image", 200, `"id": "bcbc0001"`)
	call(t, c, "GET", "/v2/images/bcbd0001", "").want(t, "not a virtual image", 404)
	call(t, c, "GET", "/v2/images", "").want(t, "virtual images are not listed", 200, `"images": []`)
}

func TestCreateUploadDownloadDelete(t *testing.T) {
	c := newCloud(t, fakecloud.Options{Name: "east"})
	a := call(t, c, "POST", "/v2/images", `{"name": "cirros", "disk_format": "raw", "container_format": "bare"}`)
	var img struct{ ID, Status, Name string }
	a.want(t, "create", 201, `"cloud": "east"`)
	a.decode(t, &img)
	if img.Status != "queued" || img.Name != "cirros" || a.header.Get("Location") != c.URL()+"/v2/images/"+img.ID {
		t.Fatalf("created %+v %v", img, a.header)
	}
	call(t, c, "POST", "/v2/images", `{"name": "x", "status": "active"}`).want(t, "read-only property", 403)
	call(t, c, "POST", "/v2/images", `{"disk_format": "floppy"}`).want(t, "bad disk format", 400)
	call(t, c, "POST", "/v2/images", `{"name": `).want(t, "bad JSON", 400)
	call(t, c, "GET", "/v2/images/"+img.ID+"/file", "").want(t, "download without data", 204)
	data := strings.Repeat("0123456789", 100)
	call(t, c, "PUT", "/v2/images/"+img.ID+"/file", data).want(t, "upload without its content type", 415)
	call(t, c, "PUT", "/v2/images/"+img.ID+"/file", data, "Content-Type", "application/octet-stream").want(t, "upload", 204)
	call(t, c, "PUT", "/v2/images/"+img.ID+"/file", data, "Content-Type", "application/octet-stream").want(t, "second upload", 409)
	a = call(t, c, "GET", "/v2/images/"+img.ID+"/file", "")
	if a.status != 200 || a.body != data || a.header.Get("Content-MD5") == "" || a.header.Get("Content-Length") != "1000" {
		t.Fatalf("download: %d %v", a.status, a.header)
	}
	a = call(t, c, "GET", "/v2/images/"+img.ID+"/file", "", "Range", "bytes=10-19")
	if a.status != 206 || a.body != "0123456789" || a.header.Get("Content-Range") != "bytes 10-19/1000" {
		t.Fatalf("ranged download: %d %v %q", a.status, a.header, a.body)
	}
	call(t, c, "GET", "/v2/images/"+img.ID+"/file", "", "Range", "bytes=1000-").want(t, "range past the end", 416)
	call(t, c, "PUT", "/v2/images/"+img.ID+"/tags/blue", "").want(t, "tag", 204)
	call(t, c, "GET", "/v2/images?tag=blue", "").want(t, "listed by tag", 200, img.ID)
	call(t, c, "DELETE", "/v2/images/"+img.ID+"/tags/red", "").want(t, "untag what is not there", 404)
	call(t, c, "PATCH", "/v2/images/"+img.ID, `[{"op": "replace", "path": "/name", "value": "new"}]`).want(t, "PATCH as JSON", 415)
	call(t, c, "PATCH", "/v2/images/"+img.ID, `[{"op": "replace", "path": "/name", "value": "new"}]`,
		"Content-Type", "application/openstack-images-v2.1-json-patch").want(t, "PATCH", 200, `"name": "new"`)
	call(t, c, "POST", "/v2/images/"+img.ID+"/members", `{"member": "bbbb"}`).want(t, "member", 200, `"status": "pending"`)
	call(t, c, "DELETE", "/v2/images/"+img.ID, "").want(t, "delete", 204)
	call(t, c, "GET", "/v2/images/"+img.ID, "").want(t, "after the delete", 404)

	a = call(t, c, "POST", "/v3/8a1e/volumes", `{"volume": {"size": 2, "name": "v"}}`)
	var vol struct{ Volume struct{ ID, Status string } }
	a.want(t, "volume create", 202)
	a.decode(t, &vol)
	if vol.Volume.Status != "creating" {
		t.Fatalf("volume create: %s", a.body)
	}
	call(t, c, "POST", "/v3/8a1e/volumes", `{"volume": {"name": "no size"}}`).want(t, "volume without a size", 400)
	call(t, c, "POST", "/v3/8a1e/volumes", `{"volume": {"size": 1, "colour": "red"}}`, "OpenStack-API-Version", "volume 3.53").
		want(t, "unknown field from 3.53", 400, "('colour' was unexpected)")
	call(t, c, "POST", "/v3/8a1e/volumes", `{"volume": {"size": 1}, "name": "x", "size": 1}`).
		want(t, "unknown field outside the volume", 400, "('name', 'size' were unexpected)")
	call(t, c, "POST", "/v3/8a1e/volumes", `{"volume": {"size": 1, "colour": "red"}}`).want(t, "unknown field before 3.53", 202)
	call(t, c, "POST", "/v3/8a1e/volumes", `{"size": 1}`).want(t, "no volume element", 400)
	call(t, c, "POST", "/v3/8a1e/snapshots", `{"snapshot": {"volume_id": "`+dashed+`"}}`).want(t, "snapshot of nothing", 404)
	a = call(t, c, "POST", "/v3/8a1e/snapshots", `{"snapshot": {"volume_id": "`+vol.Volume.ID+`"}}`)
	var snap struct{ Snapshot struct{ ID string } }
	a.want(t, "snapshot create", 202, `"size": 2`)
	a.decode(t, &snap)
	call(t, c, "GET", "/v3/8a1e/volumes/"+vol.Volume.ID, "").want(t, "the volume once created", 200, `"status": "available"`)
	call(t, c, "DELETE", "/v3/8a1e/volumes/"+vol.Volume.ID, "").want(t, "volume with a snapshot", 400)
	call(t, c, "DELETE", "/v3/8a1e/snapshots/"+snap.Snapshot.ID, "").want(t, "snapshot delete", 202)
	call(t, c, "DELETE", "/v3/8a1e/volumes/"+vol.Volume.ID, "").want(t, "volume delete", 202)

	a = call(t, c, "POST", "/v2.0/networks", `{"network": {"name": "net"}}`)
	var net struct{ Network struct{ ID string } }
	a.want(t, "network create", 201)
	a.decode(t, &net)
	call(t, c, "POST", "/v2.0/networks", `{"network": {"colour": "red"}}`).want(t, "unknown attribute", 400)
	call(t, c, "DELETE", "/v2.0/networks/"+net.Network.ID, "").want(t, "network delete", 204)
	if n := c.Counts(); n["create"] != 5 || n["delete"] != 4 || n["400"] != 8 {
		t.Fatalf("counts %v", n)
	}
}

func TestCallsAreRecorded(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	call(t, c, "POST", "/v2/images?x=1", `{"name": "a"}`, "MM-PROXY-LIST", "default", "X-Service-Token", "svc")
	got := c.Received()
	if len(got) != 1 || got[0].Method != "POST" || got[0].Path != "/v2/images" || got[0].RawQuery != "x=1" ||
		got[0].Token != "token" || got[0].ProxyList != "default" || got[0].ServiceToken != "svc" ||
		got[0].BodyHash != sha256.Sum256([]byte(`{"name": "a"}`)) || got[0].Host != strings.TrimPrefix(c.URL(), "http://") {
		t.Fatalf("%+v", got)
	}
}

func TestFailNext(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	c.FailNext(2, 503)
	call(t, c, "GET", "/v3/8a1e/volumes", "").want(t, "first", 503, `"serviceUnavailable"`)
	call(t, c, "GET", "/v3/8a1e/volumes", "").want(t, "second", 503)
	call(t, c, "GET", "/v3/8a1e/volumes", "").want(t, "third", 200)
}

// A hung call waits for its release; one whose client gives up ends then.
func TestHang(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	release := c.Hang()
	get := func(ctx context.Context, done chan<- error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", c.URL()+"/v2/images", nil)
		req.Header.Set("X-Auth-Token", "t")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}
	held, gaveUp := make(chan error), make(chan error)
	go get(context.Background(), held)
	<-c.Arrived(1)
	select {
	case err := <-held:
		t.Fatalf("a hung call was answered: %v", err)
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	go get(ctx, gaveUp)
	<-c.Arrived(2)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("the client that gave up: %v", err)
	}
	release()
	if err := <-held; err != nil {
		t.Fatalf("after the release: %v", err)
	}
}

func TestSlowHeaders(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	c.SlowHeaders(200 * time.Millisecond)
	start := time.Now()
	call(t, c, "GET", "/v2/images", "").want(t, "slow", 200)
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("answered after %s", took)
	}
}

func TestBreakAfter(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	c.Add(fakecloud.Images, "", dashed, nil)
	c.PutData(dashed, make([]byte, 1<<20))
	c.BreakAfter(64 << 10)
	call(t, c, "GET", "/v2/images", "").want(t, "a short answer is whole", 200)
	req, _ := http.NewRequest("GET", c.URL()+"/v2/images/"+dashed+"/file", nil)
	req.Header.Set("X-Auth-Token", "t")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || n != 64<<10 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("%d, %d bytes, %v", resp.StatusCode, n, err)
	}
}

func TestTruncateAfter(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	c.TruncateAfter(20)
	a := call(t, c, "GET", "/v2/images", "")
	if a.status != 200 || len(a.body) != 20 || json.Valid([]byte(a.body)) {
		t.Fatalf("%d %q", a.status, a.body)
	}
	c.Heal()
	call(t, c, "GET", "/v2/images", "").want(t, "healed", 200, `"schema": "/v2/schemas/images"}`)
}

func TestResetConnections(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	c.ResetConnections()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for range 2 {
		req, _ := http.NewRequest("GET", c.URL()+"/v2/images", nil)
		req.Header.Set("X-Auth-Token", "t")
		_, err := client.Do(req)
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
			t.Fatalf("not reset: %v", err)
		}
	}
	if n := c.Connections(); n != 2 {
		t.Fatalf("%d connections", n)
	}
	if n := len(c.Received()); n != 2 {
		t.Fatalf("%d calls recorded", n)
	}
}

func TestKeepCalls(t *testing.T) {
	c := newCloud(t, fakecloud.Options{KeepCalls: 2})
	for _, q := range []string{"a", "b", "c", "d", "e"} {
		call(t, c, "GET", "/v2/images?"+q+"=1", "")
	}
	got := c.Received()
	if len(got) != 2 || got[0].RawQuery != "d=1" || got[1].RawQuery != "e=1" {
		t.Fatalf("%+v", got)
	}
	select {
	case <-c.Arrived(5):
	default:
		t.Fatal("five calls arrived, whatever was kept")
	}
}

// Each service's root answers its version document without a token, with links on
// the host the caller named; without SetRoot, / is a 404 as any unknown path.
func TestRoots(t *testing.T) {
	c := newCloud(t, fakecloud.Options{Tokens: func(string) (string, bool) { return "", false }})
	for _, tc := range []struct {
		service string
		status  int
		self    string
	}{{"image", 300, "/v2/"}, {"volume", 300, "/v3/"}, {"network", 200, "/v2.0/"}} {
		c.SetRoot(tc.service)
		a := call(t, c, "GET", "/", "", "X-Auth-Token", "")
		var doc struct {
			Versions []struct {
				ID, Status string
				Links      []struct{ Rel, Href string }
			}
		}
		a.decode(t, &doc)
		v := doc.Versions[0]
		if a.status != tc.status || v.Status != "CURRENT" || v.Links[len(v.Links)-1].Href != c.URL()+tc.self {
			t.Errorf("%q: %d %s", tc.service, a.status, a.body)
		}
	}
}
