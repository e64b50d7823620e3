package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"mixmatch/app/config"
	"mixmatch/app/fakecloud"
	"mixmatch/app/k2k"
	"mixmatch/app/keystone"
	"mixmatch/app/proxy"
)

const (
	novaService  = "nova-service-token" // Nova's, with the service role
	userAsSvc    = "a-users-token"      // valid, without it
	mixmatchOwn  = "mixmatch-own-token" // mixmatch's [auth] account
	serverID     = "5d0c6f3e-1b2a-4c3d-8e4f-0a1b2c3d4e5f"
	novaVersion  = "volume 3.44"
	k2kServiceAt = "k2k-service-"
)

// tokenWithRoles is a validated token of a project with roles.
func tokenWithRoles(project string, roles ...string) *keystone.Token {
	var named []map[string]string
	for _, r := range roles {
		named = append(named, map[string]string{"id": r, "name": r})
	}
	raw, _ := json.Marshal(map[string]any{"expires_at": "2099-01-01T00:00:00Z", "project": map[string]string{"id": project}, "roles": named})
	var t keystone.Token
	if err := json.Unmarshal(raw, &t); err != nil {
		panic(err)
	}
	return &t
}

// serviceAuth is the local Keystone: the user, Nova's service user, a user whose
// token comes as a service token, and mixmatch itself.
func serviceAuth() auth {
	a := testAuth()
	a[novaService] = tokenWithRoles("5e", "service")
	a[userAsSvc] = tokenWithRoles("8a1e", "member")
	a[mixmatchOwn] = tokenWithRoles("ad", "admin")
	return a
}

// ownAccount is mixmatch's [auth] account.
type ownAccount struct{}

func (ownAccount) ServiceToken(context.Context) (string, error) { return mixmatchOwn, nil }

// serviceTokens gives mixmatch's own account a token of its own at each SP.
type serviceTokens struct{ tokens }

func (s serviceTokens) Token(ctx context.Context, sp *config.SP, user *keystone.Token, userToken, project string) (k2k.Scoped, error) {
	if userToken == mixmatchOwn {
		return k2k.Scoped{Token: k2kServiceAt + sp.Name, ProjectID: "5e"}, nil
	}
	return s.tokens.Token(ctx, sp, user, userToken, project)
}

func withService(a proxy.ServiceAccount) option { return func(c *setupConfig) { c.deps.Service = a } }

// attach reserves, connects and completes an attachment of a volume through
// mixmatch, as Nova does, and returns its id.
func attach(t *testing.T, s *setup, volume string) string {
	t.Helper()
	rec := s.do(t, "POST", "/volume/v3/8a1e/attachments", strings.NewReader(`{"attachment": {"volume_uuid": "`+volume+
		`", "instance_uuid": "`+serverID+`", "connector": {"host": "compute1"}}}`), "OpenStack-API-Version", novaVersion)
	if rec.Code != 200 {
		t.Fatalf("reserve: %d %s", rec.Code, rec.Body)
	}
	id := createdID(t, rec, "attachment")
	if rec := s.do(t, "POST", "/volume/v3/8a1e/attachments/"+id+"/action", strings.NewReader(`{"os-complete": null}`),
		"OpenStack-API-Version", novaVersion); rec.Code != 204 {
		t.Fatalf("os-complete: %d %s", rec.Code, rec.Body)
	}
	return id
}

func detach(s *setup, t *testing.T, id string, headers ...string) int {
	return s.do(t, "DELETE", "/volume/v3/8a1e/attachments/"+id, nil, append([]string{"OpenStack-API-Version", novaVersion}, headers...)...).Code
}

// Cinder 21 lets only a service delete an attachment Nova holds: Nova's service
// token must reach the local Cinder as it came.
func TestNovaDetachesALocalVolume(t *testing.T) {
	s := newSetup(t, withCloud("default", func(o *fakecloud.Options) {
		o.ServiceTokens = func(tok string) ([]string, bool) { return []string{"service"}, tok == novaService }
	}))
	s.backends["default"].Add(fakecloud.Volumes, "", parentVolume, nil)
	id := attach(t, s, parentVolume)
	if code := detach(s, t, id); code != 409 {
		t.Fatalf("a detach without a service token: %d, want Cinder's 409", code)
	}
	if code := detach(s, t, id, "X-Service-Token", novaService); code != 200 {
		t.Fatalf("Nova's detach: %d", code)
	}
	if got := lastCall(s, "default"); got.ServiceToken != novaService {
		t.Fatalf("the local cloud got service token %q", got.ServiceToken)
	}
}

// A remote cloud never sees the local service token. With service_token = k2k it
// gets mixmatch's own token there for a caller whose service token has the service
// role, so Nova detaches a remote volume that cloud's Nova would hold; without
// it, nothing.
func TestARemoteCloudGetsMixmatchsServiceToken(t *testing.T) {
	s := newSetup(t, withAuth(serviceAuth()), withTokens(serviceTokens{}), withService(ownAccount{}),
		withSPOptionAt("remote1", "service_token", "k2k"),
		withCloud("remote1", func(o *fakecloud.Options) {
			o.ServiceTokens = func(tok string) ([]string, bool) { return []string{"service"}, tok == k2kServiceAt+"remote1" }
		}))
	mapAt(t, s, fakecloud.Volumes, "remote1", "feed", parentVolume, nil)
	mapAt(t, s, fakecloud.Volumes, "remote2", "beef", otherVolume, nil)
	id := attach(t, s, parentVolume)
	calls := len(s.backends["remote1"].Received())
	if code := detach(s, t, id, "X-Service-Token", "forged"); code != 401 || len(s.backends["remote1"].Received()) != calls {
		t.Fatalf("an invalid service token: %d, and remote1 was asked", code)
	}
	if code := detach(s, t, id, "X-Service-Token", userAsSvc); code != 409 || lastCall(s, "remote1").ServiceToken != "" {
		t.Fatalf("a user's token as a service token: %d; remote1 got %q", code, lastCall(s, "remote1").ServiceToken)
	}
	if code := detach(s, t, id, "X-Service-Token", novaService); code != 200 || lastCall(s, "remote1").ServiceToken != k2kServiceAt+"remote1" {
		t.Fatalf("Nova's detach: %d; remote1 got %q", code, lastCall(s, "remote1").ServiceToken)
	}
	rec := s.do(t, "GET", "/volume/v3/8a1e/volumes/"+otherVolume, nil, "X-Service-Token", novaService)
	if rec.Code != 200 || lastCall(s, "remote2").ServiceToken != "" {
		t.Fatalf("remote2 (service_token = none): %d; got %q", rec.Code, lastCall(s, "remote2").ServiceToken)
	}
	for _, sp := range []string{"remote1", "remote2"} {
		for _, c := range s.backends[sp].Received() {
			if c.Token == mixmatchOwn || c.ServiceToken == novaService || c.ServiceToken == mixmatchOwn ||
				strings.Contains(fmt.Sprint(c.Header), novaService) {
				t.Fatalf("%s got a local token: %s %s %v", sp, c.Method, c.Path, c.Header)
			}
		}
	}
}
