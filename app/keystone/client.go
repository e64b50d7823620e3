package keystone

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"mixmatch/app/apierr"
	"mixmatch/app/tokencache"
)

// ErrInvalidToken is a user token the local Keystone does not accept.
var ErrInvalidToken = apierr.New(http.StatusUnauthorized, "the token is invalid or has expired")

// Credentials are mixmatch's own account in the local Keystone ([auth]).
type Credentials struct {
	Username, Password                 string
	ProjectName                        string
	UserDomainID, UserDomainName       string
	ProjectDomainID, ProjectDomainName string
}

// Client talks to the local (IdP) Keystone.
type Client struct {
	// AuthURL is the v3 endpoint, without a trailing slash.
	AuthURL string
	HTTP    *http.Client
	creds   Credentials
	// cache holds validations; nil disables caching.
	cache     *tokencache.Cache
	cacheTime time.Duration
	now       func() time.Time

	mu         sync.Mutex
	service    string
	serviceExp time.Time
	renew      singleflight.Group
}

// Options configure a Client.
type Options struct {
	AuthURL     string
	Credentials Credentials
	// HTTP is the client of the local Keystone (httpclient.Clients.LocalKeystone);
	// required.
	HTTP *http.Client
	// Cache keeps validations for at most CacheTime, never past the token's expiry.
	Cache     *tokencache.Cache
	CacheTime time.Duration
	Now       func() time.Time
}

// NewClient builds a client of the local Keystone.
func NewClient(o Options) *Client {
	if o.HTTP == nil {
		// A default would be a client without [auth]'s TLS options.
		panic("keystone: Options.HTTP is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Client{AuthURL: o.AuthURL, HTTP: o.HTTP, creds: o.Credentials, cache: o.Cache,
		cacheTime: o.CacheTime, now: o.Now}
}

// renewBefore is how long before its expiry mixmatch's own token is replaced, so
// that no request carries a token that expires on its way.
const renewBefore = 5 * time.Minute

// ServiceToken returns mixmatch's own project-scoped token, renewing it before it
// expires; concurrent callers share one renewal.
func (c *Client) ServiceToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	tok, exp := c.service, c.serviceExp
	c.mu.Unlock()
	if tok != "" && c.now().Add(renewBefore).Before(exp) {
		return tok, nil
	}
	// The renewal serves every waiter, so no one caller's cancellation stops it; it
	// has its own bound, and each caller waits no longer than its own context allows.
	ch := c.renew.DoChan("", func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewTimeout)
		defer cancel()
		return c.issueServiceToken(rctx)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(string), nil
	case <-ctx.Done():
		return "", apierr.Wrap(http.StatusGatewayTimeout, fmt.Errorf("getting mixmatch's own token at %s: %w", c.AuthURL, ctx.Err()),
			"the local Keystone did not answer in time")
	}
}

// renewTimeout bounds one renewal of mixmatch's own token, whoever waits for it.
const renewTimeout = 30 * time.Second

func (c *Client) issueServiceToken(ctx context.Context) (string, error) {
	var r tokenRequest
	r.Auth.Identity.Methods = []string{"password"}
	p := &passwordMethod{}
	r.Auth.Identity.Password = p
	p.User.Name, p.User.Password = c.creds.Username, c.creds.Password
	p.User.Domain = ref(c.creds.UserDomainID, c.creds.UserDomainName)
	r.Auth.Scope = map[string]any{"project": map[string]any{"name": c.creds.ProjectName,
		"domain": ref(c.creds.ProjectDomainID, c.creds.ProjectDomainName)}}
	id, tok, err := IssueToken(ctx, c.HTTP, c.AuthURL, r, nil)
	if StatusIs(err, http.StatusUnauthorized) {
		// Every user's call fails on this until an operator mends mixmatch.conf.
		return "", apierr.Wrap(http.StatusBadGateway, err,
			"the local Keystone refused mixmatch's own credentials ([auth] in mixmatch.conf)")
	}
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.service, c.serviceExp = id, tok.ExpiresAt
	c.mu.Unlock()
	return id, nil
}

func (c *Client) forgetServiceToken(tok string) {
	c.mu.Lock()
	if c.service == tok {
		c.service = ""
	}
	c.mu.Unlock()
}

