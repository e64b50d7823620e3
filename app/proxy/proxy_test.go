package proxy_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"mixmatch/app/config"
	"mixmatch/app/dbtest"
	"mixmatch/app/fakecloud"
	"mixmatch/app/httpclient"
	"mixmatch/app/k2k"
	"mixmatch/app/keystone"
	"mixmatch/app/metrics"
	"mixmatch/app/proxy"
	"mixmatch/app/store"
)

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
		project = remoteProject(sp.Name)
	}
	return k2k.Scoped{Token: "k2k-token-" + sp.Name, ProjectID: project}, nil
}
func (tokens) Projects(_ context.Context, sp *config.SP, _ *keystone.Token, _ string) ([]keystone.Project, error) {
	return []keystone.Project{{ID: remoteProject(sp.Name), Enabled: true}}, nil
}
func (tokens) Forget(context.Context, *config.SP, string, string) {}

// remoteProject is the user's project at a remote SP: hex, as Cinder's paths need.
func remoteProject(sp string) string { return hex.EncodeToString([]byte(sp)) }

const localToken = "local-user-token"

// testAuth validates localToken, scoped to project 8a1e.
func testAuth() auth {
	user := &keystone.Token{}
	user.Project.ID = "8a1e"
	return auth{localToken: user}
}

// setup is the proxy in front of one fake cloud per SP, on a fresh store.
type setup struct {
	handler  http.Handler
	store    *store.Store
	backends map[string]*fakecloud.Cloud
}

type setupConfig struct {
	sps           []string
	global, perSP []string
	atSP          map[string][]string
	tls           map[string]*tls.Config
	checks        map[string]func(token string) (string, bool)
	virtual       map[string]bool
	endpoints     map[string]string
	cloud         map[string]func(*fakecloud.Options)
	connection    string
	deps          proxy.Deps
}

type option func(*setupConfig)

// withSPs names the SPs, the local one ("default") first; default, remote1 and
// remote2 without it.
func withSPs(names ...string) option { return func(c *setupConfig) { c.sps = names } }

func withBroadcast() option   { return withOption("search_by_broadcast", "true") }
func withAggregation() option { return withOption("aggregation", "true") }

// withOption sets an option of [DEFAULT].
func withOption(key, value string) option {
	return func(c *setupConfig) { c.global = append(c.global, key+" = "+value) }
}

// withSPOption sets an option in every [sp_*] section.
func withSPOption(key, value string) option {
	return func(c *setupConfig) { c.perSP = append(c.perSP, key+" = "+value) }
}

// withSPOptionAt sets an option in one SP's section.
func withSPOptionAt(sp, key, value string) option {
	return func(c *setupConfig) { c.atSP[sp] = append(c.atSP[sp], key+" = "+value) }
}

// withTLS makes an SP's cloud serve HTTPS.
func withTLS(sp string, cfg *tls.Config) option { return func(c *setupConfig) { c.tls[sp] = cfg } }

// withTokenCheck makes an SP's cloud honour only the tokens check accepts.
func withTokenCheck(sp string, check func(token string) (project string, ok bool)) option {
	return func(c *setupConfig) { c.checks[sp] = check }
}

// withLyingCloud makes an SP's cloud claim to hold every id it is asked for, as
// a malicious or broken SP may.
func withLyingCloud(sp string) option { return func(c *setupConfig) { c.virtual[sp] = true } }

// withEndpoint puts an SP at url, a server of the test's own, instead of a fake cloud.
func withEndpoint(sp, url string) option { return func(c *setupConfig) { c.endpoints[sp] = url } }

// withCloud shapes an SP's fake cloud further.
func withCloud(sp string, shape func(*fakecloud.Options)) option {
	return func(c *setupConfig) { c.cloud[sp] = shape }
}

// withTokens gives tokens at remote SPs with tk instead of the stand-in.
func withTokens(tk proxy.Tokens) option { return func(c *setupConfig) { c.deps.Tokens = tk } }

// withStore puts the mappings at connection instead of a fresh SQLite file.
func withStore(connection string) option { return func(c *setupConfig) { c.connection = connection } }

