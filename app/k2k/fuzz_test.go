package k2k_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"mixmatch/app/k2k"
	"mixmatch/app/k2k/k2ktest"
	"mixmatch/app/keystone"
)

// trust is one IdP the fuzzed envelopes are checked against: its metadata, the
// clock and SP an envelope it signed is valid for, and what that envelope says.
type trust struct {
	name  string
	idp   *k2k.IdP
	spURL string
	now   time.Time
	// impostor has the IdP's entity id and another key: what the IdP accepts, it
	// must refuse.
	impostor *k2k.IdP
	valid    []byte
	want     *k2k.Assertion
}

// keystoneTrust is the envelope and metadata captured from Debian's keystone, at a
// time when the envelope was valid: a signed seed that never changes.
func keystoneTrust(tb testing.TB, other *x509.Certificate) *trust {
	tb.Helper()
	md, err := os.ReadFile("testdata/keystone-idp-metadata.xml")
	if err != nil {
		tb.Fatal(err)
	}
	env, err := os.ReadFile("testdata/keystone-ecp-envelope.xml")
	if err != nil {
		tb.Fatal(err)
	}
	idp, err := k2k.ParseMetadata(md)
	if err != nil {
		tb.Fatal(err)
	}
	return newTrust(tb, "keystone", idp, env, "http://127.0.0.1:36000/Shibboleth.sso/SAML2/ECP",
		time.Date(2026, 11, 22, 15, 30, 0, 0, time.UTC), other)
}

const fuzzUserToken = "gAAAAAB-fuzz-user-token"

// standinTrust is the stand-in IdP of k2ktest, with a key of this process: its
// envelopes verify only in this process. It also returns one it signed with the
// other key, which must never verify.
func standinTrust(tb testing.TB, otherKey tls.Certificate) (*trust, []byte) {
	tb.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	idp := k2ktest.NewIdP()
	tb.Cleanup(idp.Close)
	idp.Now = func() time.Time { return now }
	const spURL = "http://sp.example/Shibboleth.sso/SAML2/ECP"
	idp.SPs["remote1"] = keystoneSP("remote1", spURL)
	idp.AddUser(fuzzUserToken, "alice", "a11ce", time.Hour)
	md, err := k2k.ParseMetadata(httpGet(tb, idp.MetadataURL()))
	if err != nil {
		tb.Fatal(err)
	}
	t := newTrust(tb, "stand-in", md, ecp(tb, idp), spURL, now, mustCert(tb, otherKey.Certificate[0]))
	idp.SignWith = &otherKey
	signedByOther := ecp(tb, idp)
	return t, signedByOther
}

func newTrust(tb testing.TB, name string, idp *k2k.IdP, valid []byte, spURL string, now time.Time, other *x509.Certificate) *trust {
	tb.Helper()
	t := &trust{name: name, idp: idp, spURL: spURL, now: now, valid: valid,
		impostor: &k2k.IdP{EntityID: idp.EntityID, Certs: []*x509.Certificate{other}}}
	var err error
	if t.want, err = k2k.ParseEnvelope(valid, idp, spURL, now); err != nil {
		tb.Fatalf("%s: the valid envelope is refused: %v", name, err)
	}
	if !t.want.Verified || t.want.Issuer != idp.EntityID || t.want.Subject == "" {
		tb.Fatalf("%s: the valid envelope reads as %+v", name, t.want)
	}
	if _, err := k2k.ParseEnvelope(valid, t.impostor, spURL, now); err == nil {
		tb.Fatalf("%s: the valid envelope verifies against another key", name)
	}
	return t
}

// check holds for any bytes: refused as ErrAssertion, or accepted, verified, and
// saying exactly what the IdP signed, which the impostor's key does not verify.
func (tr *trust) check(t *testing.T, envelope []byte) {
	t.Helper()
	a, err := k2k.ParseEnvelope(envelope, tr.idp, tr.spURL, tr.now)
	if err != nil {
		if !errors.Is(err, k2k.ErrAssertion) {
			t.Fatalf("%s: refused with %v, not ErrAssertion", tr.name, err)
		}
		return
	}
	if !a.Verified || a.Issuer != tr.want.Issuer || a.Subject != tr.want.Subject || !a.Expires.Equal(tr.want.Expires) ||
		!reflect.DeepEqual(a.Attributes, tr.want.Attributes) {
		t.Fatalf("%s: accepted an assertion that is not the one signed:\ngot  %+v\nwant %+v", tr.name, a, tr.want)
	}
	if _, err := k2k.ParseEnvelope(envelope, tr.impostor, tr.spURL, tr.now); err == nil {
		t.Fatalf("%s: an envelope the IdP signed also verifies against another key", tr.name)
	}
}

