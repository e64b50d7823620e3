package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// upstreamSample is etc/mixmatch.conf.sample of the Python mixmatch, as operators have
// it: quoted values, caching in [auth], oslo.cache backend names, a remote SP.
const upstreamSample = `
[DEFAULT]

aggregation=False

search_by_broadcast=True

service_providers=default, cornmeal-sp

image_api_versions = v2.3, v2.2, v2.1, v2.0, v1.1, v1.0
volume_api_versions = v3.0, v2.0, v1.0

debug=False


[database]

connection="sqlite:////home/ubuntu/proxy.db"


[auth]

auth_url="http://127.0.0.1:5000/v3"

username="admin"

user_domain_id="default"

password="nomoresecrete"

project_name="admin"

project_domain_id="default"

caching=True


[cache]

enabled=True
backend=dogpile.cache.memory


[sp_default]

sp_name=default

messagebus="rabbit://stackrabbit:stackqueue@localhost"

auth_url="http://127.0.0.1:5000/v3"

image_endpoint="http://localhost:9292"

volume_endpoint="http://localhost:8776"

enabled_services=image, volume


[sp_cornmeal-sp]

sp_name=cornmeal-sp

messagebus="rabbit://stackrabbit:stackqueue@192.168.0.141"

auth_url="http://192.168.0.141:5000/v3"

image_endpoint="http://192.168.0.141:9292"

volume_endpoint="http://192.168.0.141:8776"

enabled_services=image, volume
`