// withAuth validates tokens with a instead of testAuth.
func withAuth(a proxy.Auth) option { return func(c *setupConfig) { c.deps.Auth = a } }

func withLogger(l *slog.Logger) option { return func(c *setupConfig) { c.deps.Logger = l } }

func withMetrics(m *metrics.Set) option { return func(c *setupConfig) { c.deps.Metrics = m } }

func newSetup(t testing.TB, options ...option) *setup {
	c := setupConfig{sps: []string{"default", "remote1", "remote2"}, atSP: map[string][]string{}, tls: map[string]*tls.Config{},
		checks: map[string]func(string) (string, bool){}, endpoints: map[string]string{}, virtual: map[string]bool{},
		cloud: map[string]func(*fakecloud.Options){}, deps: proxy.Deps{Auth: testAuth(), Logger: slog.New(slog.DiscardHandler), Tokens: tokens{}}}
	for _, o := range options {
		o(&c)
	}
	if c.connection == "" {
		c.connection = dbtest.SQLite(t)
	}
	s := &setup{backends: map[string]*fakecloud.Cloud{}}
	conf := fmt.Sprintf("[DEFAULT]\nservice_providers = %s\n%s\n", strings.Join(c.sps, ", "), strings.Join(c.global, "\n"))
	for _, name := range c.sps {
		endpoint, own := c.endpoints[name]
		if !own {
			opts := fakecloud.Options{Name: name, TLS: c.tls[name], Tokens: c.checks[name]}
			if c.virtual[name] {
				opts.Virtual = func(string, string, string) bool { return true }
			}
			if shape := c.cloud[name]; shape != nil {
				shape(&opts)
			}
			b := fakecloud.New(opts)
			t.Cleanup(b.Close)
			s.backends[name] = b
			endpoint = b.URL()
		}
		conf += fmt.Sprintf("[sp_%s]\nimage_endpoint = %[2]s\nvolume_endpoint = %[2]s\nnetwork_endpoint = %[2]s\n%s\n%s\n",
			name, endpoint, strings.Join(c.perSP, "\n"), strings.Join(c.atSP[name], "\n"))
	}
	cfg, err := config.Load(strings.NewReader(conf), "test.conf")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), c.connection, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	c.deps.Store = st
	if c.deps.Transport == nil {
		c.deps.Transport = httpclient.New(cfg).Transport
	}
	p := proxy.New(cfg, c.deps)
	t.Cleanup(p.Drain) // before the store closes
	s.handler, s.store = p, st
	return s
}

// newCloud is a fake cloud outside any configuration.
func newCloud(t testing.TB, name string) *fakecloud.Cloud {
	c := fakecloud.New(fakecloud.Options{Name: name})
	t.Cleanup(c.Close)
	return c
}

func (s *setup) do(t testing.TB, method, path string, body io.Reader, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	rec, _ := serveWith(t, s.handler, method, path, body, headers...)
	return rec
}

func serveWith(t testing.TB, h http.Handler, method, path string, body io.Reader, headers ...string) (*httptest.ResponseRecorder, time.Duration) {
	t.Helper()
	req := httptest.NewRequest(method, path, body)
	req.Header.Set("X-Auth-Token", localToken)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, req)
	return rec, time.Since(start)
}

// imageID is written without dashes: mixmatch's broadcast asks the SPs for the id
// as it normalises it (see broadcast_ids_test.go), so only such an id is found by
// broadcast at a cloud as strict as a real one.
const imageID = "0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f"

func TestUnmappedGoesLocalWithTheUsersToken(t *testing.T) {
	s := newSetup(t)
	s.backends["default"].Add(fakecloud.Images, "", imageID, nil)
	s.backends["default"].SetHeader("Set-Cookie", "backend=secret")
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil, "X-Service-Token", "svc", "X-Custom", "kept")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "default"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	got := s.backends["default"].Received()
	if len(got) != 1 || got[0].Path != "/v2/images/"+imageID || got[0].Token != localToken ||
		got[0].ProxyList != "default" || got[0].ServiceToken != "svc" || got[0].Header.Get("X-Custom") != "kept" {
		t.Fatalf("local received %+v", got)
	}
	if rec.Header().Get("Set-Cookie") != "" || rec.Header().Get("X-Openstack-Request-Id") != "req-default" {
		t.Fatalf("response headers not filtered: %v", rec.Header())
	}
}

