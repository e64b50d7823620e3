package httpclient_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mixmatch/app/config"
	"mixmatch/app/httpclient"
	"mixmatch/app/tlsclient/tlstest"
)

// canaryHits counts what reached the proxy the environment names.
var canaryHits atomic.Int64

// TestMain points the environment's proxy at a canary before anything reads it:
// net/http reads it once per process, so a test setting it later could pass even
// with a client that honours it.
func TestMain(m *testing.M) {
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		canaryHits.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}))
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		os.Setenv(v, canary.URL)
	}
	os.Unsetenv("NO_PROXY")
	os.Unsetenv("no_proxy")
	code := m.Run()
	canary.Close()
	if code == 0 && canaryHits.Load() != 0 {
		fmt.Fprintf(os.Stderr, "the environment's proxy was contacted %d times\n", canaryHits.Load())
		code = 1
	}
	os.Exit(code)
}

func load(t *testing.T, conf string) *config.Config {
	t.Helper()
	cfg, err := config.Load(strings.NewReader(conf), "t.conf")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// each is every client the factory gives for the remote SP and the local Keystone.
func each(c *httpclient.Clients, sp *config.SP) map[string]*http.Client {
	return map[string]*http.Client{"Transport": {Transport: c.Transport(sp)}, "Services": c.Services(sp),
		"Keystone": c.Keystone(sp), "LocalKeystone": c.LocalKeystone()}
}

// No client sends anything through HTTP(S)_PROXY: the tokens it carries are for the
// configured endpoints only. Net/http never proxies loopback addresses, so the
// target is a name that cannot resolve (RFC 6761): with the proxy, the canary would
// answer.
func TestNoClientUsesTheEnvironmentsProxy(t *testing.T) {
	cfg := load(t, "[DEFAULT]\nservice_providers = default, remote1\n"+
		"[sp_default]\nimage_endpoint = http://a:1\nvolume_endpoint = http://a:2\nconnect_timeout = 2\nretries = 0\n"+
		"[sp_remote1]\nimage_endpoint = http://a:1\nvolume_endpoint = http://a:2\nconnect_timeout = 2\nretries = 0\n")
	sp, _ := cfg.SP("remote1")
	for name, client := range each(httpclient.New(cfg), sp) {
		for _, u := range []string{"http://keystone.mixmatch.invalid/v3", "https://keystone.mixmatch.invalid/v3"} {
			resp, err := client.Get(u)
			if err == nil {
				resp.Body.Close()
				t.Errorf("%s: GET %s answered %d", name, u, resp.StatusCode)
			}
		}
	}
	if n := canaryHits.Load(); n != 0 {
		t.Fatalf("the environment's proxy was contacted %d times", n)
	}
}

// Each client presents and checks the TLS options of its own cloud: [auth]'s for the
// local Keystone, [sp_*]'s for that SP's Keystone and services, and no other's.
func TestEachCloudsTLSOptions(t *testing.T) {
	p := tlstest.New(t)
	srv := p.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}), true)
	tlsOptions := "cafile = " + p.CAFile + "\ncertfile = " + p.CertFile + "\nkeyfile = " + p.KeyFile + "\n"
	endpoints := "image_endpoint = http://a:1\nvolume_endpoint = http://a:2\nretries = 0\n"
	cfg := load(t, "[DEFAULT]\nservice_providers = default, remote1, remote2\n[auth]\n"+tlsOptions+
		"[sp_default]\n"+endpoints+"[sp_remote1]\n"+endpoints+tlsOptions+"[sp_remote2]\n"+endpoints)
	c := httpclient.New(cfg)
	for _, name := range []string{"default", "remote1", "remote2"} {
		sp, _ := cfg.SP(name)
		for kind, client := range each(c, sp) {
			resp, err := client.Get(srv.URL)
			want := name == "remote1" || kind == "LocalKeystone"
			if err != nil {
				if want {
					t.Errorf("%s %s: %v", name, kind, err)
				}
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !want || string(body) != "mixmatch" {
				t.Errorf("%s %s: %d %q with another cloud's TLS options", name, kind, resp.StatusCode, body)
			}
		}
	}
}

// The proxy and the extensions share an SP's max_concurrent_requests through one
// Clients; its Keystone is not bounded by it.
func TestOneBoundPerSP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "" {
			t.Errorf("asked for %s: bodies are passed through as they come", r.Header.Get("Accept-Encoding"))
		}
		io.WriteString(w, "{}")
	}))
	defer srv.Close()
	cfg := load(t, "[DEFAULT]\nservice_providers = default\n[sp_default]\nimage_endpoint = "+srv.URL+
		"\nvolume_endpoint = "+srv.URL+"\nmax_concurrent_requests = 1\nconnect_timeout = 1\n")
	sp, _ := cfg.SP("default")
	c := httpclient.New(cfg)
	held, err := (&http.Client{Transport: c.Transport(sp)}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := c.Keystone(sp).Get(srv.URL); err != nil {
		t.Fatalf("the SP's Keystone with its services' slots taken: %v", err)
	} else {
		resp.Body.Close()
	}
	start := time.Now()
	if _, err := c.Services(sp).Get(srv.URL); !errors.Is(err, httpclient.ErrBusy) {
		t.Fatalf("a second call while the first one's body is open: %v, want ErrBusy", err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("refused after %s, before connect_timeout", waited)
	}
	held.Body.Close()
	resp, err := c.Services(sp).Get(srv.URL)
	if err != nil {
		t.Fatalf("after the first body was closed: %v", err)
	}
	resp.Body.Close()
}

// No client follows a redirect: the token and a POST's body stay with the cloud
// they were meant for, and the 3xx itself comes back.
func TestNoClientFollowsARedirect(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/v3/users", http.StatusTemporaryRedirect)
	}))
	defer redirecting.Close()
	cfg := load(t, "[DEFAULT]\nservice_providers = default, remote1\n"+
		"[sp_default]\nimage_endpoint = http://a:1\nvolume_endpoint = http://a:2\n"+
		"[sp_remote1]\nimage_endpoint = http://a:1\nvolume_endpoint = http://a:2\n")
	sp, _ := cfg.SP("remote1")
	for name, client := range each(httpclient.New(cfg), sp) {
		if name == "Transport" {
			continue // a round tripper follows nothing; the client wrapping it here would
		}
		req, _ := http.NewRequest(http.MethodPost, redirecting.URL+"/v3/auth/tokens", strings.NewReader(`{"auth": {}}`))
		req.Header.Set("X-Auth-Token", "secret")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTemporaryRedirect {
			t.Errorf("%s: %d, want the 307 itself", name, resp.StatusCode)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("a redirect was followed %d times", n)
	}
}
