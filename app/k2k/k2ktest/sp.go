// Package k2ktest has stand-ins for the two Keystones of a K2K exchange, faithful to
// the wire format: SP is a Keystone service provider behind Shibboleth (it verifies
// the assertion's signature against the IdP's metadata with gosaml2), and IdP is a
// local Keystone that validates tokens and signs ECP assertions as keystone does.
// Both record what reached them, so tests can assert on what was sent.
package k2ktest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	saml2 "github.com/russellhaering/gosaml2"
	dsig "github.com/russellhaering/goxmldsig"

	"mixmatch/app/k2k"
	"mixmatch/app/keystone"
)

// Request is what a stand-in received.
type Request struct {
	Method, Path string
	Header       http.Header
	Body         string
}

// SP is a Keystone service provider behind a SAML2 ECP endpoint.
type SP struct {
	Server *httptest.Server
	// IdPMetadataURL is where the IdP's metadata is read, once, on the first assertion.
	IdPMetadataURL string
	// Projects are what every federated user may scope to.
	Projects []keystone.Project
	TokenTTL time.Duration
	Now      func() time.Time

	mu       sync.Mutex
	idp      *saml2.SAMLServiceProvider
	sessions map[string]string         // cookie -> user
	tokens   map[string]keystone.Token // token -> body
	received []Request
	counts   map[string]int
}

// NewSP starts an SP trusting the IdP whose metadata is at metadataURL.
func NewSP(metadataURL string) *SP {
	sp := &SP{IdPMetadataURL: metadataURL, TokenTTL: time.Hour, Now: time.Now,
		sessions: map[string]string{}, tokens: map[string]keystone.Token{}, counts: map[string]int{},
		Projects: []keystone.Project{{ID: "b0b0b0b0b0b04b0b8b0b0b0b0b0b0b01", Name: "federated", DomainID: "default", Enabled: true}}}
	sp.Server = httptest.NewServer(http.HandlerFunc(sp.serve))
	return sp
}

// Close stops the server.
func (sp *SP) Close() { sp.Server.Close() }

// SPURL is the assertion consumer (Shibboleth's ECP endpoint).
func (sp *SP) SPURL() string { return sp.Server.URL + "/Shibboleth.sso/SAML2/ECP" }

// AuthURL is Keystone's federated auth endpoint for the IdP.
func (sp *SP) AuthURL() string {
	return sp.Server.URL + "/v3/OS-FEDERATION/identity_providers/idp1/protocols/saml2/auth"
}

// Received returns every request so far.
func (sp *SP) Received() []Request {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return append([]Request(nil), sp.received...)
}

// Count returns how often an operation ran: "assertion", "unscoped", "projects", "scoped".
func (sp *SP) Count(op string) int {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.counts[op]
}

// Revoke invalidates every token issued so far, as a token flush at the SP would.
func (sp *SP) Revoke() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.tokens = map[string]keystone.Token{}
}

// ValidToken reports whether token is a scoped token the SP issued and still honours,
// and for which project: the check an SP's Glance or Cinder makes.
func (sp *SP) ValidToken(token string) (string, bool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	t, ok := sp.tokens[token]
	if !ok || t.Project.ID == "" || !sp.Now().Before(t.ExpiresAt) {
		return "", false
	}
	return t.Project.ID, true
}