// envelopeVariants are the ways an envelope has been made to lie: wrapped and
// duplicated assertions, comments and entities in the subject, a body cut short.
func envelopeVariants(env []byte, subject string) map[string][]byte {
	s := string(env)
	start := strings.Index(s, "<saml:Assertion")
	end := strings.Index(s, "</saml:Assertion>") + len("</saml:Assertion>")
	if start < 0 || end < start {
		return nil
	}
	assertion := s[start:end]
	nameID := "<saml:NameID>" + subject + "</saml:NameID>"
	forged := strings.Replace(assertion, nameID, "<saml:NameID>evil</saml:NameID>", 1)
	unsigned := forged
	for _, p := range []string{"xmldsig", "ds"} {
		open, end := "<"+p+":Signature", "</"+p+":Signature>"
		if i, j := strings.Index(forged, open), strings.Index(forged, end); i >= 0 && j > i {
			unsigned = forged[:i] + forged[j+len(end):]
		}
	}
	firstClose := strings.Index(forged, ">") + 1
	cut := func(with string) string { return s[:start] + with + s[end:] }
	v := map[string][]byte{
		"truncated":        env[:len(env)/2],
		"no-assertion":     []byte(cut("")),
		"forged-in-place":  []byte(cut(forged)),
		"forged-first":     []byte(cut(forged + assertion)),
		"forged-after":     []byte(cut(assertion + forged)),
		"forged-unsigned":  []byte(cut(unsigned + assertion)),
		"wrapped-in-forge": []byte(cut(unsigned[:firstClose] + "<saml:Advice>" + assertion + "</saml:Advice>" + unsigned[firstClose:])),
		"comment-in-subject": []byte(strings.Replace(s, nameID,
			"<saml:NameID>"+subject[:1]+"<!---->"+subject[1:]+"</saml:NameID>", 1)),
		"cdata-in-subject": []byte(strings.Replace(s, nameID, "<saml:NameID><![CDATA["+subject+"]]></saml:NameID>", 1)),
		"entity-in-subject": []byte(`<!DOCTYPE e [<!ENTITY s "` + subject + `">]>` +
			strings.Replace(s, nameID, "<saml:NameID>&s;</saml:NameID>", 1)),
		"doctype":       []byte(`<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd">` + s),
		"huge-response": []byte(strings.Replace(s, "<ns2:Response ", `<ns2:Response Junk="`+strings.Repeat("A", 16<<10)+`" `, 1)),
		"huge-assertion": []byte(strings.Replace(s, "<saml:Assertion ",
			`<saml:Assertion Junk="`+strings.Repeat("A", 16<<10)+`" `, 1)),
		"assertion-in-header": []byte(strings.Replace(cut(""), "</ns0:Header>", assertion+"</ns0:Header>", 1)),
		"status-failed":       []byte(strings.Replace(s, "status:Success", "status:Requester", 1)),
	}
	return v
}

func keystoneSP(id, spURL string) keystone.ServiceProvider {
	return keystone.ServiceProvider{ID: id, AuthURL: "http://sp.example/v3/OS-FEDERATION/identity_providers/idp/protocols/saml2/auth",
		SPURL: spURL}
}

// billionLaughs would be a gigabyte if the parser expanded entities.
func billionLaughs() []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">`)
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, `<!ENTITY lol%d "%s">`, i, strings.Repeat(fmt.Sprintf("&lol%d;", i-1), 10))
	}
	b.WriteString(`]><ns0:Envelope xmlns:ns0="http://schemas.xmlsoap.org/soap/envelope/" ` +
		`xmlns:ns2="urn:oasis:names:tc:SAML:2.0:protocol"><ns0:Body><ns2:Response>&lol9;</ns2:Response></ns0:Body></ns0:Envelope>`)
	return []byte(b.String())
}

