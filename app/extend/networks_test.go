package extend

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/mux"

	"mixmatch/app/config"
	"mixmatch/app/k2k"
	"mixmatch/app/keystone"
	"mixmatch/app/tlsclient/tlstest"
)

type fakeLocal map[string]*keystone.Token

func (f fakeLocal) Validate(_ context.Context, tok string) (*keystone.Token, error) {
	if u, ok := f[tok]; ok {
		return u, nil
	}
	return nil, keystone.ErrInvalidToken
}
func (fakeLocal) ServiceToken(context.Context) (string, error) { return "svc-tok", nil }

// fakeTokens: the user has projects rp1 and rp2 at every SP; tokens name their owner.
type fakeTokens struct{}

func (fakeTokens) Projects(context.Context, *config.SP, *keystone.Token, string) ([]keystone.Project, error) {
	return []keystone.Project{{ID: "rp1"}, {ID: "rp2"}}, nil
}
func (fakeTokens) Token(_ context.Context, _ *config.SP, u *keystone.Token, _ string, project string) (k2k.Scoped, error) {
	if project == "" {
		project = "rp1"
	}
	return k2k.Scoped{Token: "k2k-" + u.User.Name + "-" + project, ProjectID: project}, nil
}

type neutron struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tokens []string
	posted map[string]any
}

// newNeutron serves h with serve (httptest.NewServer, or a TLS server).
func newNeutron(t *testing.T, serve func(http.Handler) *httptest.Server, h func(n *neutron, w http.ResponseWriter, r *http.Request)) *neutron {
	n := &neutron{}
	n.srv = serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		n.tokens = append(n.tokens, r.Header.Get("X-Auth-Token"))
		n.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		h(n, w, r)
	}))
	t.Cleanup(n.srv.Close)
	return n
}

func extendedSetup(t *testing.T) (http.Handler, *neutron, *neutron) {
	return extendedSetupOn(t, httptest.NewServer, "")
}

// extendedSetupOn serves remote1's Neutron with serve and adds remoteOptions to
// [sp_remote1].
func extendedSetupOn(t *testing.T, serve func(http.Handler) *httptest.Server, remoteOptions string) (http.Handler, *neutron, *neutron) {
	remote := newNeutron(t, serve, func(n *neutron, w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("X-Auth-Token")
		switch r.URL.Path {
		case "/v2.0/networks/net1":
			switch tok {
			case "k2k-alice-rp2":
				io.WriteString(w, `{"network": {"id": "net1", "name": "shared"}}`)
			case "k2k-mixmatch-rp1":
				io.WriteString(w, `{"network": {"id": "net1", "name": "shared", "provider:segmentation_id": 4242}}`)
			default:
				w.WriteHeader(404)
			}
		case "/v2.0/networks/broken":
			w.WriteHeader(500)
		default:
			w.WriteHeader(404)
		}
	})
	local := newNeutron(t, httptest.NewServer, func(n *neutron, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Auth-Token") != "svc-tok" {
			w.WriteHeader(401)
			return
		}
		switch {
		case r.Method == "GET" && r.URL.Path == "/v2.0/networks":
			if r.URL.Query().Get("name") == "taken" && r.URL.Query().Get("project_id") == "lp1" {
				io.WriteString(w, `{"networks": [{"id": "x"}]}`)
				return
			}
			io.WriteString(w, `{"networks": []}`)
		case r.Method == "POST" && r.URL.Path == "/v2.0/networks":
			var body map[string]any
			json.NewDecoder(r.Body).Decode(&body)
			n.mu.Lock()
			n.posted = body["network"].(map[string]any)
			n.mu.Unlock()
			w.WriteHeader(201)
			json.NewEncoder(w).Encode(map[string]any{"network": map[string]any{"id": "new", "name": n.posted["name"],
				"provider:segmentation_id": n.posted["provider:segmentation_id"]}})
		}
	})
	cfg, err := config.Load(strings.NewReader(fmt.Sprintf("[DEFAULT]\nservice_providers = default, remote1, noneutron\n"+
		"[sp_default]\nenabled_services = network\nnetwork_endpoint = %s\n"+
		"[sp_remote1]\nenabled_services = network\nnetwork_endpoint = %s\n%s"+
		"[sp_noneutron]\nimage_endpoint = http://a:1\nvolume_endpoint = http://a:2\n", local.srv.URL, remote.srv.URL, remoteOptions)), "t.conf")
	if err != nil {
		t.Fatal(err)
	}
	alice := &keystone.Token{}
	alice.User.Name, alice.Project.ID = "alice", "lp1"
	admin := &keystone.Token{}
	admin.User.Name, admin.Project.ID = "mixmatch", "adminproject"
	r := mux.NewRouter()
	Register(r, cfg, http.NotFoundHandler(), Deps{Local: fakeLocal{"user-tok": alice, "svc-tok": admin}, Tokens: fakeTokens{}})
	return r, remote, local
}