func TestUpstreamSampleLoads(t *testing.T) {
	c, err := Load(strings.NewReader(upstreamSample), "mixmatch.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !c.SearchByBroadcast || c.Aggregation || c.Debug {
		t.Errorf("booleans: broadcast=%v aggregation=%v debug=%v", c.SearchByBroadcast, c.Aggregation, c.Debug)
	}
	if got := strings.Join(c.ServiceProviders, "|"); got != "default|cornmeal-sp" {
		t.Errorf("service_providers = %q", got)
	}
	if c.Database.Connection != "sqlite:////home/ubuntu/proxy.db" {
		t.Errorf("quotes not removed: %q", c.Database.Connection)
	}
	if c.Auth.Password != "nomoresecrete" || c.Auth.UserDomainID != "default" || !c.Auth.Caching || c.Auth.CacheTime != 10*time.Minute {
		t.Errorf("auth = %+v", c.Auth)
	}
	if c.Cache.Backend != "memory" {
		t.Errorf("backend = %q", c.Cache.Backend)
	}
	remote, ok := c.SP("cornmeal-sp")
	if !ok || remote.SPName != "cornmeal-sp" || remote.Endpoint("image") != "http://192.168.0.141:9292" ||
		remote.Endpoint("network") != "" || remote.Local() {
		t.Fatalf("remote SP = %+v", remote)
	}
	if bus := remote.Messagebus; bus == nil || len(bus.Hosts) != 1 || bus.Hosts[0].Host != "192.168.0.141" ||
		bus.Hosts[0].Port != 5672 || bus.Hosts[0].User != "stackrabbit" || bus.VHost != "/" {
		t.Fatalf("messagebus = %+v", remote.Messagebus)
	}
	if local, _ := c.SP("default"); !local.Local() {
		t.Fatal("default is not local")
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
}

// Every kind of mistake is reported with the file, section and key to fix.
func TestMistakesNameFileSectionAndKey(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "[DEFAULT]\nservice_providers = default, remote1\n" +
		"[sp_default]\nimage_endpoint = http://127.0.0.1:9292\nvolume_endpoint = http://127.0.0.1:8776\n" +
		"[sp_remote1]\nimage_endpoint = http://10.0.0.2:9292\nvolume_endpoint = http://10.0.0.2:8776\n"
	for _, tc := range []struct {
		name     string
		edit     func(string) string
		want     string
		wantText string
	}{
		{"listed SP without its section",
			func(s string) string { return strings.Replace(s, "default, remote1", "default, remote1, remote2", 1) },
			"[DEFAULT] service_providers", `no [sp_remote2] section`},
		{"enabled service without an endpoint",
			func(s string) string { return strings.Replace(s, "volume_endpoint = http://10.0.0.2:8776\n", "", 1) },
			"[sp_remote1] volume_endpoint", "enabled_services includes volume"},
		{"network enabled without its endpoint",
			func(s string) string { return s + "enabled_services = image, volume, network\n" },
			"[sp_remote1] network_endpoint", "enabled_services includes network"},
		{"unparsable URL",
			func(s string) string { return strings.Replace(s, "http://10.0.0.2:9292", "10.0.0.2:9292", 1) },
			"[sp_remote1] image_endpoint", "not an http:// or https:// URL"},
		{"URL without a host",
			func(s string) string { return s + "[auth]\nauth_url = http:///v3\n" },
			"[auth] auth_url", "has no host"},
		{"unparsable bool",
			func(s string) string { return strings.Replace(s, "[DEFAULT]\n", "[DEFAULT]\naggregation = maybe\n", 1) },
			"[DEFAULT] aggregation", `"maybe" is not a boolean`},
		{"unknown service token policy",
			func(s string) string { return s + "service_token = pass\n" },
			"[sp_remote1] service_token", `"pass" is not one of k2k, none`},
		{"the local cloud's service token exchanged",
			func(s string) string {
				return strings.Replace(s, "[sp_remote1]\n", "service_token = k2k\n[sp_remote1]\n", 1)
			},
			"[sp_default] service_token", "k2k is for remote clouds"},
		{"unknown service",
			func(s string) string { return s + "enabled_services = image, compute\n" },
			"[sp_remote1] enabled_services", `unknown service "compute"`},
		{"no SP named default",
			func(s string) string {
				return strings.Replace(strings.Replace(s, "default, remote1", "local, remote1", 1), "[sp_default]", "[sp_local]", 1)
			},
			"[DEFAULT] service_providers", `must list "default"`},
		{"bad database URL",
			func(s string) string { return s + "[database]\nconnection = oracle://x/y\n" },
			"[database] connection", "unsupported database engine"},
		{"bad messagebus",
			func(s string) string { return s + "messagebus = http://rabbit:5672/\n" },
			"[sp_remote1] messagebus", "rabbit://"},
		{"bad integer",
			func(s string) string { return s + "[auth]\ncache_time = ten\n" },
			"[auth] cache_time", "not a whole number"},
		{"unknown cache backend",
			func(s string) string { return s + "[cache]\nbackend = redis\n" },
			"[cache] backend", `"redis" is not one of`},
		{"both domain id and name",
			func(s string) string { return s + "[auth]\nuser_domain_name = Default\nuser_domain_id = default\n" },
			"[auth] user_domain_name", "not both"},
		{"SP listed twice",
			func(s string) string { return strings.Replace(s, "default, remote1", "default, remote1, remote1", 1) },
			"[DEFAULT] service_providers", `lists "remote1" twice`},
		{"two SPs with one sp_name",
			func(s string) string { return s + "sp_name = default\n" },
			"[sp_remote1] sp_name", `also the sp_name of [sp_default]`},
		{"bad API version",
			func(s string) string {
				return strings.Replace(s, "[DEFAULT]\n", "[DEFAULT]\nimage_api_versions = 2\n", 1)
			},
			"[DEFAULT] image_api_versions", "not an API version"},
		{"bad memcache server",
			func(s string) string { return s + "[cache]\nbackend = memcached\nmemcache_servers = localhost\n" },
			"[cache] memcache_servers", "not HOST:PORT"},
		{"request_timeout of zero",
			func(s string) string { return strings.Replace(s, "[DEFAULT]\n", "[DEFAULT]\nrequest_timeout = 0\n", 1) },
			"[DEFAULT] request_timeout", "0 is less than 1"},
		{"tiny header limit",
			func(s string) string {
				return strings.Replace(s, "[DEFAULT]\n", "[DEFAULT]\nmax_request_header_size = 10\n", 1)
			},
			"[DEFAULT] max_request_header_size", "10 is less than 1024"},
		{"negative concurrency limit",
			func(s string) string { return s + "max_concurrent_requests = -1\n" },
			"[sp_remote1] max_concurrent_requests", "-1 is less than 0"},
		{"missing CA bundle",
			func(s string) string { return s + "cafile = /nonexistent/ca.pem\n" },
			"[sp_remote1] cafile", "cannot read /nonexistent/ca.pem"},
		{"CA bundle without a certificate",
			func(s string) string { return s + "cafile = " + notPEM + "\n" },
			"[sp_remote1] cafile", "holds no PEM certificate"},
		{"client certificate without its key",
			func(s string) string { return s + "certfile = " + notPEM + "\n" },
			"[sp_remote1] keyfile", "is required with certfile"},
		{"client key without its certificate",
			func(s string) string { return s + "keyfile = " + notPEM + "\n" },
			"[sp_remote1] certfile", "is required with keyfile"},
		{"unreadable client certificate",
			func(s string) string { return s + "certfile = " + notPEM + "\nkeyfile = " + notPEM + "\n" },
			"[sp_remote1] certfile", "with keyfile"},
		{"Keystone CA bundle missing",
			func(s string) string { return s + "[auth]\ncafile = /nonexistent/ca.pem\n" },
			"[auth] cafile", "cannot read /nonexistent/ca.pem"},
		{"memcached without a secret",
			func(s string) string { return s + "[cache]\nbackend = oslo_cache.memcache_pool\n" },
			"[cache] memcache_secret_key", "required with backend memcached"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Load(strings.NewReader(base), "/etc/mixmatch/mixmatch.conf"); err != nil {
				t.Fatalf("the base configuration is invalid: %v", err)
			}
			_, err := Load(strings.NewReader(tc.edit(base)), "/etc/mixmatch/mixmatch.conf")
			if !IsConfigError(err) {
				t.Fatalf("got %v, want a configuration error", err)
			}
			want := "/etc/mixmatch/mixmatch.conf " + tc.want + ": "
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("error:\n%v\nwant a line with %q and %q", err, want, tc.wantText)
			}
		})
	}
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	_, err := Load(strings.NewReader("[DEFAULT]\nservice_providers = default\naggregation = perhaps\n"+
		"[sp_default]\nimage_endpoint = ftp://x\n"), "m.conf")
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 3 {
		t.Fatalf("got %v, want 3 problems (aggregation, image_endpoint, volume_endpoint)", err)
	}
}