func TestServiceProviderHeader(t *testing.T) {
	s := newSetup(t)
	s.backends["remote1"].Add(fakecloud.Images, "", imageID, nil)
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil, "MM-SERVICE-PROVIDER", "remote1")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote1"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	got := s.backends["remote1"].Received()
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
	s := newSetup(t)
	s.store.Upsert(context.Background(), store.Mapping{ResourceType: "volumes", ResourceID: imageID, ResourceSP: "remote2", ProjectID: "feed"})
	s.backends["remote2"].Add(fakecloud.Volumes, "feed", imageID, nil)
	rec := s.do(t, "GET", "/volume/v3/8a1e/volumes/"+imageID, nil)
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	got := s.backends["remote2"].Received()
	if len(got) != 1 || got[0].Path != "/v3/feed/volumes/"+imageID || got[0].Token != "k2k-token-remote2" {
		t.Fatalf("remote2 received %+v", got)
	}
}

func TestBroadcastFindsAndLearns(t *testing.T) {
	s := newSetup(t, withBroadcast())
	s.backends["remote2"].Add(fakecloud.Images, "", imageID, nil)
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote2"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	m, err := s.store.Find(context.Background(), "images", imageID)
	if err != nil || m.ResourceSP != "remote2" {
		t.Fatalf("learned %+v, %v", m, err)
	}
	// The next call goes straight there.
	before := len(s.backends["default"].Received())
	s.do(t, "GET", "/image/v2/images/"+imageID, nil)
	if len(s.backends["default"].Received()) != before {
		t.Fatal("a mapped call still asked the local cloud")
	}
}

func TestBroadcastWithoutAWinner(t *testing.T) {
	s := newSetup(t, withBroadcast())
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), "not found at any service provider") {
		t.Fatalf("all 404: %d %s", rec.Code, rec.Body)
	}
	s.backends["remote1"].Close() // unreachable: 502 among 404s
	rec = s.do(t, "GET", "/image/v2/images/"+imageID, nil)
	var body struct{ Error struct{ Message string } }
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 500 || !strings.Contains(body.Error.Message, `remote1: 502`) || !strings.Contains(body.Error.Message, `default: 404`) {
		t.Fatalf("mixed: %d %s", rec.Code, rec.Body)
	}
}

// A 404 from the SP a row names is that SP's answer, and the client gets it: it
// may be another user's view or an id misspelt, so the row stays, and the other
// clouds are not asked. The row goes when its holder deletes the resource.
func TestAMappedSPsNotFoundPassesThroughAndTheRowStays(t *testing.T) {
	s := newSetup(t, withBroadcast())
	ctx := context.Background()
	s.store.Upsert(ctx, store.Mapping{ResourceType: "images", ResourceID: imageID, ResourceSP: "remote1", ProjectID: "p"})
	s.backends["remote2"].Add(fakecloud.Images, "", imageID, nil)
	if rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil); rec.Code != 404 {
		t.Fatalf("%d %s, want remote1's 404", rec.Code, rec.Body)
	}
	if m, _ := s.store.Find(ctx, "images", imageID); m.ResourceSP != "remote1" {
		t.Fatalf("mapping now %+v, want remote1 still", m)
	}
	if got := s.backends["remote2"].Received(); len(got) != 0 {
		t.Fatalf("remote2 was asked: %+v", got)
	}
	s.backends["remote1"].Add(fakecloud.Images, "", imageID, nil)
	if rec := s.do(t, "DELETE", "/image/v2/images/"+imageID, nil); rec.Code != 204 {
		t.Fatalf("DELETE: %d %s", rec.Code, rec.Body)
	}
	if _, err := s.store.Find(ctx, "images", imageID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after its holder deleted it: %v", err)
	}
}