// Validate returns the body of a user's token, or an error wrapping ErrInvalidToken.
// With no service password configured the token validates itself, which Keystone's
// default policy allows. Every error carries the status the user gets.
func (c *Client) Validate(ctx context.Context, userToken string) (*Token, error) {
	tok, err := c.validateCached(ctx, userToken)
	if err != nil {
		return nil, Classify(err, "the local Keystone")
	}
	return tok, nil
}

// Classify gives a failure between mixmatch and a Keystone that no one classified
// nearer its cause its status: 504 when it timed out, else 502. who names the
// Keystone for the client, never by its internal URL.
func Classify(err error, who string) error {
	var e *apierr.Error
	switch {
	case errors.As(err, &e):
		return err
	case errors.Is(err, context.DeadlineExceeded) || apierr.IsTimeout(err):
		return apierr.Wrap(http.StatusGatewayTimeout, err, "%s did not answer in time", who)
	}
	return apierr.Wrap(http.StatusBadGateway, err, "%s failed", who)
}

func (c *Client) validateCached(ctx context.Context, userToken string) (*Token, error) {
	if userToken == "" {
		return nil, ErrInvalidToken
	}
	if c.cache == nil {
		return c.validate(ctx, userToken)
	}
	tok, err := tokencache.GetJSON(ctx, c.cache, "validate\x00"+Hash(userToken),
		func(ctx context.Context) (*Token, time.Time, error) {
			tok, err := c.validate(ctx, userToken)
			if err != nil {
				return nil, time.Time{}, err
			}
			expires := tok.ExpiresAt
			if limit := c.now().Add(c.cacheTime); limit.Before(expires) {
				expires = limit
			}
			return tok, expires, nil
		})
	if err != nil {
		return nil, err
	}
	if !c.now().Before(tok.ExpiresAt) {
		return nil, ErrInvalidToken
	}
	return tok, nil
}

func (c *Client) validate(ctx context.Context, userToken string) (*Token, error) {
	for attempt := 0; ; attempt++ {
		caller := userToken
		if c.creds.Password != "" {
			var err error
			if caller, err = c.ServiceToken(ctx); err != nil {
				return nil, err
			}
		}
		var out struct {
			Token Token `json:"token"`
		}
		_, err := call(ctx, c.HTTP, "validating a token at "+c.AuthURL, http.MethodGet, c.AuthURL+"/auth/tokens?nocatalog",
			http.Header{"X-Auth-Token": {caller}, "X-Subject-Token": {userToken}}, nil, &out, http.StatusOK)
		switch {
		case err == nil:
			return &out.Token, nil
		case StatusIs(err, http.StatusNotFound):
			return nil, ErrInvalidToken
		case StatusIs(err, http.StatusUnauthorized) && caller == userToken:
			return nil, ErrInvalidToken
		case StatusIs(err, http.StatusUnauthorized) && attempt == 0:
			// Our own token was revoked or rotated away: get a new one, once.
			c.forgetServiceToken(caller)
			continue
		}
		return nil, err
	}
}

// ServiceProviderRecord reads a K2K target from the local Keystone, for a user token
// whose service_providers list lacks it.
func (c *Client) ServiceProviderRecord(ctx context.Context, id string) (ServiceProvider, error) {
	tok, err := c.ServiceToken(ctx)
	if err != nil {
		return ServiceProvider{}, err
	}
	var out struct {
		SP struct {
			ServiceProvider
			Enabled bool `json:"enabled"`
		} `json:"service_provider"`
	}
	_, err = call(ctx, c.HTTP, "reading service provider "+id, http.MethodGet,
		c.AuthURL+"/OS-FEDERATION/service_providers/"+url.PathEscape(id),
		http.Header{"X-Auth-Token": {tok}}, nil, &out, http.StatusOK)
	if err != nil {
		return ServiceProvider{}, err
	}
	if !out.SP.Enabled {
		return ServiceProvider{}, &Error{Op: "reading service provider " + id, Status: http.StatusForbidden, Message: "the service provider is disabled"}
	}
	out.SP.ID = id
	return out.SP.ServiceProvider, nil
}
