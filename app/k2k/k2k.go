// Package k2k turns a user's token at the local Keystone into a token at a service
// provider (SP), the way keystoneauth's Keystone2Keystone plugin does, so that any
// Keystone SP behind Shibboleth or mellon accepts it:
//
//  1. POST {local}/auth/OS-FEDERATION/saml2/ecp: a signed SAML assertion in a SOAP
//     envelope, for the user's project-scoped token and the SP's id;
//  2. POST the envelope to the SP's sp_url (PAOS), redirects not followed, cookies
//     kept; on 302/303, GET the SP's auth_url with those cookies: an unscoped token;
//  3. GET {sp}/auth/projects, then POST {sp}/auth/tokens to scope to a project.
//
// The user's token goes to the local Keystone only; the SP sees the assertion.
// Unscoped tokens, project lists and scoped tokens are cached per SP, user token
// and project, until shortly before they expire.
package k2k

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mixmatch/app/apierr"
	"mixmatch/app/config"
	"mixmatch/app/keystone"
	"mixmatch/app/tokencache"
)

// Errors whose status is known where they arise.
var (
	// ErrNoProjectScope: the ECP call needs a project-scoped token.
	ErrNoProjectScope = apierr.New(http.StatusForbidden, "K2K needs a project-scoped token")
	// ErrNoProjects: the user may scope to no project at the SP.
	ErrNoProjects = apierr.New(http.StatusForbidden, "the user has no project at the service provider")
	// ErrUnknownSP: the local Keystone has no such service provider, or it is
	// disabled; a deployment mistake, not the user's.
	ErrUnknownSP = apierr.New(http.StatusBadGateway, "the local Keystone has no enabled service provider of that id")
)

// Scoped is a token valid at a service provider.
type Scoped struct {
	Token     string    `json:"token"`
	ProjectID string    `json:"project_id"`
	ExpiresAt time.Time `json:"expires_at"`
	// Refused is the SP's refusal to scope the user to the project, cached for
	// RefusedTTL so that repeated calls do not each cost a rescope.
	Refused bool `json:"refused,omitempty"`
}

type unscoped struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	// BaseURL is the SP Keystone's v3 endpoint.
	BaseURL string `json:"base_url"`
}

// Stats count the work done, for benchmarks and metrics.
type Stats struct {
	Exchanges atomic.Int64 // SAML exchanges: ECP assertion presented to an SP
	Rescopes  atomic.Int64 // scoped tokens issued by SPs
}

// Options configure an Exchanger.
type Options struct {
	Local *keystone.Client
	// HTTP gives the client of each SP's Keystone (httpclient.Clients.Keystone);
	// required. Its redirect policy and cookie jar are replaced per exchange.
	HTTP func(*config.SP) *http.Client
	// Cache keeps tokens; nil disables caching.
	Cache *tokencache.Cache
	// Margin is how long before a token's expiry it stops being served.
	Margin time.Duration
	// ProjectsTTL bounds how long a user's project list at an SP is kept.
	ProjectsTTL time.Duration
	// RefusedTTL is how long an SP's refusal to scope a user to a project is kept.
	RefusedTTL time.Duration
	// ExchangesPerMinute bounds the SAML exchanges per user token and SP in this
	// process; past it a call is refused with 429 until the minute is over.
	ExchangesPerMinute int
	// VerifyAssertions checks the assertion's signature against the local Keystone's
	// metadata before presenting it, so a wrong [saml] certfile shows here, named,
	// rather than as an opaque refusal at the SP.
	VerifyAssertions bool
	Now              func() time.Time
	Logger           *slog.Logger
}

// Exchanger performs and caches K2K exchanges.
type Exchanger struct {
	o     Options
	Stats Stats

	mu  sync.Mutex
	idp *IdP

	limiter limiter
}

