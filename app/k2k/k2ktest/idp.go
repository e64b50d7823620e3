package k2ktest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"mixmatch/app/keystone"
)

// IdP is the local Keystone: it validates tokens and, like keystone/federation/idp.py,
// answers the ECP call with a SOAP envelope around a Response whose Assertion is
// signed (rsa-sha1, exclusive c14n) and has no Conditions.
type IdP struct {
	Server *httptest.Server
	// Users maps a token to its body; every user token is project-scoped.
	Users map[string]*keystone.Token
	// SPs are the service provider records.
	SPs map[string]keystone.ServiceProvider
	// ServicePassword is the password of mixmatch's own account ("admin").
	ServicePassword string
	// AssertionTTL is how long assertions are valid; negative makes expired ones.
	AssertionTTL time.Duration
	// SignWith, when set, signs with a key the metadata does not publish.
	SignWith *tls.Certificate
	Now      func() time.Time

	cert     tls.Certificate
	mu       sync.Mutex
	counts   map[string]int
	received []Request
}

// NewIdP starts a local Keystone with a fresh signing key.
func NewIdP() *IdP {
	idp := &IdP{Users: map[string]*keystone.Token{}, SPs: map[string]keystone.ServiceProvider{},
		ServicePassword: "service-secret", AssertionTTL: time.Hour, Now: time.Now, counts: map[string]int{},
		cert: NewCert("mixmatch-test-idp")}
	idp.Server = httptest.NewServer(http.HandlerFunc(idp.serve))
	return idp
}

// NewCert makes a self-signed RSA certificate.
func NewCert(cn string) tls.Certificate {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Close stops the server.
func (idp *IdP) Close() { idp.Server.Close() }

// AuthURL is the v3 endpoint.
func (idp *IdP) AuthURL() string { return idp.Server.URL + "/v3" }

// EntityID is the IdP's SAML entity id.
func (idp *IdP) EntityID() string { return idp.Server.URL + "/v3/OS-FEDERATION/saml2/idp" }

// MetadataURL is where SPs read the IdP's metadata.
func (idp *IdP) MetadataURL() string { return idp.Server.URL + "/v3/OS-FEDERATION/saml2/metadata" }

// AddUser registers a user token scoped to project, expiring in ttl, that lists
// every SP record in its service_providers.
func (idp *IdP) AddUser(token, name, project string, ttl time.Duration) {
	t := &keystone.Token{ExpiresAt: idp.Now().Add(ttl).UTC().Truncate(time.Second)}
	t.User.ID, t.User.Name = "u-"+name, name
	t.Project.ID, t.Project.Name = project, "p-"+project
	idp.mu.Lock()
	defer idp.mu.Unlock()
	for _, sp := range idp.SPs {
		t.ServiceProviders = append(t.ServiceProviders, sp)
	}
	idp.Users[token] = t
}

// Count returns how often an operation ran: "validate", "ecp", "metadata", "service-token".
func (idp *IdP) Count(op string) int {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return idp.counts[op]
}

func (idp *IdP) count(op string) {
	idp.mu.Lock()
	idp.counts[op]++
	idp.mu.Unlock()
}

func (idp *IdP) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	idp.mu.Lock()
	idp.received = append(idp.received, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)})
	idp.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v3/auth/tokens":
		idp.issueServiceToken(w, body)
	case r.Method == http.MethodGet && r.URL.Path == "/v3/auth/tokens":
		idp.validate(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/v3/auth/OS-FEDERATION/saml2/ecp":
		idp.ecp(w, body)
	case r.Method == http.MethodGet && r.URL.Path == "/v3/OS-FEDERATION/saml2/metadata":
		idp.count("metadata")
		w.Header().Set("Content-Type", "text/xml")
		w.Write(idp.metadata())
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v3/OS-FEDERATION/service_providers/"):
		idp.mu.Lock()
		sp, ok := idp.SPs[strings.TrimPrefix(r.URL.Path, "/v3/OS-FEDERATION/service_providers/")]
		idp.mu.Unlock()
		if !ok || r.Header.Get("X-Auth-Token") != "service-token" {
			writeError(w, http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"service_provider": map[string]any{
			"id": sp.ID, "auth_url": sp.AuthURL, "sp_url": sp.SPURL, "enabled": true}})
	default:
		writeError(w, http.StatusNotFound)
	}
}