// FuzzParseEnvelope: whatever the bytes, ParseEnvelope refuses them as ErrAssertion
// or returns exactly the assertion an IdP signed; unsigned bytes never pass, and
// neither does a signature by a key the metadata does not publish.
func FuzzParseEnvelope(f *testing.F) {
	otherKey := k2ktest.NewCert("not-the-idp")
	other := mustCert(f, otherKey.Certificate[0])
	ks := keystoneTrust(f, other)
	standin, signedByOther := standinTrust(f, otherKey)
	trusts := []*trust{ks, standin}

	// Bigger than anything the local Keystone sends: refused before it is parsed.
	huge := append(bytes.Repeat([]byte(" "), 1<<20), ks.valid...)
	if _, err := k2k.ParseEnvelope(huge, ks.idp, ks.spURL, ks.now); !errors.Is(err, k2k.ErrAssertion) {
		f.Fatalf("a 1 MiB envelope: %v", err)
	}
	// The other key's envelope is well formed: refused for its signature alone.
	if _, err := k2k.ParseEnvelope(signedByOther, standin.impostor, standin.spURL, standin.now); err != nil {
		f.Fatalf("the other key's envelope does not verify against the other key: %v", err)
	}

	for _, tr := range trusts {
		f.Add(tr.valid)
		for _, v := range inOrder(envelopeVariants(tr.valid, tr.want.Subject)) {
			f.Add(v)
		}
	}
	f.Add(signedByOther)
	f.Add(billionLaughs())
	f.Add([]byte(""))
	f.Add([]byte("<Envelope/>"))
	f.Add([]byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>`))
	f.Add([]byte("\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\x00\xff"))

	f.Fuzz(func(t *testing.T, envelope []byte) {
		for _, tr := range trusts {
			tr.check(t, envelope)
		}
		// Without metadata (verify_assertions off) nothing is verified, but nothing
		// may crash either: the SP verifies.
		if a, err := k2k.ParseEnvelope(envelope, nil, "", ks.now); err == nil && a.Verified {
			t.Fatal("an assertion read without metadata is marked verified")
		}
		if raw, err := k2k.ResponseXML(envelope); err == nil && len(raw) == 0 {
			t.Fatal("ResponseXML returned nothing and no error")
		}
	})
}

// metadataVariants are metadata that publish the wrong key, publish it for the wrong
// use, or spell it in ways a parser may get wrong.
func metadataVariants(md []byte, cert, otherCert []byte) map[string][]byte {
	s := string(md)
	c, other := base64.StdEncoding.EncodeToString(cert), base64.StdEncoding.EncodeToString(otherCert)
	v := map[string]string{
		"encryption-only": strings.Replace(s, `use="signing"`, `use="encryption"`, 1),
		"no-use":          strings.Replace(s, ` use="signing"`, "", 1),
		"other-key":       strings.Replace(s, c, other, 1),
		"folded-base64":   strings.Replace(s, c, c[:64]+"\n  "+c[64:128]+"\r\n\t"+c[128:], 1),
		"bad-base64":      strings.Replace(s, c, "!!!not base64", 1),
		"not-der":         strings.Replace(s, c, base64.StdEncoding.EncodeToString([]byte("not DER")), 1),
		"sp-not-idp":      strings.ReplaceAll(s, "IDPSSODescriptor", "SPSSODescriptor"),
		"other-entity":    strings.Replace(s, `entityID="`, `entityID="http://evil/idp" x="`, 1),
		"entity-for-cert": `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY c "` + c + `">]>` + strings.Replace(s, c, "&c;", 1),
		"empty":           "",
		"not-xml":         "<",
		"bare-descriptor": "<EntityDescriptor/>",
	}
	// The IdP's certificate for encryption only, and another for signing.
	kd := strings.Index(s, "<ns0:KeyDescriptor")
	kdEnd := strings.Index(s, "</ns0:KeyDescriptor>") + len("</ns0:KeyDescriptor>")
	if kd >= 0 && kdEnd > kd {
		signing := s[kd:kdEnd]
		v["encryption-idp-signing-other"] = s[:kd] + strings.Replace(signing, `use="signing"`, `use="encryption"`, 1) +
			strings.Replace(signing, c, other, 1) + s[kdEnd:]
	}
	out := map[string][]byte{}
	for name, md := range v {
		out[name] = []byte(md)
	}
	return out
}

// FuzzParseMetadata: metadata either fails to parse or publishes signing
// certificates, and trusting it verifies the Keystone envelope only when it
// publishes that Keystone's entity id and certificate.
func FuzzParseMetadata(f *testing.F) {
	md, err := os.ReadFile("testdata/keystone-idp-metadata.xml")
	if err != nil {
		f.Fatal(err)
	}
	other := k2ktest.NewCert("not-the-idp")
	ks := keystoneTrust(f, mustCert(f, other.Certificate[0]))
	f.Add(md)
	for _, v := range inOrder(metadataVariants(md, ks.idp.Certs[0].Raw, other.Certificate[0])) {
		f.Add(v)
	}

	f.Fuzz(func(t *testing.T, metadata []byte) {
		idp, err := k2k.ParseMetadata(metadata)
		if err != nil {
			if idp != nil {
				t.Fatal("metadata refused and returned")
			}
			return
		}
		if len(idp.Certs) == 0 {
			t.Fatal("metadata accepted without a certificate")
		}
		for _, c := range idp.Certs {
			if c == nil {
				t.Fatal("a nil certificate")
			}
		}
		if _, err := k2k.ParseEnvelope(ks.valid, idp, ks.spURL, ks.now); err == nil {
			if idp.EntityID != ks.idp.EntityID {
				t.Fatalf("Keystone's envelope verifies for entity id %q", idp.EntityID)
			}
			published := false
			for _, c := range idp.Certs {
				published = published || c.Equal(ks.idp.Certs[0])
			}
			if !published {
				t.Fatal("Keystone's envelope verifies against metadata without Keystone's certificate")
			}
		}
	})
}

// inOrder keeps the seeds' numbers (seed#N) the same from run to run.
func inOrder(m map[string][]byte) [][]byte {
	var out [][]byte
	for _, name := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[name])
	}
	return out
}

func mustCert(tb testing.TB, der []byte) *x509.Certificate {
	tb.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func httpGet(tb testing.TB, url string) []byte {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return b
}

// ecp asks the stand-in IdP for an envelope as mixmatch does.
func ecp(tb testing.TB, idp *k2ktest.IdP) []byte {
	tb.Helper()
	body := `{"auth": {"identity": {"methods": ["token"], "token": {"id": "` + fuzzUserToken + `"}}, ` +
		`"scope": {"service_provider": {"id": "remote1"}}}}`
	resp, err := http.Post(idp.AuthURL()+"/auth/OS-FEDERATION/saml2/ecp", "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("ECP: %d %v %s", resp.StatusCode, err, b)
	}
	return b
}