// New builds an Exchanger.
func New(o Options) *Exchanger {
	if o.HTTP == nil {
		// A default would be a client without the SP's TLS options.
		panic("k2k: Options.HTTP is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Margin == 0 {
		o.Margin = 2 * time.Minute
	}
	if o.ProjectsTTL == 0 {
		o.ProjectsTTL = 10 * time.Minute
	}
	if o.RefusedTTL == 0 {
		o.RefusedTTL = 30 * time.Second
	}
	if o.ExchangesPerMinute == 0 {
		o.ExchangesPerMinute = 10
	}
	return &Exchanger{o: o}
}

func key(kind string, sp *config.SP, userToken string, extra ...string) string {
	return strings.Join(append([]string{"k2k", kind, sp.Name, keystone.Hash(userToken)}, extra...), "\x00")
}

// until is the cache expiry of a token: its own less the margin, never past the
// user's local token.
func (e *Exchanger) until(expires time.Time, user *keystone.Token) time.Time {
	t := expires.Add(-e.o.Margin)
	if user.ExpiresAt.Before(t) {
		t = user.ExpiresAt
	}
	return t
}

func cached[T any](ctx context.Context, e *Exchanger, k string, fill func(context.Context) (T, time.Time, error)) (T, error) {
	if e.o.Cache == nil {
		v, _, err := fill(ctx)
		return v, err
	}
	return tokencache.GetJSON(ctx, e.o.Cache, k, fill)
}

// Token returns a token at sp for the user, scoped to project, or to the first
// project the user has there when project is "". Every error carries the status
// the user gets.
func (e *Exchanger) Token(ctx context.Context, sp *config.SP, user *keystone.Token, userToken, project string) (Scoped, error) {
	s, err := e.token(ctx, sp, user, userToken, project)
	if err != nil {
		return Scoped{}, keystone.Classify(err, "K2K authentication at service provider "+sp.Name)
	}
	return s, nil
}

func (e *Exchanger) token(ctx context.Context, sp *config.SP, user *keystone.Token, userToken, project string) (Scoped, error) {
	projects, err := e.projects(ctx, sp, user, userToken)
	if err != nil {
		return Scoped{}, err
	}
	if project == "" {
		project = projects[0].ID
	} else if !has(projects, project) {
		// Asking the SP would cost a rescope, and its refusal would look like a
		// refused token: the user's own project list already answers.
		return Scoped{}, apierr.New(http.StatusForbidden, "the user has no role in project %s at service provider %s", project, sp.Name)
	}
	s, err := cached(ctx, e, key("scoped", sp, userToken, project), func(ctx context.Context) (Scoped, time.Time, error) {
		for attempt := 0; ; attempt++ {
			u, err := e.unscoped(ctx, sp, user, userToken)
			if err != nil {
				return Scoped{}, time.Time{}, err
			}
			id, tok, err := keystone.IssueToken(ctx, e.o.HTTP(sp), u.BaseURL, keystone.RescopeRequest(u.Token, project),
				http.Header{"X-Auth-Token": {u.Token}})
			if keystone.StatusIs(err, http.StatusUnauthorized, http.StatusNotFound) && attempt == 0 {
				// The cached unscoped token was revoked or expired early: exchange again.
				e.forget(ctx, key("unscoped", sp, userToken))
				continue
			}
			if keystone.StatusIs(err, http.StatusUnauthorized) {
				e.o.Logger.Warn("K2K rescope refused", "sp", sp.Name, "project", project,
					"user_token", keystone.ShortHash(userToken), "error", err)
				return Scoped{ProjectID: project, Refused: true}, e.o.Now().Add(e.o.RefusedTTL), nil
			}
			if err != nil {
				return Scoped{}, time.Time{}, fmt.Errorf("while scoping to project %s at %s: %w", project, sp.Name, err)
			}
			e.Stats.Rescopes.Add(1)
			e.o.Logger.Debug("K2K scoped token issued", "sp", sp.Name, "project", project,
				"user_token", keystone.ShortHash(userToken), "expires_at", tok.ExpiresAt)
			return Scoped{Token: id, ProjectID: project, ExpiresAt: tok.ExpiresAt}, e.until(tok.ExpiresAt, user), nil
		}
	})
	if err == nil && s.Refused {
		return Scoped{}, apierr.New(http.StatusForbidden, "service provider %s refused to scope the user to project %s", sp.Name, project)
	}
	return s, err
}

func has(projects []keystone.Project, id string) bool {
	for _, p := range projects {
		if p.ID == id {
			return true
		}
	}
	return false
}

// Projects lists the enabled projects the user may scope to at sp. Every error
// carries the status the user gets.
func (e *Exchanger) Projects(ctx context.Context, sp *config.SP, user *keystone.Token, userToken string) ([]keystone.Project, error) {
	projects, err := e.projects(ctx, sp, user, userToken)
	if err != nil {
		return nil, keystone.Classify(err, "K2K authentication at service provider "+sp.Name)
	}
	return projects, nil
}

func (e *Exchanger) projects(ctx context.Context, sp *config.SP, user *keystone.Token, userToken string) ([]keystone.Project, error) {
	return cached(ctx, e, key("projects", sp, userToken), func(ctx context.Context) ([]keystone.Project, time.Time, error) {
		u, err := e.unscoped(ctx, sp, user, userToken)
		if err != nil {
			return nil, time.Time{}, err
		}
		projects, err := keystone.ListProjects(ctx, e.o.HTTP(sp), u.BaseURL, u.Token)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("while listing the user's projects at %s: %w", sp.Name, err)
		}
		if len(projects) == 0 {
			return nil, time.Time{}, fmt.Errorf("%w %s", ErrNoProjects, sp.Name)
		}
		until := e.until(u.ExpiresAt, user)
		if limit := e.o.Now().Add(e.o.ProjectsTTL); limit.Before(until) {
			until = limit
		}
		return projects, until, nil
	})
}