func TestCreatesAreLearned(t *testing.T) {
	s := newSetup(t)
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
	if m, err := s.store.Find(context.Background(), "volumes", vol.Volume.ID); err != nil || m.ResourceSP != "remote1" || m.ProjectID != remoteProject("remote1") {
		t.Fatalf("volume create not learned: %+v %v", m, err)
	}
}

func TestInvalidTokenGoesNowhere(t *testing.T) {
	s := newSetup(t, withBroadcast())
	req := httptest.NewRequest("GET", "/image/v2/images/"+imageID, nil)
	req.Header.Set("X-Auth-Token", "forged")
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), `"code":401`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	for name, b := range s.backends {
		if len(b.Received()) != 0 {
			t.Fatalf("%s was called", name)
		}
	}
}

func TestProxyListSkipsTheMappedSP(t *testing.T) {
	s := newSetup(t)
	s.store.Upsert(context.Background(), store.Mapping{ResourceType: "images", ResourceID: imageID, ResourceSP: "remote1", ProjectID: "p"})
	s.backends["default"].Add(fakecloud.Images, "", imageID, nil)
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil, "MM-PROXY-LIST", "remote1")
	if rec.Code != 200 || len(s.backends["remote1"].Received()) != 0 {
		t.Fatalf("%d; remote1 called %d times", rec.Code, len(s.backends["remote1"].Received()))
	}
	if got := s.backends["default"].Received(); got[0].ProxyList != "remote1,default" {
		t.Fatalf("MM-PROXY-LIST sent %q", got[0].ProxyList)
	}
}

func TestUploadsStream(t *testing.T) {
	s := newSetup(t)
	s.backends["default"].Add(fakecloud.Images, "", imageID, nil)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	rec := s.do(t, "PUT", "/image/v2/images/"+imageID+"/file", bytes.NewReader(data), "Content-Type", "application/octet-stream")
	if rec.Code != 204 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if got := s.backends["default"].Received(); got[0].BodyHash != sha256.Sum256(data) {
		t.Fatal("the upload arrived altered")
	}
}

// fillLists gives each cloud three images, volumes and networks, interleaved in
// time across the clouds.
func fillLists(s *setup) {
	for i, name := range []string{"default", "remote1", "remote2"} {
		for j := 0; j < 3; j++ {
			id := fmt.Sprintf("%s%d", name, j)
			for _, kind := range []string{fakecloud.Images, fakecloud.Volumes, fakecloud.Networks} {
				s.backends[name].Add(kind, "", id, map[string]any{"name": "n-" + id,
					"created_at": fmt.Sprintf("2026-01-%02dT00:00:00Z", 28-j*3-i), "links": []any{}, "size": j})
			}
		}
	}
}

