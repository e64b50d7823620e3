package extend

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"mixmatch/app/config"
	"mixmatch/app/reqinfo"
)

type seen struct {
	sp, body, v1name string
	length           int64
	// named: the proxy is told the name chose the SP, not the client.
	named bool
}

func router(t *testing.T) (http.Handler, *seen) {
	cfg, err := config.Load(strings.NewReader("[DEFAULT]\nservice_providers = default, remote1, netonly\n"+
		"[sp_default]\nimage_endpoint = http://a:1\nvolume_endpoint = http://a:2\n"+
		"[sp_remote1]\nimage_endpoint = http://b:1\nvolume_endpoint = http://b:2\n"+
		"[sp_netonly]\nenabled_services = network\nnetwork_endpoint = http://c:1\n"), "t.conf")
	if err != nil {
		t.Fatal(err)
	}
	got := &seen{}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*got = seen{sp: r.Header.Get("MM-SERVICE-PROVIDER"), body: string(b), v1name: r.Header.Get("X-Image-Meta-Name"),
			length: r.ContentLength, named: reqinfo.IsRoutedByName(r)}
		if cl := r.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(b)) {
			t.Errorf("Content-Length %s for %d bytes", cl, len(b))
		}
		w.WriteHeader(http.StatusCreated)
	})
	r := mux.NewRouter()
	Register(r, cfg, next, Deps{})
	r.NotFoundHandler = next
	return r, got
}

func post(h http.Handler, path, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestNameRouting(t *testing.T) {
	h, got := router(t)
	post(h, "/image/v2/images", `{"name": "cirros@remote1", "disk_format": "qcow2"}`)
	var img map[string]string
	if json.Unmarshal([]byte(got.body), &img) != nil || got.sp != "remote1" || img["name"] != "cirros" ||
		img["disk_format"] != "qcow2" || got.length != int64(len(got.body)) {
		t.Fatalf("image: %+v", got)
	}
	post(h, "/volume/v3/8a1e/volumes", `{"volume": {"name": "data@remote1", "size": 10}}`)
	var vol struct {
		Volume struct {
			Name string
			Size int
		}
	}
	if json.Unmarshal([]byte(got.body), &vol) != nil || got.sp != "remote1" || !got.named || vol.Volume.Name != "data" || vol.Volume.Size != 10 {
		t.Fatalf("volume: %+v", got)
	}
	for _, body := range []string{`{"name": "me@example.org"}`, `{"name": "x@remote9"}`, `{"name": "x@"}`, `{"name": "plain"}`} {
		post(h, "/image/v2/images", body)
		if got.sp != "" || got.named || got.body != body {
			t.Fatalf("%s was rerouted: %+v", body, got)
		}
	}
	post(h, "/image/v2/images", `{"name": "cirros@remote1"}`, "MM-SERVICE-PROVIDER", "default")
	if got.sp != "default" || got.named || !strings.Contains(got.body, "cirros@remote1") {
		t.Fatalf("MM-SERVICE-PROVIDER overridden: %+v", got)
	}
	req := httptest.NewRequest("POST", "/image/v1/images", strings.NewReader("image bytes"))
	req.Header.Set("X-Image-Meta-Name", "cirros@remote1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got.sp != "remote1" || got.v1name != "cirros" || got.body != "image bytes" {
		t.Fatalf("v1: %+v", got)
	}
}

// A name ending in an SP that does not serve the service is no name with an @: the
// user meant that cloud, and the resource must not land in another.
func TestNameRoutingToAnSPWithoutTheService(t *testing.T) {
	h, got := router(t)
	*got = seen{sp: "untouched"}
	for _, rec := range []*httptest.ResponseRecorder{
		post(h, "/image/v2/images", `{"name": "x@netonly"}`),
		post(h, "/volume/v3/8a1e/volumes", `{"volume": {"name": "x@netonly", "size": 1}}`),
		post(h, "/image/v1/images", "data", "Content-Type", "application/octet-stream", "X-Image-Meta-Name", "x@netonly"),
	} {
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), `"code":400`) || !strings.Contains(rec.Body.String(), "netonly") {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	}
	if got.sp != "untouched" {
		t.Fatalf("the create went on: %+v", got)
	}
}

func TestNameRoutingRefusesBadBodies(t *testing.T) {
	h, _ := router(t)
	if rec := post(h, "/image/v2/images", `{"name": `); rec.Code != 400 || !strings.Contains(rec.Body.String(), `"code":400`) {
		t.Fatalf("bad JSON: %d %s", rec.Code, rec.Body)
	}
	big := `{"name": "` + strings.Repeat("x", 1<<20) + `"}`
	if rec := post(h, "/image/v2/images", big); rec.Code != 413 {
		t.Fatalf("too big: %d", rec.Code)
	}
}