// Cache is the token cache (nil when caching is off), for its statistics.
func (e *Exchanger) Cache() *tokencache.Cache { return e.o.Cache }

// Forget drops what is cached for a user at sp (project "" for every project): the
// SP's service refused the token, and the next call must exchange anew.
func (e *Exchanger) Forget(ctx context.Context, sp *config.SP, userToken, project string) {
	e.forget(ctx, key("unscoped", sp, userToken))
	e.forget(ctx, key("projects", sp, userToken))
	if project != "" {
		e.forget(ctx, key("scoped", sp, userToken, project))
	}
}

func (e *Exchanger) forget(ctx context.Context, k string) {
	if e.o.Cache != nil {
		_ = e.o.Cache.Forget(ctx, k)
	}
}

func (e *Exchanger) unscoped(ctx context.Context, sp *config.SP, user *keystone.Token, userToken string) (unscoped, error) {
	return cached(ctx, e, key("unscoped", sp, userToken), func(ctx context.Context) (unscoped, time.Time, error) {
		if !e.limiter.allow(key("exchanges", sp, userToken), e.o.ExchangesPerMinute, e.o.Now()) {
			return unscoped{}, time.Time{}, apierr.New(http.StatusTooManyRequests,
				"too many K2K exchanges for this token at service provider %s; try again in a minute", sp.Name)
		}
		u, err := e.exchange(ctx, sp, user, userToken)
		if err != nil {
			e.o.Logger.Warn("K2K exchange failed", "sp", sp.Name, "user_token", keystone.ShortHash(userToken), "error", err)
			return unscoped{}, time.Time{}, err
		}
		return u, e.until(u.ExpiresAt, user), nil
	})
}