func TestPasswordsKeepHashesAndQuotes(t *testing.T) {
	c, err := Load(strings.NewReader(`[DEFAULT]
service_providers = default
[auth]
password = "se#cret;x"
[sp_default]
image_endpoint = http://127.0.0.1:9292/
volume_endpoint = http://127.0.0.1:8776
`), "m.conf")
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.Password != "se#cret;x" {
		t.Fatalf("password = %q", c.Auth.Password)
	}
	// A trailing slash is dropped so paths join cleanly.
	if sp, _ := c.SP("default"); sp.Endpoints["image"] != "http://127.0.0.1:9292" {
		t.Fatalf("image_endpoint = %q", sp.Endpoints["image"])
	}
}

func TestBooleansAndLists(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{{"True", true}, {"true", true}, {"yes", true}, {"1", true}, {"False", false}, {"no", false}, {"0", false}, {"off", false}} {
		c, err := Load(strings.NewReader("[DEFAULT]\naggregation = "+tc.in+"\n"+
			"[sp_default]\nimage_endpoint = http://a:1\nvolume_endpoint=http://a:2\n"+
			"enabled_services =image,volume , network\nnetwork_endpoint=http://a:3\n"), "m.conf")
		if err != nil {
			t.Fatal(err)
		}
		if c.Aggregation != tc.want {
			t.Errorf("aggregation = %s gave %v", tc.in, c.Aggregation)
		}
		if sp, _ := c.SP("default"); strings.Join(sp.EnabledServices, "|") != "image|volume|network" ||
			sp.ServiceToken != ServiceTokenNone {
			t.Errorf("enabled_services = %q, service_token = %q", sp.EnabledServices, sp.ServiceToken)
		}
	}
}

func TestLegacyCacheOptionsInDefault(t *testing.T) {
	c, err := Load(strings.NewReader("[DEFAULT]\ncaching = false\ncache_time = 30\n"+
		"[sp_default]\nimage_endpoint = http://a:1\nvolume_endpoint=http://a:2\n"), "m.conf")
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.Caching || c.Auth.CacheTime != 30*time.Second {
		t.Fatalf("caching=%v cache_time=%v", c.Auth.Caching, c.Auth.CacheTime)
	}
}

