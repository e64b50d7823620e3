// Package keystone talks to Keystone v3: issuing tokens (mixmatch's own, and rescoped
// ones at a service provider), validating users' tokens, and listing the projects a
// token may scope to.
package keystone

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Token is what mixmatch needs of a token body ({"token": {...}}).
type Token struct {
	ExpiresAt time.Time `json:"expires_at"`
	User      struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Domain struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"domain"`
	} `json:"user"`
	// Project is empty for unscoped, domain- and system-scoped tokens.
	Project struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Domain struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"domain"`
	} `json:"project"`
	Roles []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"roles"`
	ServiceProviders []ServiceProvider `json:"service_providers"`
}

// ServiceProvider is an entry of a token's service_providers: a K2K target.
type ServiceProvider struct {
	ID      string `json:"id"`
	AuthURL string `json:"auth_url"`
	SPURL   string `json:"sp_url"`
}

// ServiceProvider finds a K2K target by its id in the local Keystone.
func (t *Token) ServiceProvider(id string) (ServiceProvider, bool) {
	for _, sp := range t.ServiceProviders {
		if sp.ID == id {
			return sp, true
		}
	}
	return ServiceProvider{}, false
}

// Project is an entry of GET /v3/auth/projects.
type Project struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	DomainID string `json:"domain_id"`
	Enabled  bool   `json:"enabled"`
}

// Error is a Keystone answer other than the one expected. Status is the HTTP
// status, or 0 when Keystone could not be reached.
type Error struct {
	Op      string // what was asked, e.g. "validating a token at http://..."
	Status  int
	Message string
	Err     error
}

func (e *Error) Error() string {
	switch {
	case e.Err != nil:
		return fmt.Sprintf("%s: %v", e.Op, e.Err)
	case e.Message != "":
		return fmt.Sprintf("%s: %d %s", e.Op, e.Status, e.Message)
	}
	return fmt.Sprintf("%s: status %d", e.Op, e.Status)
}

func (e *Error) Unwrap() error { return e.Err }

// StatusIs reports whether err is a Keystone answer with one of the statuses.
func StatusIs(err error, statuses ...int) bool {
	var ke *Error
	if !errors.As(err, &ke) {
		return false
	}
	for _, s := range statuses {
		if ke.Status == s {
			return true
		}
	}
	return false
}

// Hash is the short form of a token for logs and cache keys: the token itself is
// never logged.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ShortHash is the first 12 hex digits of Hash, enough to follow a token in logs.
func ShortHash(token string) string { return Hash(token)[:12] }

// maxBody bounds what mixmatch reads of a Keystone answer; a catalog-less token of a
// user with many roles is a few KiB.
const maxBody = 4 << 20

// call sends one request and decodes a JSON answer of the wanted status into out.
// It returns the response headers.
func call(ctx context.Context, client *http.Client, op, method, url string, headers http.Header, in, out any, want int) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, &Error{Op: op, Err: err}
	}
	for k, v := range headers {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, &Error{Op: op, Err: stripURL(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, &Error{Op: op, Status: resp.StatusCode, Err: err}
	}
	if resp.StatusCode != want {
		return resp.Header, &Error{Op: op, Status: resp.StatusCode, Message: errorMessage(raw)}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.Header, &Error{Op: op, Status: resp.StatusCode, Err: fmt.Errorf("undecodable answer: %w", err)}
		}
	}
	return resp.Header, nil
}

// errorMessage extracts {"error": {"message": ...}} for logs, bounded.
func errorMessage(raw []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
		return truncate(e.Error.Message, 200)
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// stripURL drops the "Post http://...:" prefix of a failed round trip: the Op
// already names the endpoint, and a URL may carry more than it should.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// tokenRequest is the body of POST /v3/auth/tokens.
type tokenRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string        `json:"methods"`
			Password *passwordMethod `json:"password,omitempty"`
			Token    *tokenMethod    `json:"token,omitempty"`
		} `json:"identity"`
		Scope any `json:"scope,omitempty"`
	} `json:"auth"`
}

type passwordMethod struct {
	User struct {
		Name     string          `json:"name"`
		Password string          `json:"password"`
		Domain   json.RawMessage `json:"domain"`
	} `json:"user"`
}

type tokenMethod struct {
	ID string `json:"id"`
}

// ref is {"id": ...} or {"name": ...}, as Keystone takes domains and projects.
func ref(id, name string) json.RawMessage {
	var b []byte
	if id != "" {
		b, _ = json.Marshal(map[string]string{"id": id})
	} else {
		b, _ = json.Marshal(map[string]string{"name": name})
	}
	return b
}

// RescopeRequest is the token-method body that exchanges a token for one scoped to
// a project.
func RescopeRequest(token, projectID string) any {
	var r tokenRequest
	r.Auth.Identity.Methods = []string{"token"}
	r.Auth.Identity.Token = &tokenMethod{ID: token}
	r.Auth.Scope = map[string]any{"project": map[string]string{"id": projectID}}
	return r
}

// IssueToken posts a token request to a Keystone v3 endpoint and returns the token id
// (from X-Subject-Token) and its body.
func IssueToken(ctx context.Context, client *http.Client, baseURL string, req any, headers http.Header) (string, *Token, error) {
	var out struct {
		Token Token `json:"token"`
	}
	h, err := call(ctx, client, "issuing a token at "+baseURL, http.MethodPost,
		baseURL+"/auth/tokens?nocatalog", headers, req, &out, http.StatusCreated)
	if err != nil {
		return "", nil, err
	}
	id := h.Get("X-Subject-Token")
	if id == "" {
		return "", nil, &Error{Op: "issuing a token at " + baseURL, Status: http.StatusCreated, Message: "no X-Subject-Token in the answer"}
	}
	return id, &out.Token, nil
}

// ListProjects returns the projects a token may scope to (GET /v3/auth/projects).
func ListProjects(ctx context.Context, client *http.Client, baseURL, token string) ([]Project, error) {
	var out struct {
		Projects []Project `json:"projects"`
	}
	_, err := call(ctx, client, "listing projects at "+baseURL, http.MethodGet, baseURL+"/auth/projects",
		http.Header{"X-Auth-Token": {token}}, nil, &out, http.StatusOK)
	if err != nil {
		return nil, err
	}
	enabled := out.Projects[:0]
	for _, p := range out.Projects {
		if p.Enabled {
			enabled = append(enabled, p)
		}
	}
	return enabled, nil
}
