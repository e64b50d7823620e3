package config_test

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"mixmatch/app/config"
)

// federatedConf is the smallest file of a two-cloud federation, as the README shows it.
const federatedConf = `[DEFAULT]
service_providers = default, remote1
aggregation = true
search_by_broadcast = yes

[auth]
auth_url = http://127.0.0.1:5000/v3
password = s3cret#not-a-comment

[sp_default]
image_endpoint = http://127.0.0.1:9292
volume_endpoint = http://127.0.0.1:8776

[sp_remote1]
sp_name = remote1
messagebus = rabbit://mm:pw@10.0.0.2:5672,mm:pw@10.0.0.3:5672/
auth_url = https://10.0.0.2:5000/v3
image_endpoint = https://10.0.0.2:9292
volume_endpoint = https://10.0.0.2:8776
enabled_services = image, volume
`

// upstreamConf is in the Python mixmatch's style: quoted values, caching in [DEFAULT],
// oslo.cache backend names, sections for clouds that are not listed.
const upstreamConf = `[DEFAULT]
aggregation=False
search_by_broadcast=True
service_providers=default, remote1
caching=True
cache_time=300

[database]
connection="sqlite:////home/ubuntu/proxy.db"

[auth]
auth_url="http://127.0.0.1:5000/v3"
username="admin"
user_domain_id="default"
password="nomoresecrete"
project_name="admin"
project_domain_id="default"

[cache]
backend=dogpile.cache.memory

[sp_default]
sp_name=default
messagebus="rabbit://stackrabbit:stackqueue@localhost"
auth_url="http://127.0.0.1:5000/v3"
image_endpoint="http://localhost:9292"
volume_endpoint="http://localhost:8776"
enabled_services=image, volume

[sp_remote1]
sp_name=remote1
messagebus="rabbit://stackrabbit:stackqueue@192.168.0.141"
auth_url="http://192.168.0.141:5000/v3"
image_endpoint="http://192.168.0.141:9292"
volume_endpoint="http://192.168.0.141:8776"
network_endpoint="http://192.168.0.141:9696"
enabled_services=image, volume, network

[sp_remote2]
image_endpoint="http://192.168.0.142:9292"
`

// FuzzLoad: any bytes either load into a configuration whose SPs are the listed
// service providers, the local one included, or fail with problems that name the
// file; the same bytes always give the same answer.
func FuzzLoad(f *testing.F) {
	sample, err := os.ReadFile("../../etc/mixmatch.conf.sample")
	if err != nil {
		f.Fatal(err)
	}
	const name = "/etc/mixmatch/mixmatch.conf"
	valid := []string{string(sample), federatedConf, upstreamConf,
		"\ufeff" + federatedConf, strings.ReplaceAll(federatedConf, "\n", "\r\n")}
	// A seed meant to load that stops loading would leave the fuzzer only failures
	// to mutate.
	for _, seed := range valid {
		if _, err := config.Load(strings.NewReader(seed), name); err != nil {
			f.Fatalf("a valid seed does not load: %v\n%s", err, seed)
		}
		f.Add([]byte(seed), name)
	}
	for _, seed := range []string{
		"",
		strings.Replace(federatedConf, "aggregation = true", "aggregation = maybe", 1),
		strings.Replace(federatedConf, "https://10.0.0.2:9292", "10.0.0.2:9292", 1),
		strings.Replace(federatedConf, "default, remote1", "default, remote1, remote2", 1),
		strings.Replace(federatedConf, "sp_name = remote1", "sp_name = remote1\nsp_name = default", 1),
		strings.Replace(federatedConf, "[sp_remote1]", "[sp_remote1]\n[sp_remote1]", 1),
		"[DEFAULT]\nservice_providers = \x00\xff\n[sp_\x00]\n= x\n[",
	} {
		f.Add([]byte(seed), name)
	}
	f.Add([]byte(federatedConf), "")
	f.Add([]byte(federatedConf), "%s [sp_x] \n")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		// cafile, certfile and keyfile are read when the file loads; a device could
		// block or never end, which is no property of the parser.
		if bytes.Contains(data, []byte("/dev/")) || bytes.Contains(data, []byte("/proc/")) {
			t.Skip()
		}
		c, err := config.Load(bytes.NewReader(data), name)
		c2, err2 := config.Load(bytes.NewReader(data), name)
		if !reflect.DeepEqual(c, c2) || !reflect.DeepEqual(err, err2) {
			t.Fatalf("two loads of the same bytes differ:\n%+v, %v\n%+v, %v", c, err, c2, err2)
		}
		if err != nil {
			var cerr *config.Error
			if !errors.As(err, &cerr) || c != nil {
				t.Fatalf("got %T %v with config %v, want a *config.Error alone", err, err, c)
			}
			if len(cerr.Problems) == 0 {
				t.Fatal("an error without problems")
			}
			for _, p := range cerr.Problems {
				if p.File != name || !strings.HasPrefix(p.String(), name) {
					t.Fatalf("problem %q does not name the file %q", p.String(), name)
				}
			}
			return
		}
		if c == nil {
			t.Fatal("no configuration and no error")
		}
		if c.File != name {
			t.Fatalf("File = %q, want %q", c.File, name)
		}
		if len(c.SPs) != len(c.ServiceProviders) {
			t.Fatalf("%d SPs for service_providers %q", len(c.SPs), c.ServiceProviders)
		}
		names := map[string]bool{}
		for i, sp := range c.SPs {
			if sp == nil || sp.Name != c.ServiceProviders[i] || names[sp.Name] {
				t.Fatalf("SPs[%d] = %+v for service_providers %q", i, sp, c.ServiceProviders)
			}
			names[sp.Name] = true
		}
		if sp, ok := c.SP(config.LocalSP); !ok || !sp.Local() {
			t.Fatalf("no local SP %q in %q", config.LocalSP, c.ServiceProviders)
		}
		for _, w := range c.Warnings {
			if !strings.HasPrefix(w, name) {
				t.Fatalf("warning %q does not name the file %q", w, name)
			}
		}
	})
}
