package proxy_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"mixmatch/app/tlsclient/tlstest"
)

// An SP behind TLS that requires a client certificate: mixmatch checks the SP's
// certificate against cafile and presents certfile/keyfile; without either the
// call fails as a 502 and nothing is sent in clear.
func TestTLSToServiceProviders(t *testing.T) {
	p := tlstest.New(t)
	sp := p.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id": "0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f", "cloud": "tls", "client": "`+
			r.TLS.PeerCertificates[0].Subject.CommonName+`"}`)
	}), true)
	local := newBackend(t, "default")
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
			conf := spConf(map[string]string{"default": local.server.URL, "remote1": sp.URL})
			conf = strings.Replace(conf, "[sp_remote1]\n", "[sp_remote1]\n"+strings.Join(tc.options, "\n")+"\n", 1)
			h, _ := newHandler(t, conf)
			rec, _ := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil, "MM-SERVICE-PROVIDER", "remote1")
			if tc.status == 200 {
				if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"client": "mixmatch"`) {
					t.Fatalf("%d %s", rec.Code, rec.Body)
				}
				return
			}
			wantJSONError(t, tc.name, rec, tc.status)
		})
	}
}