// exchange is steps 1 and 2: an assertion from the local Keystone, presented to the SP.
func (e *Exchanger) exchange(ctx context.Context, sp *config.SP, user *keystone.Token, userToken string) (unscoped, error) {
	if user.Project.ID == "" {
		return unscoped{}, ErrNoProjectScope
	}
	record, ok := user.ServiceProvider(sp.SPName)
	if !ok {
		var err error
		if record, err = e.o.Local.ServiceProviderRecord(ctx, sp.SPName); err != nil {
			if keystone.StatusIs(err, http.StatusNotFound, http.StatusForbidden) {
				return unscoped{}, fmt.Errorf("%w: %s (%v)", ErrUnknownSP, sp.SPName, err)
			}
			return unscoped{}, err
		}
	}
	envelope, err := e.ecp(ctx, sp.SPName, userToken)
	if err != nil {
		return unscoped{}, err
	}
	var idp *IdP
	if e.o.VerifyAssertions {
		if idp, err = e.metadata(ctx, false); err != nil {
			return unscoped{}, err
		}
	}
	assertion, err := ParseEnvelope(envelope, idp, record.SPURL, e.o.Now())
	if err != nil && idp != nil && !errors.Is(err, errExpired) {
		// The IdP certificate may have been rotated since the metadata was read.
		if idp, err2 := e.metadata(ctx, true); err2 == nil {
			assertion, err = ParseEnvelope(envelope, idp, record.SPURL, e.o.Now())
		}
	}
	if err != nil {
		return unscoped{}, err
	}
	e.o.Logger.Debug("K2K assertion", "sp", sp.Name, "issuer", assertion.Issuer, "subject", assertion.Subject,
		"project", first(assertion.Attributes["openstack_project"]), "expires", assertion.Expires, "verified", assertion.Verified)

	token, tok, err := e.present(ctx, e.o.HTTP(sp), record, envelope)
	if err != nil {
		return unscoped{}, fmt.Errorf("while presenting the assertion to %s: %w", sp.Name, err)
	}
	e.Stats.Exchanges.Add(1)
	base := record.AuthURL
	if i := strings.Index(base, "/OS-FEDERATION/"); i >= 0 {
		base = base[:i]
	} else if sp.AuthURL != "" {
		base = sp.AuthURL
	}
	return unscoped{Token: token, ExpiresAt: tok.ExpiresAt, BaseURL: strings.TrimRight(base, "/")}, nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// ecp asks the local Keystone for an assertion for the user and the SP.
func (e *Exchanger) ecp(ctx context.Context, spID, userToken string) ([]byte, error) {
	body, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"token"}, "token": map[string]string{"id": userToken}},
		"scope":    map[string]any{"service_provider": map[string]string{"id": spID}},
	}})
	op := "asking the local Keystone for a SAML assertion for " + spID
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.o.Local.AuthURL+"/auth/OS-FEDERATION/saml2/ecp", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := e.o.Local.HTTP.Do(req)
	if err != nil {
		return nil, &keystone.Error{Op: op, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxEnvelope+1))
	if err != nil {
		return nil, &keystone.Error{Op: op, Status: resp.StatusCode, Err: err}
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated:
		return raw, nil
	case http.StatusNotFound, http.StatusForbidden:
		return nil, fmt.Errorf("%w: %s (%s: status %d)", ErrUnknownSP, spID, op, resp.StatusCode)
	case http.StatusUnauthorized:
		return nil, keystone.ErrInvalidToken
	}
	return nil, &keystone.Error{Op: op, Status: resp.StatusCode}
}

// present is step 2: the envelope to sp_url as PAOS, then auth_url with the cookies.
func (e *Exchanger) present(ctx context.Context, base *http.Client, record keystone.ServiceProvider, envelope []byte) (string, *keystone.Token, error) {
	jar, _ := cookiejar.New(nil)
	client := *base
	client.Jar = jar
	// The SP's redirect goes to its auth_url, which must be fetched with the same
	// PAOS content type; net/http would drop it and, on 302, turn POST into GET
	// without it.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, record.SPURL, bytes.NewReader(envelope))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Content-Type", "application/vnd.paos+xml")
	resp, err := client.Do(req)
	if err != nil {
		return "", nil, &keystone.Error{Op: "posting to sp_url " + record.SPURL, Err: err}
	}
	if resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, record.AuthURL, nil)
		if err != nil {
			return "", nil, err
		}
		req.Header.Set("Content-Type", "application/vnd.paos+xml")
		if resp, err = client.Do(req); err != nil {
			return "", nil, &keystone.Error{Op: "getting auth_url " + record.AuthURL, Err: err}
		}
	}
	defer resp.Body.Close()
	op := "federated authentication at " + record.AuthURL
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return "", nil, &keystone.Error{Op: op, Status: resp.StatusCode, Err: err}
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", nil, &keystone.Error{Op: op, Status: resp.StatusCode}
	}
	var out struct {
		Token keystone.Token `json:"token"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", nil, &keystone.Error{Op: op, Status: resp.StatusCode, Err: err}
	}
	token := resp.Header.Get("X-Subject-Token")
	if token == "" {
		return "", nil, &keystone.Error{Op: op, Status: resp.StatusCode, Message: "no X-Subject-Token in the answer"}
	}
	return token, &out.Token, nil
}

// metadata returns the local Keystone's SAML metadata, read once per process (again
// when refresh is set).
func (e *Exchanger) metadata(ctx context.Context, refresh bool) (*IdP, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.idp != nil && !refresh {
		return e.idp, nil
	}
	op := "reading the local Keystone's SAML metadata"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.o.Local.AuthURL+"/OS-FEDERATION/saml2/metadata", nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.o.Local.HTTP.Do(req)
	if err != nil {
		return nil, &keystone.Error{Op: op, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxEnvelope))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, &keystone.Error{Op: op, Status: resp.StatusCode, Err: err}
	}
	idp, err := ParseMetadata(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	e.idp = idp
	return idp, nil
}