func newAggregatingSetup(t *testing.T) *setup {
	s := newSetup(t, withAggregation())
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
	for _, c := range s.backends["remote1"].Received() {
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
	if got := s.backends["remote2"].Received(); got[len(got)-1].Path != "/v3/"+remoteProject("remote2")+"/volumes/detail" {
		t.Fatalf("remote2 asked for %s", got[len(got)-1].Path)
	}
}

func TestAggregationSurvivesAFailingCloud(t *testing.T) {
	s := newAggregatingSetup(t)
	s.backends["remote1"].Close()
	rec := s.do(t, "GET", "/image/v2/images", nil)
	var body struct{ Images []map[string]any }
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &body) != nil || len(body.Images) != 6 ||
		rec.Header().Get(proxy.SkippedHeader) != "remote1" {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}

func TestAggregationRefusals(t *testing.T) {
	s := newAggregatingSetup(t)
	// A marker no cloud holds: TestAggregatedListOfAMissingMarker.
	for _, path := range []string{"/image/v2/images?limit=-1", "/image/v2/images?sort=name&sort_key=size"} {
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
	s := newSetup(t)
	b := s.backends["default"]
	b.Add(fakecloud.Images, "", imageID, nil)
	b.FailNext(2, http.StatusServiceUnavailable)
	if rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil); rec.Code != 200 || len(b.Received()) != 3 {
		t.Fatalf("GET after two 503s: %d after %d calls", rec.Code, len(b.Received()))
	}
	b.FailNext(1, http.StatusServiceUnavailable)
	before := len(b.Received())
	if rec := s.do(t, "POST", "/image/v2/images", strings.NewReader(`{}`)); rec.Code != 503 || len(b.Received()) != before+1 {
		t.Fatalf("POST: %d after %d calls", rec.Code, len(b.Received())-before)
	}
}

func TestResponseTimeoutIsA504(t *testing.T) {
	s := newSetup(t, withSPOption("response_timeout", "1"), withSPOption("retries", "0"))
	defer s.backends["default"].Hang()()
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 504 || !strings.Contains(rec.Body.String(), `"code":504`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// Image data keeps what resumed and ranged downloads need.
func TestDownloadHeaders(t *testing.T) {
	s := newSetup(t)
	b := s.backends["default"]
	data := []byte(strings.Repeat("0123456789", 100))
	b.Add(fakecloud.Images, "", imageID, nil)
	b.PutData(imageID, data)
	// Glance sends neither; a web server in front of it, or a later release, may.
	b.SetHeader("ETag", `"e1"`)
	b.SetHeader("OpenStack-API-Version", "image 2.5")
	rec := s.do(t, "GET", "/image/v2/images/"+imageID+"/file", nil, "Range", "bytes=10-19", "OpenStack-API-Version", "image 2.5")
	h := rec.Header()
	sum := md5.Sum(data)
	if rec.Code != 206 || h.Get("Content-Range") != "bytes 10-19/1000" || h.Get("Content-MD5") != hex.EncodeToString(sum[:]) ||
		h.Get("Content-Length") != "10" || rec.Body.String() != "0123456789" ||
		h.Get("OpenStack-API-Version") != "image 2.5" || h.Get("ETag") != `"e1"` {
		t.Fatalf("%d %v %q", rec.Code, h, rec.Body)
	}
	if got := b.Received(); got[0].Header.Get("Range") != "bytes=10-19" || got[0].Header.Get("OpenStack-API-Version") != "image 2.5" {
		t.Fatalf("the cloud received %v", got[0].Header)
	}
}

func TestMetricsMove(t *testing.T) {
	m := metrics.New()
	s := newSetup(t, withBroadcast(), withMetrics(m))
	s.backends["remote2"].Add(fakecloud.Images, "", imageID, nil)
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
	s := newSetup(t, withAggregation(), withSPOption("enabled_services", "image, volume, network"))
	fillLists(s)
	rec := s.do(t, "GET", "/network/v2.0/networks", nil)
	var body struct{ Networks []struct{ ID string } }
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &body) != nil || len(body.Networks) != 9 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	rec = s.do(t, "GET", "/network/v2.0/networks/remote11", nil, "MM-SERVICE-PROVIDER", "remote1")
	got := s.backends["remote1"].Received()
	if rec.Code != 200 || got[len(got)-1].Path != "/v2.0/networks/remote11" || got[len(got)-1].Token != "k2k-token-remote1" {
		t.Fatalf("%d %+v", rec.Code, got[len(got)-1])
	}
}

// Cinder answers every v3 call with the microversion it served, and clients check
// it against the one they asked for (Tempest fails a list without it); a merged
// list says what the SPs said.
func TestAggregatedListCarriesTheMicroversion(t *testing.T) {
	s := newAggregatingSetup(t)
	for _, b := range s.backends {
		b.SetHeader("OpenStack-API-Version", "volume 3.14")
		b.SetHeader("Vary", "OpenStack-API-Version")
	}
	for _, path := range []string{"/volume/v3/8a1e/volumes", "/volume/v3/8a1e/volumes/detail"} {
		rec := s.do(t, "GET", path, nil, "OpenStack-API-Version", "volume 3.14")
		if rec.Code != 200 || rec.Header().Get("OpenStack-API-Version") != "volume 3.14" ||
			rec.Header().Get("Vary") != "OpenStack-API-Version" {
			t.Fatalf("%s: %d %v", path, rec.Code, rec.Header())
		}
	}
}

// Cinder's summary of a snapshot is most of it (cinder/api/views/snapshots.py),
// unlike a volume's: only what the detail adds goes.
func TestAggregatedSnapshotSummary(t *testing.T) {
	s := newAggregatingSetup(t)
	for _, name := range []string{"default", "remote1"} {
		s.backends[name].Add(fakecloud.Snapshots, "", name+"-snap", map[string]any{"name": "s", "volume_id": name + "0",
			"group_snapshot_id": nil, "user_id": "u", "consumes_quota": true})
	}
	rec := s.do(t, "GET", "/volume/v3/8a1e/snapshots", nil)
	var body struct{ Snapshots []map[string]any }
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &body) != nil || len(body.Snapshots) != 2 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	want := []string{"created_at", "description", "id", "metadata", "name", "size", "status", "updated_at", "volume_id"}
	for _, it := range body.Snapshots {
		if keys := slices.Sorted(maps.Keys(it)); !slices.Equal(keys, want) {
			t.Fatalf("summary item has %v, want %v", keys, want)
		}
	}
}

// A plain marker no cloud holds is refused as the service refuses it: Glance with
// a 400, Cinder with a 404 (Tempest expects each), in the service's own words.
func TestAggregatedListOfAMissingMarker(t *testing.T) {
	s := newAggregatingSetup(t)
	for _, tc := range []struct {
		path string
		code int
		text string
	}{
		{"/image/v2/images?marker=nothing-here", 400, "No image found with ID nothing-here"},
		{"/volume/v3/8a1e/volumes?marker=nothing-here", 404, "nothing-here could not be found"},
		{"/volume/v3/8a1e/snapshots/detail?marker=nothing-here", 404, "nothing-here could not be found"},
	} {
		if rec := s.do(t, "GET", tc.path, nil); rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.text) {
			t.Errorf("%s: %d %s", tc.path, rec.Code, rec.Body)
		}
	}
}

