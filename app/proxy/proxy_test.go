package proxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"mixmatch/app/config"
	"mixmatch/app/dbtest"
	"mixmatch/app/httpclient"
	"mixmatch/app/k2k"
	"mixmatch/app/keystone"
	"mixmatch/app/metrics"
	"mixmatch/app/proxy"
	"mixmatch/app/store"
)

// backend stands in for one cloud's Glance and Cinder: it holds some resources and
// records every call it received.
type backend struct {
	list []map[string]any // what its list calls answer, newest first
	// failures answers that many calls with 503 before answering properly.
	failures int
	// hang holds every call until the channel closes.
	hang chan struct{}
	// arrived, when set, hears of every call as it arrives.
	arrived chan struct{}
	name    string
	server  *httptest.Server
	mu      sync.Mutex
	has     map[string]bool // resource ids it holds
	calls   []call
}

type call struct {
	Method, Path, Token, ProxyList, ServiceToken, Custom string
	BodyHash                                             [32]byte
	Header                                               http.Header
	Host                                                 string
}

func newBackend(t testing.TB, name string) *backend {
	b := &backend{name: name, has: map[string]bool{}}
	b.server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.server.Close)
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.calls = append(b.calls, call{Method: r.Method, Path: r.URL.Path, Token: r.Header.Get("X-Auth-Token"),
		ProxyList: r.Header.Get("MM-PROXY-LIST"), ServiceToken: r.Header.Get("X-Service-Token"),
		Custom: r.Header.Get("X-Custom"), BodyHash: sha256.Sum256(body), Header: r.Header.Clone(), Host: r.Host})
	fail := b.failures > 0
	if fail {
		b.failures--
	}
	b.mu.Unlock()
	if b.arrived != nil {
		b.arrived <- struct{}{}
	}
	if b.hang != nil {
		<-b.hang
	}
	if fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("X-Openstack-Request-Id", "req-"+b.name)
	w.Header().Set("Set-Cookie", "backend=secret")
	w.Header().Set("Content-Type", "application/json")
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	last := strings.ReplaceAll(segs[len(segs)-1], "-", "")
	switch {
	case r.Method == http.MethodGet && (last == "images" || last == "detail" || last == "networks"):
		b.serveList(w, r, segs[len(segs)-2])
	case r.Method == http.MethodPost && (last == "images" || last == "volumes"):
		id := fmt.Sprintf("%032x", time.Now().UnixNano())
		b.mu.Lock()
		b.has[id] = true
		b.mu.Unlock()
		if last == "images" {
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id": %q, "name": "new"}`, id)
		} else {
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, `{"volume": {"id": %q}}`, id)
		}
	case r.Method == http.MethodPut && last == "file":
		w.WriteHeader(http.StatusNoContent)
	default:
		b.mu.Lock()
		found := b.has[last]
		b.mu.Unlock()
		if !found {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"itemNotFound": {"code": 404}}`)
			return
		}
		for _, it := range b.list {
			if it["id"] == last {
				json.NewEncoder(w).Encode(it)
				return
			}
		}
		fmt.Fprintf(w, `{"id": %q, "cloud": %q}`, last, b.name)
	}
}

// serveList pages through b.list as Glance and Cinder do: limit, and a marker that
// must be one of the list's ids.
func (b *backend) serveList(w http.ResponseWriter, r *http.Request, collection string) {
	key := "images"
	switch {
	case collection == "volumes":
		key = "volumes"
	case strings.HasSuffix(r.URL.Path, "networks"):
		key = "networks"
	}
	q := r.URL.Query()
	limit := 1000
	fmt.Sscan(q.Get("limit"), &limit)
	start := 0
	if m := q.Get("marker"); m != "" {
		start = -1
		for i, it := range b.list {
			if it["id"] == m {
				start = i + 1
			}
		}
		if start < 0 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	}
	end := min(start+limit, len(b.list))
	json.NewEncoder(w).Encode(map[string]any{key: b.list[start:end]})
}

func (b *backend) received() []call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]call(nil), b.calls...)
}

type auth map[string]*keystone.Token

func (a auth) Validate(_ context.Context, token string) (*keystone.Token, error) {
	if u, ok := a[token]; ok {
		return u, nil
	}
	return nil, keystone.ErrInvalidToken
}

// tokens stands in for the K2K exchanger: one project per SP, a token per project.
type tokens struct{}

func (tokens) Token(_ context.Context, sp *config.SP, _ *keystone.Token, _ string, project string) (k2k.Scoped, error) {
	if project == "" {
		project = "remoteproject" + sp.Name
	}
	return k2k.Scoped{Token: "k2k-token-" + sp.Name, ProjectID: project}, nil
}
func (tokens) Projects(_ context.Context, sp *config.SP, _ *keystone.Token, _ string) ([]keystone.Project, error) {
	return []keystone.Project{{ID: "remoteproject" + sp.Name, Enabled: true}}, nil
}
func (tokens) Forget(context.Context, *config.SP, string, string) {}

type setup struct {
	conf     string
	handler  http.Handler
	store    *store.Store
	backends map[string]*backend
}

const localToken = "local-user-token"

// spConf is a configuration whose SPs (default first) have the given endpoints.
// Options "sp:key = value" go into every [sp_*] section, the others into [DEFAULT].
func spConf(endpoints map[string]string, options ...string) string {
	names := []string{"default"}
	for _, n := range []string{"remote1", "remote2"} {
		if endpoints[n] != "" {
			names = append(names, n)
		}
	}
	var global, perSP []string
	for _, o := range options {
		if rest, ok := strings.CutPrefix(o, "sp:"); ok {
			perSP = append(perSP, rest)
		} else {
			global = append(global, o)
		}
	}
	conf := fmt.Sprintf("[DEFAULT]\nservice_providers = %s\n%s\n", strings.Join(names, ", "), strings.Join(global, "\n"))
	for _, n := range names {
		u := endpoints[n]
		conf += fmt.Sprintf("[sp_%s]\nimage_endpoint = %s\nvolume_endpoint = %s\nnetwork_endpoint = %s\n%s\n",
			n, u, u, u, strings.Join(perSP, "\n"))
	}
	return conf
}

func newSetup(t testing.TB, broadcast bool, options ...string) *setup {
	s := &setup{backends: map[string]*backend{}}
	endpoints := map[string]string{}
	for _, name := range []string{"default", "remote1", "remote2"} {
		s.backends[name] = newBackend(t, name)
		endpoints[name] = s.backends[name].server.URL
	}
	options = append([]string{fmt.Sprintf("search_by_broadcast = %v", broadcast)}, options...)
	s.conf = spConf(endpoints, options...)
	s.handler, s.store = newHandler(t, s.conf)
	return s
}

// newHandler is the proxy on a configuration, a fresh SQLite store, the auth and
// token stand-ins.
func newHandler(t testing.TB, conf string) (http.Handler, *store.Store) {
	user := &keystone.Token{}
	user.Project.ID = "8a1e"
	return newHandlerWith(t, conf, auth{localToken: user}, slog.New(slog.DiscardHandler))
}

func newHandlerWith(t testing.TB, conf string, a proxy.Auth, logger *slog.Logger) (http.Handler, *store.Store) {
	return newHandlerOn(t, conf, dbtest.SQLite(t), a, logger)
}

func newHandlerOn(t testing.TB, conf, connection string, a proxy.Auth, logger *slog.Logger) (http.Handler, *store.Store) {
	return newProxy(t, conf, connection, proxy.Deps{Auth: a, Logger: logger})
}

// newProxy is the proxy on a configuration and a fresh store at connection; deps
// without a transport or token source get the real transport and the stand-in tokens.
func newProxy(t testing.TB, conf, connection string, deps proxy.Deps) (http.Handler, *store.Store) {
	cfg, err := config.Load(strings.NewReader(conf), "test.conf")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), connection, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	deps.Store = st
	if deps.Tokens == nil {
		deps.Tokens = tokens{}
	}
	if deps.Transport == nil {
		deps.Transport = httpclient.New(cfg).Transport
	}
	p := proxy.New(cfg, deps)
	t.Cleanup(p.Drain) // before the store closes
	return p, st
}

func newHandlerFromConf(t testing.TB, conf string) http.Handler {
	h, _ := newHandler(t, conf)
	return h
}

func (s *setup) do(t testing.TB, method, path string, body io.Reader, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	rec, _ := serveWith(t, s.handler, method, path, body, headers...)
	return rec
}

const imageID = "0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f"
const imageKey = "0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f"

func TestUnmappedGoesLocalWithTheUsersToken(t *testing.T) {
	s := newSetup(t, false)
	s.backends["default"].has[imageKey] = true
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil, "X-Service-Token", "svc", "X-Custom", "kept")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "default"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	got := s.backends["default"].received()
	if len(got) != 1 || got[0].Path != "/v2/images/"+imageID || got[0].Token != localToken ||
		got[0].ProxyList != "default" || got[0].ServiceToken != "" || got[0].Custom != "kept" {
		t.Fatalf("local received %+v", got)
	}
	if rec.Header().Get("Set-Cookie") != "" || rec.Header().Get("X-Openstack-Request-Id") != "req-default" {
		t.Fatalf("response headers not filtered: %v", rec.Header())
	}
}

func TestServiceProviderHeader(t *testing.T) {
	s := newSetup(t, false)
	s.backends["remote1"].has[imageKey] = true
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil, "MM-SERVICE-PROVIDER", "remote1")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote1"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	got := s.backends["remote1"].received()
	if len(got) != 1 || got[0].Token != "k2k-token-remote1" {
		t.Fatalf("remote1 received %+v", got)
	}
	for _, c := range got {
		if c.Token == localToken {
			t.Fatal("the local token reached a remote SP")
		}
	}
	for _, bad := range []string{"remote9", "default,remote1"} {
		if rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil, "MM-SERVICE-PROVIDER", bad); rec.Code != 400 ||
			!strings.Contains(rec.Body.String(), `"code":400`) {
			t.Errorf("MM-SERVICE-PROVIDER %s: %d %s", bad, rec.Code, rec.Body)
		}
	}
}

func TestMappedVolumeGetsTheRemoteProjectInItsPath(t *testing.T) {
	s := newSetup(t, false)
	s.store.Upsert(context.Background(), store.Mapping{ResourceType: "volumes", ResourceID: imageID, ResourceSP: "remote2", ProjectID: "feed"})
	s.backends["remote2"].has[imageKey] = true
	rec := s.do(t, "GET", "/volume/v3/8a1e/volumes/"+imageKey, nil)
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	got := s.backends["remote2"].received()
	if len(got) != 1 || got[0].Path != "/v3/feed/volumes/"+imageKey || got[0].Token != "k2k-token-remote2" {
		t.Fatalf("remote2 received %+v", got)
	}
}

func TestBroadcastFindsAndLearns(t *testing.T) {
	s := newSetup(t, true)
	s.backends["remote2"].has[imageKey] = true
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote2"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	m, err := s.store.Find(context.Background(), "images", imageID)
	if err != nil || m.ResourceSP != "remote2" {
		t.Fatalf("learned %+v, %v", m, err)
	}
	// The next call goes straight there.
	before := len(s.backends["default"].received())
	s.do(t, "GET", "/image/v2/images/"+imageID, nil)
	if len(s.backends["default"].received()) != before {
		t.Fatal("a mapped call still asked the local cloud")
	}
}

func TestBroadcastWithoutAWinner(t *testing.T) {
	s := newSetup(t, true)
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), "not found at any service provider") {
		t.Fatalf("all 404: %d %s", rec.Code, rec.Body)
	}
	s.backends["remote1"].server.Close() // unreachable: 502 among 404s
	rec = s.do(t, "GET", "/image/v2/images/"+imageID, nil)
	var body struct{ Error struct{ Message string } }
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 500 || !strings.Contains(body.Error.Message, `remote1: 502`) || !strings.Contains(body.Error.Message, `default: 404`) {
		t.Fatalf("mixed: %d %s", rec.Code, rec.Body)
	}
}

func TestStaleMappingIsCorrected(t *testing.T) {
	s := newSetup(t, true)
	s.store.Upsert(context.Background(), store.Mapping{ResourceType: "images", ResourceID: imageID, ResourceSP: "remote1", ProjectID: "p"})
	s.backends["remote2"].has[imageKey] = true
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote2"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if m, _ := s.store.Find(context.Background(), "images", imageID); m.ResourceSP != "remote2" {
		t.Fatalf("mapping now %+v, want remote2", m)
	}
}

func TestCreatesAreLearned(t *testing.T) {
	s := newSetup(t, false)
	rec := s.do(t, "POST", "/image/v2/images", strings.NewReader(`{"name": "cirros"}`), "Content-Type", "application/json")
	var img struct{ ID string }
	if rec.Code != 201 || json.Unmarshal(rec.Body.Bytes(), &img) != nil {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if m, err := s.store.Find(context.Background(), "images", img.ID); err != nil || m.ResourceSP != "default" || m.ProjectID != "8a1e" {
		t.Fatalf("image create not learned: %+v %v", m, err)
	}
	rec = s.do(t, "POST", "/volume/v3/8a1e/volumes", strings.NewReader(`{"volume": {"size": 1}}`), "MM-SERVICE-PROVIDER", "remote1")
	var vol struct{ Volume struct{ ID string } }
	if rec.Code != 202 || json.Unmarshal(rec.Body.Bytes(), &vol) != nil {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if m, err := s.store.Find(context.Background(), "volumes", vol.Volume.ID); err != nil || m.ResourceSP != "remote1" || m.ProjectID != "remoteprojectremote1" {
		t.Fatalf("volume create not learned: %+v %v", m, err)
	}
}

func TestInvalidTokenGoesNowhere(t *testing.T) {
	s := newSetup(t, true)
	req := httptest.NewRequest("GET", "/image/v2/images/"+imageID, nil)
	req.Header.Set("X-Auth-Token", "forged")
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), `"code":401`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	for name, b := range s.backends {
		if len(b.received()) != 0 {
			t.Fatalf("%s was called", name)
		}
	}
}

func TestProxyListSkipsTheMappedSP(t *testing.T) {
	s := newSetup(t, false)
	s.store.Upsert(context.Background(), store.Mapping{ResourceType: "images", ResourceID: imageID, ResourceSP: "remote1", ProjectID: "p"})
	s.backends["default"].has[imageKey] = true
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil, "MM-PROXY-LIST", "remote1")
	if rec.Code != 200 || len(s.backends["remote1"].received()) != 0 {
		t.Fatalf("%d; remote1 called %d times", rec.Code, len(s.backends["remote1"].received()))
	}
	if got := s.backends["default"].received(); got[0].ProxyList != "remote1,default" {
		t.Fatalf("MM-PROXY-LIST sent %q", got[0].ProxyList)
	}
}

func TestUploadsStream(t *testing.T) {
	s := newSetup(t, false)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	rec := s.do(t, "PUT", "/image/v2/images/"+imageID+"/file", bytes.NewReader(data), "Content-Type", "application/octet-stream")
	if rec.Code != 204 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if got := s.backends["default"].received(); got[0].BodyHash != sha256.Sum256(data) {
		t.Fatal("the upload arrived altered")
	}
}

func fillLists(s *setup) {
	for i, name := range []string{"default", "remote1", "remote2"} {
		for j := 0; j < 3; j++ {
			id := fmt.Sprintf("%s%d", name, j)
			s.backends[name].has[id] = true
			s.backends[name].list = append(s.backends[name].list, map[string]any{"id": id, "name": "n-" + id,
				"created_at": fmt.Sprintf("2026-01-%02dT00:00:00Z", 28-j*3-i), "links": []any{}, "size": j})
		}
	}
}

func newAggregatingSetup(t *testing.T) *setup {
	s := newSetup(t, false, "aggregation = true")
	fillLists(s)
	return s
}

func TestAggregatedImagesPageThroughEveryCloud(t *testing.T) {
	s := newAggregatingSetup(t)
	var all []string
	path := "/image/v2/images?limit=4"
	for pages := 0; path != ""; pages++ {
		rec := s.do(t, "GET", path, nil)
		var body struct {
			Images []struct{ ID string }
			Next   string
			First  string
			Schema string
		}
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Schema != "/v2/schemas/images" {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		for _, im := range body.Images {
			all = append(all, im.ID)
		}
		path = ""
		if body.Next != "" {
			if !strings.HasPrefix(body.Next, "/v2/images?") {
				t.Fatalf("next = %q", body.Next)
			}
			path = "/image" + body.Next
		}
		if pages > 5 {
			t.Fatal("endless pages")
		}
	}
	want := "[default0 remote10 remote20 default1 remote11 remote21 default2 remote12 remote22]"
	if fmt.Sprint(all) != want {
		t.Fatalf("got %v\nwant %s", all, want)
	}
	for _, c := range s.backends["remote1"].received() {
		if c.Token != "k2k-token-remote1" {
			t.Fatalf("remote1 got token %q", c.Token)
		}
	}
}

func TestAggregatedVolumeSummaryComesFromDetail(t *testing.T) {
	s := newAggregatingSetup(t)
	rec := s.do(t, "GET", "/volume/v3/8a1e/volumes", nil)
	var body struct{ Volumes []map[string]any }
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &body) != nil || len(body.Volumes) != 9 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	for _, v := range body.Volumes {
		if len(v) != 3 || v["id"] == nil || v["name"] == nil || v["links"] == nil {
			t.Fatalf("summary item %v", v)
		}
	}
	if body.Volumes[0]["id"] != "default0" {
		t.Fatalf("first by created_at desc: %v", body.Volumes[0])
	}
	if got := s.backends["remote2"].received(); got[len(got)-1].Path != "/v3/remoteprojectremote2/volumes/detail" {
		t.Fatalf("remote2 asked for %s", got[len(got)-1].Path)
	}
}

func TestAggregationSurvivesAFailingCloud(t *testing.T) {
	s := newAggregatingSetup(t)
	s.backends["remote1"].server.Close()
	rec := s.do(t, "GET", "/image/v2/images", nil)
	var body struct{ Images []map[string]any }
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &body) != nil || len(body.Images) != 6 ||
		rec.Header().Get(proxy.SkippedHeader) != "remote1" {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}

func TestAggregationRefusals(t *testing.T) {
	s := newAggregatingSetup(t)
	for _, path := range []string{"/image/v2/images?marker=nothing-here", "/image/v2/images?limit=-1",
		"/image/v2/images?sort=name&sort_key=size"} {
		if rec := s.do(t, "GET", path, nil); rec.Code != 400 || !strings.Contains(rec.Body.String(), `"code":400`) {
			t.Errorf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
	// A plain id as marker, as "openstack image list --marker ID" sends it.
	rec := s.do(t, "GET", "/image/v2/images?marker=remote21", nil)
	if rec.Code != 200 || strings.Count(rec.Body.String(), `"id"`) != 3 {
		t.Fatalf("plain marker: %d %s", rec.Code, rec.Body)
	}
}

func TestVersionDocumentWithAggregation(t *testing.T) {
	s := newAggregatingSetup(t)
	rec := s.do(t, "GET", "/image", nil)
	if rec.Code != 300 || !strings.Contains(rec.Body.String(), `"CURRENT"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestRetriesOnlyBodilessCalls(t *testing.T) {
	s := newSetup(t, false)
	b := s.backends["default"]
	b.has[imageKey] = true
	b.failures = 2
	if rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil); rec.Code != 200 || len(b.received()) != 3 {
		t.Fatalf("GET after two 503s: %d after %d calls", rec.Code, len(b.received()))
	}
	b.failures = 1
	before := len(b.received())
	if rec := s.do(t, "POST", "/image/v2/images", strings.NewReader(`{}`)); rec.Code != 503 || len(b.received()) != before+1 {
		t.Fatalf("POST: %d after %d calls", rec.Code, len(b.received())-before)
	}
}