func writeError(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": http.StatusText(status)}})
}

func (idp *IdP) issueServiceToken(w http.ResponseWriter, body []byte) {
	if !strings.Contains(string(body), `"password":"`+idp.ServicePassword+`"`) {
		writeError(w, http.StatusUnauthorized)
		return
	}
	idp.count("service-token")
	w.Header().Set("X-Subject-Token", "service-token")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"token": map[string]any{
		"expires_at": idp.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z")}})
}

func (idp *IdP) validate(w http.ResponseWriter, r *http.Request) {
	caller, subject := r.Header.Get("X-Auth-Token"), r.Header.Get("X-Subject-Token")
	idp.mu.Lock()
	t, ok := idp.Users[subject]
	idp.mu.Unlock()
	if caller != "service-token" && caller != subject {
		writeError(w, http.StatusUnauthorized)
		return
	}
	if !ok || !idp.Now().Before(t.ExpiresAt) {
		writeError(w, http.StatusNotFound)
		return
	}
	idp.count("validate")
	w.Header().Set("X-Subject-Token", subject)
	json.NewEncoder(w).Encode(map[string]any{"token": t})
}

func (idp *IdP) ecp(w http.ResponseWriter, body []byte) {
	var req struct {
		Auth struct {
			Identity struct {
				Token struct {
					ID string `json:"id"`
				} `json:"token"`
			} `json:"identity"`
			Scope struct {
				ServiceProvider struct {
					ID string `json:"id"`
				} `json:"service_provider"`
			} `json:"scope"`
		} `json:"auth"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest)
		return
	}
	idp.mu.Lock()
	user, okUser := idp.Users[req.Auth.Identity.Token.ID]
	sp, okSP := idp.SPs[req.Auth.Scope.ServiceProvider.ID]
	idp.mu.Unlock()
	switch {
	case !okUser || !idp.Now().Before(user.ExpiresAt):
		writeError(w, http.StatusUnauthorized)
		return
	case user.Project.ID == "":
		writeError(w, http.StatusForbidden)
		return
	case !okSP:
		writeError(w, http.StatusNotFound)
		return
	}
	idp.count("ecp")
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-sp-url", sp.SPURL)
	w.Header().Set("X-auth-url", sp.AuthURL)
	w.Write(idp.envelope(user, sp))
}

const (
	nsSOAP      = "http://schemas.xmlsoap.org/soap/envelope/"
	nsECP       = "urn:oasis:names:tc:SAML:2.0:profiles:SSO:ecp"
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
)

func (idp *IdP) envelope(user *keystone.Token, sp keystone.ServiceProvider) []byte {
	now := idp.Now().UTC().Truncate(time.Second) // keystone writes .000000Z
	expires := now.Add(idp.AssertionTTL).Format("2006-01-02T15:04:05.000000Z")
	instant := now.Format("2006-01-02T15:04:05Z")

	a := etree.NewElement("saml:Assertion")
	a.CreateAttr("xmlns:saml", nsAssertion)
	a.CreateAttr("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
	a.CreateAttr("Version", "2.0")
	a.CreateAttr("ID", random())
	a.CreateAttr("IssueInstant", instant)
	iss := a.CreateElement("saml:Issuer")
	iss.CreateAttr("Format", "urn:oasis:names:tc:SAML:2.0:nameid-format:entity")
	iss.SetText(idp.EntityID())
	subj := a.CreateElement("saml:Subject")
	subj.CreateElement("saml:NameID").SetText(user.User.Name)
	sc := subj.CreateElement("saml:SubjectConfirmation")
	sc.CreateAttr("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
	scd := sc.CreateElement("saml:SubjectConfirmationData")
	scd.CreateAttr("NotOnOrAfter", expires)
	scd.CreateAttr("Recipient", sp.SPURL)
	authn := a.CreateElement("saml:AuthnStatement")
	authn.CreateAttr("AuthnInstant", instant)
	authn.CreateAttr("SessionIndex", random())
	authn.CreateAttr("SessionNotOnOrAfter", expires)
	authn.CreateElement("saml:AuthnContext").CreateElement("saml:AuthnContextClassRef").
		SetText("urn:oasis:names:tc:SAML:2.0:ac:classes:Password")
	attrs := a.CreateElement("saml:AttributeStatement")
	for _, kv := range [][2]string{{"openstack_user", user.User.Name}, {"openstack_roles", "member"},
		{"openstack_project", user.Project.Name}, {"openstack_user_domain", "Default"}, {"openstack_project_domain", "Default"}} {
		attr := attrs.CreateElement("saml:Attribute")
		attr.CreateAttr("Name", kv[0])
		attr.CreateAttr("NameFormat", "urn:oasis:names:tc:SAML:2.0:attrname-format:uri")
		v := attr.CreateElement("saml:AttributeValue")
		v.CreateAttr("xsi:type", "xs:string")
		v.CreateAttr("xmlns:xs", "http://www.w3.org/2001/XMLSchema")
		v.SetText(kv[1])
	}
	cert := idp.cert
	if idp.SignWith != nil {
		cert = *idp.SignWith
	}
	ctx, err := dsig.NewSigningContext(cert.PrivateKey.(*rsa.PrivateKey), cert.Certificate)
	if err != nil {
		panic(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA1SignatureMethod); err != nil {
		panic(err)
	}
	signed, err := ctx.SignEnveloped(a)
	if err != nil {
		panic(err)
	}

	doc := etree.NewDocument()
	env := doc.CreateElement("ns0:Envelope")
	env.CreateAttr("xmlns:ns0", nsSOAP)
	env.CreateAttr("xmlns:ns1", nsECP)
	env.CreateAttr("xmlns:ns2", nsProtocol)
	rs := env.CreateElement("ns0:Header").CreateElement("ns1:RelayState")
	rs.CreateAttr("ns0:mustUnderstand", "1")
	rs.CreateAttr("ns0:actor", "http://schemas.xmlsoap.org/soap/actor/next")
	rs.SetText("ss:mem:" + random())
	resp := env.CreateElement("ns0:Body").CreateElement("ns2:Response")
	resp.CreateAttr("ID", random())
	resp.CreateAttr("Version", "2.0")
	resp.CreateAttr("IssueInstant", instant)
	resp.CreateAttr("Destination", sp.SPURL)
	riss := resp.CreateElement("saml:Issuer")
	riss.CreateAttr("xmlns:saml", nsAssertion)
	riss.CreateAttr("Format", "urn:oasis:names:tc:SAML:2.0:nameid-format:entity")
	riss.SetText(idp.EntityID())
	resp.CreateElement("ns2:Status").CreateElement("ns2:StatusCode").CreateAttr("Value", "urn:oasis:names:tc:SAML:2.0:status:Success")
	resp.AddChild(signed)
	out, err := doc.WriteToBytes()
	if err != nil {
		panic(err)
	}
	return out
}

func (idp *IdP) metadata() []byte {
	doc := etree.NewDocument()
	ed := doc.CreateElement("md:EntityDescriptor")
	ed.CreateAttr("xmlns:md", "urn:oasis:names:tc:SAML:2.0:metadata")
	ed.CreateAttr("xmlns:ds", "http://www.w3.org/2000/09/xmldsig#")
	ed.CreateAttr("entityID", idp.EntityID())
	sso := ed.CreateElement("md:IDPSSODescriptor")
	sso.CreateAttr("protocolSupportEnumeration", nsProtocol)
	kd := sso.CreateElement("md:KeyDescriptor")
	kd.CreateAttr("use", "signing")
	kd.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
		SetText(base64.StdEncoding.EncodeToString(idp.cert.Certificate[0]))
	out, _ := doc.WriteToBytes()
	return out
}