func postExtended(h http.Handler, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/network/v2.0/networks/extended", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestNetworksExtended(t *testing.T) {
	h, remote, local := extendedSetup(t)
	rec := postExtended(h, "user-tok", `{"network": {"existing_net_id": "net1", "existing_net_sp": "remote1", "name": "stretched"}}`)
	if rec.Code != 201 || !strings.Contains(rec.Body.String(), `"id":"new"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	p := local.posted
	if p["provider:network_type"] != "vxlan" || p["provider:segmentation_id"] != float64(4242) || p["project_id"] != "lp1" || p["name"] != "stretched" {
		t.Fatalf("local Neutron got %v", p)
	}
	for _, tok := range local.tokens {
		if tok != "svc-tok" {
			t.Fatalf("local Neutron got token %q", tok)
		}
	}
	for _, tok := range remote.tokens {
		if !strings.HasPrefix(tok, "k2k-") {
			t.Fatalf("remote Neutron got token %q", tok)
		}
	}
}

func TestNetworksExtendedRefusals(t *testing.T) {
	h, _, _ := extendedSetup(t)
	for _, tc := range []struct {
		token, body string
		status      int
	}{
		{"user-tok", `{"network": {"existing_net_sp": "remote1"}}`, 400},
		{"user-tok", `{"network": {"existing_net_id": "net1"}}`, 400},
		{"user-tok", `{"net`, 400},
		{"", `{"network": {"existing_net_id": "net1", "existing_net_sp": "remote1"}}`, 401},
		{"forged", `{"network": {"existing_net_id": "net1", "existing_net_sp": "remote1"}}`, 401},
		{"user-tok", `{"network": {"existing_net_id": "net1", "existing_net_sp": "remote9"}}`, 422},
		{"user-tok", `{"network": {"existing_net_id": "net1", "existing_net_sp": "noneutron"}}`, 422},
		{"user-tok", `{"network": {"existing_net_id": "net1", "existing_net_sp": "default"}}`, 422},
		{"user-tok", `{"network": {"existing_net_id": "other", "existing_net_sp": "remote1"}}`, 422},
		{"user-tok", `{"network": {"existing_net_id": "net1", "existing_net_sp": "remote1", "name": "taken"}}`, 409},
		{"user-tok", `{"network": {"existing_net_id": "broken", "existing_net_sp": "remote1"}}`, 503},
	} {
		rec := postExtended(h, tc.token, tc.body)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), fmt.Sprintf(`"code":%d`, tc.status)) {
			t.Errorf("%s %s: %d %s, want %d", tc.token, tc.body, rec.Code, rec.Body, tc.status)
		}
	}
}

// A remote Neutron behind TLS with a private CA and client certificates is reached
// with [sp_remote1]'s cafile, certfile and keyfile, and only with them.
func TestNetworksExtendedOverTLS(t *testing.T) {
	p := tlstest.New(t)
	serve := func(h http.Handler) *httptest.Server { return p.NewServer(t, h, true) }
	body := `{"network": {"existing_net_id": "net1", "existing_net_sp": "remote1", "name": "stretched"}}`
	for _, tc := range []struct {
		name, options string
		status        int
	}{
		{"the SP's CA bundle and client certificate", "cafile = " + p.CAFile + "\ncertfile = " + p.CertFile + "\nkeyfile = " + p.KeyFile + "\n", 201},
		{"no CA bundle", "certfile = " + p.CertFile + "\nkeyfile = " + p.KeyFile + "\n", 503},
		{"no client certificate", "cafile = " + p.CAFile + "\n", 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, remote, _ := extendedSetupOn(t, serve, tc.options)
			rec := postExtended(h, "user-tok", body)
			if rec.Code != tc.status {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tc.status)
			}
			if tc.status != 201 && len(remote.tokens) != 0 {
				t.Fatalf("the remote Neutron answered without the TLS options: %v", remote.tokens)
			}
		})
	}
}