func TestResponseTimeoutIsA504(t *testing.T) {
	s := newSetup(t, false, "sp:response_timeout = 1", "sp:retries = 0")
	b := s.backends["default"]
	b.hang = make(chan struct{})
	defer close(b.hang)
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 504 || !strings.Contains(rec.Body.String(), `"code":504`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// Image data keeps what resumed and ranged downloads need.
func TestDownloadHeaders(t *testing.T) {
	s := newSetup(t, false)
	s.backends["default"].server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "bytes=10-19" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Range", "bytes 10-19/1000")
		w.Header().Set("OpenStack-API-Version", r.Header.Get("OpenStack-API-Version"))
		w.Header().Set("ETag", `"e1"`)
		w.Header().Set("Content-MD5", "abc")
		w.Header().Set("Content-Length", "10")
		w.WriteHeader(http.StatusPartialContent)
		io.WriteString(w, "0123456789")
	})
	rec := s.do(t, "GET", "/image/v2/images/"+imageID+"/file", nil, "Range", "bytes=10-19", "OpenStack-API-Version", "image 2.5")
	h := rec.Header()
	if rec.Code != 206 || h.Get("Content-Range") != "bytes 10-19/1000" || h.Get("Content-MD5") != "abc" ||
		h.Get("Content-Length") != "10" || rec.Body.String() != "0123456789" ||
		h.Get("OpenStack-API-Version") != "image 2.5" || h.Get("ETag") != `"e1"` {
		t.Fatalf("%d %v %q", rec.Code, h, rec.Body)
	}
}