// The empty page after the last full one asks no SP, yet says its microversion as
// Cinder would: the one asked for, else 3.0.
func TestTheEmptyLastPageCarriesTheMicroversion(t *testing.T) {
	s := newAggregatingSetup(t)
	for _, b := range s.backends {
		b.SetHeader("OpenStack-API-Version", "volume 3.14")
	}
	for _, tc := range []struct{ asked, want string }{{"volume 3.14", "volume 3.14"}, {"", "volume 3.0"}} {
		path, pages := "/volume/v3/8a1e/volumes?limit=3", 0
		for ; path != ""; pages++ {
			var headers []string
			if tc.asked != "" {
				headers = []string{"OpenStack-API-Version", tc.asked}
			}
			rec := s.do(t, "GET", path, nil, headers...)
			var body struct {
				Volumes      []map[string]any
				VolumesLinks []struct{ Href, Rel string } `json:"volumes_links"`
			}
			decodeBody(t, rec, &body)
			path = ""
			if len(body.VolumesLinks) > 0 {
				path = strings.TrimPrefix(body.VolumesLinks[0].Href, mixmatchURL)
			}
			if len(body.Volumes) == 0 && tc.asked == "" {
				if got := rec.Header().Get("OpenStack-API-Version"); got != tc.want {
					t.Errorf("asked %q: the empty page says %q", tc.asked, got)
				}
			} else if got := rec.Header().Get("OpenStack-API-Version"); got != "volume 3.14" {
				t.Errorf("asked %q: page %d says %q", tc.asked, pages, got)
			}
			if rec.Header().Get("Vary") != "OpenStack-API-Version" && len(body.Volumes) == 0 {
				t.Errorf("asked %q: the empty page has no Vary", tc.asked)
			}
		}
		if pages != 4 {
			t.Fatalf("asked %q: %d pages of 3 for 9 volumes, want 3 full and an empty one", tc.asked, pages)
		}
	}
}
