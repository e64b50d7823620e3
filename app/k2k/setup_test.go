package k2k

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mixmatch/app/config"
)

// The CA bundles of [auth] and of each [sp_*] reach the clients that talk to that
// Keystone, and only those.
func TestFromConfigUsesEachCloudsCABundle(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	conf := "[DEFAULT]\nservice_providers = default, remote1, remote2\n[auth]\ncafile = " + ca + "\n" +
		"[sp_default]\nimage_endpoint = http://a:1\nvolume_endpoint = http://a:2\n" +
		"[sp_remote1]\nauth_url = https://k1:5000/v3\nimage_endpoint = https://g1\nvolume_endpoint = https://c1\ncafile = " + ca + "\n" +
		"[sp_remote2]\nauth_url = https://k2:5000/v3\nimage_endpoint = https://g2\nvolume_endpoint = https://c2\n"
	cfg, err := config.Load(strings.NewReader(conf), "m.conf")
	if err != nil {
		t.Fatal(err)
	}
	local, ex, err := FromConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	roots := func(c *http.Client) bool {
		tr := c.Transport.(*http.Transport)
		return tr.Proxy == nil && tr.TLSClientConfig != nil && tr.TLSClientConfig.RootCAs != nil
	}
	r1, _ := cfg.SP("remote1")
	r2, _ := cfg.SP("remote2")
	if !roots(local.HTTP) || !roots(ex.client(r1)) {
		t.Fatal("a cafile was not used")
	}
	if tr := ex.client(r2).Transport.(*http.Transport); tr.TLSClientConfig != nil || tr.Proxy != nil {
		t.Fatal("remote2, with no TLS options, does not get the system's defaults")
	}
}