func TestMetricsMove(t *testing.T) {
	s := newSetup(t, true)
	m := metrics.New()
	user := &keystone.Token{}
	user.Project.ID = "8a1e"
	s.handler, s.store = newProxy(t, s.conf, dbtest.SQLite(t), proxy.Deps{Auth: auth{localToken: user},
		Logger: slog.New(slog.DiscardHandler), Metrics: m})
	s.backends["remote2"].has[imageKey] = true
	s.do(t, "GET", "/image/v2/images/"+imageID, nil)                        // found by broadcast
	s.do(t, "POST", "/image/v2/images", strings.NewReader(`{"name": "x"}`)) // learned from the create
	if got := testutil.ToFloat64(m.Learned.WithLabelValues("broadcast")); got != 1 {
		t.Errorf("learned by broadcast: %v", got)
	}
	if got := testutil.ToFloat64(m.Learned.WithLabelValues("create")); got != 1 {
		t.Errorf("learned from creates: %v", got)
	}
	if n := testutil.CollectAndCount(m.Upstream); n < 2 {
		t.Errorf("upstream latency series: %d", n)
	}
}

func TestNetworksRouteAndAggregate(t *testing.T) {
	s := newSetup(t, false, "aggregation = true", "sp:enabled_services = image, volume, network")
	fillLists(s)
	rec := s.do(t, "GET", "/network/v2.0/networks", nil)
	var body struct{ Networks []struct{ ID string } }
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &body) != nil || len(body.Networks) != 9 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	rec = s.do(t, "GET", "/network/v2.0/networks/remote11", nil, "MM-SERVICE-PROVIDER", "remote1")
	got := s.backends["remote1"].received()
	if rec.Code != 200 || got[len(got)-1].Path != "/v2.0/networks/remote11" || got[len(got)-1].Token != "k2k-token-remote1" {
		t.Fatalf("%d %+v", rec.Code, got[len(got)-1])
	}
}
