package proxy_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"mixmatch/app/fakecloud"
	"mixmatch/app/tlsclient/tlstest"
)

// An SP behind TLS that requires a client certificate: mixmatch checks the SP's
// certificate against cafile and presents certfile/keyfile; without either the
// call fails as a 502 and nothing is sent in clear.
func TestTLSToServiceProviders(t *testing.T) {
	p := tlstest.New(t)
	spTLS := &tls.Config{Certificates: []tls.Certificate{p.Server}, ClientCAs: p.Pool, ClientAuth: tls.RequireAndVerifyClientCert}
	for _, tc := range []struct {
		name    string
		options []string
		status  int
	}{
		{"CA bundle and client certificate", []string{"cafile = " + p.CAFile, "certfile = " + p.CertFile, "keyfile = " + p.KeyFile}, 200},
		{"no CA bundle", []string{"certfile = " + p.CertFile, "keyfile = " + p.KeyFile}, 502},
		{"another CA", []string{"cafile = " + p.OtherCAFile, "certfile = " + p.CertFile, "keyfile = " + p.KeyFile}, 502},
		{"no client certificate", []string{"cafile = " + p.CAFile}, 502},
		{"insecure, with the client certificate", []string{"insecure = true", "certfile = " + p.CertFile, "keyfile = " + p.KeyFile}, 200},
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