func (sp *SP) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sp.mu.Lock()
	sp.received = append(sp.received, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)})
	sp.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/Shibboleth.sso/SAML2/ECP":
		sp.consume(w, r, body)
	case r.Method == http.MethodGet && r.URL.String() == strings.TrimPrefix(sp.AuthURL(), sp.Server.URL):
		sp.federatedAuth(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/v3/auth/projects":
		sp.listProjects(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/v3/auth/tokens":
		sp.rescope(w, r, body)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

func (sp *SP) count(op string) {
	sp.mu.Lock()
	sp.counts[op]++
	sp.mu.Unlock()
}

// consume is Shibboleth's ECP assertion consumer: verify, open a session, redirect.
func (sp *SP) consume(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Header.Get("Content-Type") != "application/vnd.paos+xml" {
		http.Error(w, "ECP needs application/vnd.paos+xml", http.StatusBadRequest)
		return
	}
	verifier, err := sp.verifier()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	resp, err := k2k.ResponseXML(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	verifier.Clock = dsig.NewFakeClockAt(sp.Now())
	verified, err := verifier.ValidateEncodedResponse(base64.StdEncoding.EncodeToString(resp))
	if err != nil || len(verified.Assertions) != 1 || verified.Assertions[0].AttributeStatement == nil {
		http.Error(w, fmt.Sprintf("assertion refused: %v", err), http.StatusUnauthorized)
		return
	}
	user := ""
	for _, a := range verified.Assertions[0].AttributeStatement.Attributes {
		if a.Name == "openstack_user" && len(a.Values) > 0 {
			user = a.Values[0].Value
		}
	}
	if user == "" {
		http.Error(w, "no openstack_user", http.StatusUnauthorized)
		return
	}
	sp.count("assertion")
	session := random()
	sp.mu.Lock()
	sp.sessions[session] = user
	sp.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "_shibsession_mixmatch", Value: session, Path: "/"})
	w.Header().Set("Location", sp.AuthURL())
	w.WriteHeader(http.StatusFound)
}

func (sp *SP) verifier() (*saml2.SAMLServiceProvider, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.idp != nil {
		return sp.idp, nil
	}
	resp, err := http.Get(sp.IdPMetadataURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	idp, err := k2k.ParseMetadata(raw)
	if err != nil {
		return nil, err
	}
	sp.idp = &saml2.SAMLServiceProvider{
		IdentityProviderIssuer:      idp.EntityID,
		AssertionConsumerServiceURL: sp.SPURL(),
		IDPCertificateStore:         &dsig.MemoryX509CertificateStore{Roots: idp.Certs},
	}
	return sp.idp, nil
}

// federatedAuth is Keystone's mapped auth behind the SAML session: an unscoped token.
func (sp *SP) federatedAuth(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie("_shibsession_mixmatch")
	sp.mu.Lock()
	user, ok := "", false
	if err == nil {
		user, ok = sp.sessions[c.Value]
	}
	sp.mu.Unlock()
	if !ok {
		http.Error(w, `{"error": {"code": 401, "message": "no SAML session"}}`, http.StatusUnauthorized)
		return
	}
	var t keystone.Token
	t.User.ID, t.User.Name = "fed-"+user, user
	t.ExpiresAt = sp.Now().Add(sp.TokenTTL).UTC().Truncate(time.Second)
	sp.count("unscoped")
	sp.issue(w, t)
}

func (sp *SP) issue(w http.ResponseWriter, t keystone.Token) {
	id := random()
	sp.mu.Lock()
	sp.tokens[id] = t
	sp.mu.Unlock()
	w.Header().Set("X-Subject-Token", id)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"token": map[string]any{
		"methods": []string{"saml2"}, "expires_at": t.ExpiresAt.Format("2006-01-02T15:04:05.000000Z"),
		"user":    map[string]any{"id": t.User.ID, "name": t.User.Name, "OS-FEDERATION": map[string]any{"identity_provider": map[string]string{"id": "idp1"}, "protocol": map[string]string{"id": "saml2"}}},
		"project": map[string]any{"id": t.Project.ID},
	}})
}

func (sp *SP) token(r *http.Request) (keystone.Token, bool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	t, ok := sp.tokens[r.Header.Get("X-Auth-Token")]
	return t, ok && sp.Now().Before(t.ExpiresAt)
}

func (sp *SP) listProjects(w http.ResponseWriter, r *http.Request) {
	if _, ok := sp.token(r); !ok {
		http.Error(w, `{"error": {"code": 401, "message": "invalid token"}}`, http.StatusUnauthorized)
		return
	}
	sp.count("projects")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"projects": sp.Projects, "links": map[string]any{"self": r.URL.String(), "next": nil, "previous": nil}})
}

func (sp *SP) rescope(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		Auth struct {
			Identity struct {
				Methods []string `json:"methods"`
				Token   struct {
					ID string `json:"id"`
				} `json:"token"`
			} `json:"identity"`
			Scope struct {
				Project struct {
					ID string `json:"id"`
				} `json:"project"`
			} `json:"scope"`
		} `json:"auth"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Auth.Identity.Methods) != 1 || req.Auth.Identity.Methods[0] != "token" {
		http.Error(w, `{"error": {"code": 400, "message": "bad request"}}`, http.StatusBadRequest)
		return
	}
	sp.mu.Lock()
	t, ok := sp.tokens[req.Auth.Identity.Token.ID]
	sp.mu.Unlock()
	if !ok || !sp.Now().Before(t.ExpiresAt) {
		http.Error(w, `{"error": {"code": 401, "message": "invalid token"}}`, http.StatusUnauthorized)
		return
	}
	allowed := false
	for _, p := range sp.Projects {
		allowed = allowed || p.ID == req.Auth.Scope.Project.ID
	}
	if !allowed {
		http.Error(w, `{"error": {"code": 401, "message": "no access to project"}}`, http.StatusUnauthorized)
		return
	}
	t.Project.ID = req.Auth.Scope.Project.ID
	sp.count("scoped")
	sp.issue(w, t)
}

func random() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
