package proxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mixmatch/app/fakecloud"
)

// pki is a private CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files.
type pki struct {
	pool                      *x509.CertPool
	server                    tls.Certificate
	caFile, certFile, keyFile string
	otherCAFile               string
}

func newPKI(t *testing.T) *pki {
	dir := t.TempDir()
	p := &pki{pool: x509.NewCertPool()}
	caKey, caCert, caDER := selfSigned(t, "mixmatch test CA")
	p.pool.AddCert(caCert)
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)
	_, _, otherDER := selfSigned(t, "another CA")
	p.otherCAFile = writePEM(t, dir, "other-ca.pem", "CERTIFICATE", otherDER)

	serverKey, serverDER := issue(t, caKey, caCert, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	p.server = tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}
	clientKey, clientDER := issue(t, caKey, caCert, "mixmatch", x509.ExtKeyUsageClientAuth)
	p.certFile = writePEM(t, dir, "client.pem", "CERTIFICATE", clientDER)
	keyDER, err := x509.MarshalECPrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	p.keyFile = writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

func selfSigned(t *testing.T, name string) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert, der
}

func issue(t *testing.T, caKey *ecdsa.PrivateKey, ca *x509.Certificate, name string, usage x509.ExtKeyUsage) (*ecdsa.PrivateKey, []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func writePEM(t *testing.T, dir, name, kind string, der []byte) string {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// An SP behind TLS that requires a client certificate: mixmatch checks the SP's
// certificate against cafile and presents certfile/keyfile; without either the
// call fails as a 502 and nothing is sent in clear.
func TestTLSToServiceProviders(t *testing.T) {
	p := newPKI(t)
	spTLS := &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	for _, tc := range []struct {
		name    string
		options []string
		status  int
	}{
		{"CA bundle and client certificate", []string{"cafile = " + p.caFile, "certfile = " + p.certFile, "keyfile = " + p.keyFile}, 200},
		{"no CA bundle", []string{"certfile = " + p.certFile, "keyfile = " + p.keyFile}, 502},
		{"another CA", []string{"cafile = " + p.otherCAFile, "certfile = " + p.certFile, "keyfile = " + p.keyFile}, 502},
		{"no client certificate", []string{"cafile = " + p.caFile}, 502},
		{"insecure, with the client certificate", []string{"insecure = true", "certfile = " + p.certFile, "keyfile = " + p.keyFile}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			options := []option{withSPs("default", "remote1"), withTLS("remote1", spTLS)}
			for _, o := range tc.options {
				k, v, _ := strings.Cut(o, " = ")
				options = append(options, withSPOptionAt("remote1", k, v))
			}
			s := newSetup(t, options...)
			sp := s.backends["remote1"]
			sp.Add(fakecloud.Images, "", imageID, nil)
			rec, _ := serveWith(t, s.handler, "GET", "/image/v2/images/"+imageID, nil, "MM-SERVICE-PROVIDER", "remote1")
			if tc.status == 200 {
				if got := sp.Received(); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"cloud": "remote1"`) ||
					len(got) != 1 || got[0].ClientCert != "mixmatch" {
					t.Fatalf("%d %s; the SP received %+v", rec.Code, rec.Body, got)
				}
				return
			}
			wantJSONError(t, tc.name, rec, tc.status)
			if got := sp.Received(); len(got) != 0 {
				t.Fatalf("a call reached the SP: %+v", got)
			}
		})
	}
}
