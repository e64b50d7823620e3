package k2k_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"mixmatch/app/config"
	"mixmatch/app/k2k"
	"mixmatch/app/k2k/k2ktest"
	"mixmatch/app/keystone"
	"mixmatch/app/tokencache"
)

// realKeystone is Debian's keystone started by scripts/keystone.sh, once for the
// package and stopped by TestMain.
var realKeystone struct {
	once sync.Once
	dir  string
	env  map[string]string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if realKeystone.dir != "" {
		exec.Command("../../scripts/keystone.sh", "stop", realKeystone.dir).Run()
		os.RemoveAll(realKeystone.dir)
	}
	os.Exit(code)
}

func startKeystone(t *testing.T) map[string]string {
	t.Helper()
	realKeystone.once.Do(func() {
		dir, err := os.MkdirTemp("", "mixmatch-keystone-")
		if err != nil {
			realKeystone.err = err
			return
		}
		realKeystone.dir = dir
		var stderr bytes.Buffer
		cmd := exec.Command("../../scripts/keystone.sh", "start", dir)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			realKeystone.err = fmt.Errorf("scripts/keystone.sh start: %v\n%s", err, stderr.String())
			return
		}
		realKeystone.env = map[string]string{}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				realKeystone.env[k] = v
			}
		}
	})
	if realKeystone.err != nil {
		t.Fatal(realKeystone.err)
	}
	return realKeystone.env
}

func passwordToken(t *testing.T, url, user, password, project string) string {
	t.Helper()
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{
			"name": user, "domain": map[string]string{"id": "default"}, "password": password}}},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": map[string]string{"id": "default"}}}}}
	id, _, err := keystone.IssueToken(context.Background(), http.DefaultClient, url, body, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// The whole exchange against Debian's keystone: real token validation, a real
// signed assertion parsed and verified (by mixmatch and by the SP, with gosaml2),
// a scoped token at the SP, then the same token from the cache.
func TestK2KWithRealKeystone(t *testing.T) {
	env := startKeystone(t)
	url := env["KEYSTONE_URL"]
	ctx := context.Background()

	sp := k2ktest.NewSP(url + "/OS-FEDERATION/saml2/metadata")
	defer sp.Close()
	admin := passwordToken(t, url, "admin", env["KEYSTONE_ADMIN_PASSWORD"], "admin")
	spID := fmt.Sprintf("sp-%d", time.Now().UnixNano())
	req, _ := http.NewRequest(http.MethodPut, url+"/OS-FEDERATION/service_providers/"+spID, strings.NewReader(fmt.Sprintf(
		`{"service_provider": {"auth_url": %q, "sp_url": %q, "enabled": true}}`, sp.AuthURL(), sp.SPURL())))
	req.Header.Set("X-Auth-Token", admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("registering the SP: %v %v", resp, err)
	}
	resp.Body.Close()

	demo := passwordToken(t, url, env["KEYSTONE_DEMO_USER"], env["KEYSTONE_DEMO_PASSWORD"], "demo")
	local := keystone.NewClient(keystone.Options{AuthURL: url,
		Credentials: keystone.Credentials{Username: "admin", Password: env["KEYSTONE_ADMIN_PASSWORD"],
			ProjectName: "admin", UserDomainID: "default", ProjectDomainID: "default"},
		Cache: tokencache.New(tokencache.NewMemory(nil), nil), CacheTime: 10 * time.Minute, HTTP: clients.LocalKeystone()})
	user, err := local.Validate(ctx, demo)
	if err != nil {
		t.Fatal(err)
	}
	if user.Project.ID != env["KEYSTONE_DEMO_PROJECT_ID"] || user.User.Name != "demo" {
		t.Fatalf("validated token: %+v", user)
	}
	if _, ok := user.ServiceProvider(spID); !ok {
		t.Fatalf("the token lists no service provider %s: %+v", spID, user.ServiceProviders)
	}
	if _, err := local.Validate(ctx, "gAAAAAB-not-a-token"); !errors.Is(err, keystone.ErrInvalidToken) {
		t.Fatalf("validating garbage: %v", err)
	}

	ex := k2k.New(k2k.Options{Local: local, Cache: tokencache.New(tokencache.NewMemory(nil), nil), VerifyAssertions: true,
		HTTP: clients.Keystone})
	target := &config.SP{Name: "remote1", SPName: spID}
	scoped, err := ex.Token(ctx, target, user, demo, "")
	if err != nil {
		t.Fatal(err)
	}
	if project, ok := sp.ValidToken(scoped.Token); !ok || project != sp.Projects[0].ID {
		t.Fatalf("the SP does not honour the scoped token (%q, %v)", project, ok)
	}
	again, err := ex.Token(ctx, target, user, demo, "")
	if err != nil || again.Token != scoped.Token {
		t.Fatalf("second call: %v, same token %v", err, again.Token == scoped.Token)
	}
	if sp.Count("assertion") != 1 || ex.Stats.Exchanges.Load() != 1 {
		t.Fatalf("%d assertions presented, %d exchanges; want 1 each", sp.Count("assertion"), ex.Stats.Exchanges.Load())
	}
	for _, r := range sp.Received() {
		if strings.Contains(r.Body, demo) || strings.Contains(fmt.Sprint(r.Header), demo) {
			t.Fatalf("the local token reached the SP in %s %s", r.Method, r.Path)
		}
	}
}