func TestWarnings(t *testing.T) {
	c, err := Load(strings.NewReader("[DEFAULT]\nlog_file = /var/log/mm.log\n"+
		"[sp_default]\nimage_endpoint = http://a:1\nvolume_endpoint=http://a:2\nimage_endpiont = x\n"+
		"[sp_old]\nimage_endpoint = http://b:1\n"), "m.conf")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(c.Warnings, "\n")
	for _, want := range []string{"m.conf [sp_default] image_endpiont: unknown option", "m.conf [sp_old]: not in [DEFAULT] service_providers"} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings %q lack %q", got, want)
		}
	}
	if strings.Contains(got, "log_file") {
		t.Errorf("oslo.log option warned about: %q", got)
	}
}

func TestMessagebus(t *testing.T) {
	bus, err := ParseMessagebus("rabbit://u1:p%40ss@h1:5673,h2,[::1]:5674/open%2Fstack?ssl=1")
	if err != nil {
		t.Fatal(err)
	}
	if len(bus.Hosts) != 3 || bus.VHost != "open/stack" {
		t.Fatalf("bus = %+v", bus)
	}
	if h := bus.Hosts[0]; h.User != "u1" || h.Password != "p@ss" || h.Host != "h1" || h.Port != 5673 {
		t.Errorf("host 1 = %+v", h)
	}
	// A host without credentials inherits those before it.
	if h := bus.Hosts[1]; h.User != "u1" || h.Host != "h2" || h.Port != 5672 {
		t.Errorf("host 2 = %+v", h)
	}
	if h := bus.Hosts[2]; h.Host != "::1" || h.Port != 5674 {
		t.Errorf("host 3 = %+v", h)
	}
	if got := bus.AMQPURL(bus.Hosts[2]); got != "amqps://u1:p%40ss@[::1]:5674/open%2Fstack" {
		t.Errorf("AMQPURL = %s", got)
	}
	if s := bus.String(); strings.Contains(s, "p@ss") || strings.Contains(s, "p%40ss") {
		t.Errorf("String shows the password: %s", s)
	}
	for _, bad := range []string{"http://h/", "rabbit://u:p@/", "rabbit://h:99999/", "rabbit://h:x/"} {
		if _, err := ParseMessagebus(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// The committed sample is what the option table renders; "make sample" rewrites it.
func TestCommittedSampleMatchesTheOptionTable(t *testing.T) {
	committed, err := os.ReadFile("../../etc/mixmatch.conf.sample")
	if err != nil {
		t.Fatal(err)
	}
	if string(committed) != Sample() {
		t.Fatal("etc/mixmatch.conf.sample differs from the option table: run `make sample` and commit it")
	}
}

func TestDefaultsAreTheSample(t *testing.T) {
	c, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	local, ok := c.SP(LocalSP)
	if !ok || local.Endpoint("image") != "http://127.0.0.1:9292" || local.Endpoint("volume") != "http://127.0.0.1:8776" {
		t.Fatalf("default SP = %+v", local)
	}
	if c.Database.Connection != "sqlite:///var/mixmatch.db" || c.Cache.Backend != "memory" || c.File != "" {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestFindSearchesUpstreamPaths(t *testing.T) {
	t.Chdir(t.TempDir())
	if p, err := Find(""); err != nil || p != "" {
		t.Fatalf("Find with no file = %q, %v", p, err)
	}
	if err := os.MkdirAll("etc/mixmatch", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("etc/mixmatch/mixmatch.conf", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if p, _ := Find(""); p != "etc/mixmatch/mixmatch.conf" {
		t.Fatalf("Find = %q", p)
	}
	if err := os.WriteFile("mixmatch.conf", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if p, _ := Find(""); p != "mixmatch.conf" {
		t.Fatalf("Find = %q, want ./mixmatch.conf first", p)
	}
	missing := filepath.Join(t.TempDir(), "nope.conf")
	if _, err := Find(missing); !IsConfigError(err) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Find(missing) = %v", err)
	}
}
