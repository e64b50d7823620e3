package k2k

import (
	"strings"
	"testing"

	"mixmatch/app/config"
	"mixmatch/app/httpclient"
)

// Every Keystone is reached with the clients the factory built for its cloud, which
// carry that cloud's TLS options (see httpclient's tests).
func TestFromConfigTakesItsClientsFromTheFactory(t *testing.T) {
	conf := "[DEFAULT]\nservice_providers = default, remote1, remote2\n" +
		"[sp_default]\nimage_endpoint = http://a:1\nvolume_endpoint = http://a:2\n" +
		"[sp_remote1]\nauth_url = https://k1:5000/v3\nimage_endpoint = https://g1\nvolume_endpoint = https://c1\n" +
		"[sp_remote2]\nauth_url = https://k2:5000/v3\nimage_endpoint = https://g2\nvolume_endpoint = https://c2\n"
	cfg, err := config.Load(strings.NewReader(conf), "m.conf")
	if err != nil {
		t.Fatal(err)
	}
	clients := httpclient.New(cfg)
	local, ex, err := FromConfig(cfg, clients, nil)
	if err != nil {
		t.Fatal(err)
	}
	if local.HTTP != clients.LocalKeystone() {
		t.Fatal("the local Keystone is not reached with [auth]'s client")
	}
	for _, name := range []string{"remote1", "remote2"} {
		sp, _ := cfg.SP(name)
		if ex.o.HTTP(sp) != clients.Keystone(sp) {
			t.Fatalf("%s's Keystone is not reached with its own client", name)
		}
	}
}
