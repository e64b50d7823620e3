package keystone_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"mixmatch/app/apierr"
	"mixmatch/app/k2k/k2ktest"
	"mixmatch/app/keystone"
	"mixmatch/app/tokencache"
)

func client(idp *k2ktest.IdP, password string, cache *tokencache.Cache, now func() time.Time) *keystone.Client {
	return keystone.NewClient(keystone.Options{AuthURL: idp.AuthURL(), Cache: cache, CacheTime: time.Minute, Now: now, HTTP: http.DefaultClient,
		Credentials: keystone.Credentials{Username: "admin", Password: password, ProjectName: "admin",
			UserDomainID: "default", ProjectDomainID: "default"}})
}

func TestValidateCachesUntilCacheTime(t *testing.T) {
	idp := k2ktest.NewIdP()
	defer idp.Close()
	idp.AddUser("tok-1", "alice", "p1", time.Hour)
	now := time.Now()
	clock := func() time.Time { return now }
	idp.Now = clock
	c := client(idp, idp.ServicePassword, tokencache.New(tokencache.NewMemory(clock), clock), clock)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		tok, err := c.Validate(ctx, "tok-1")
		if err != nil || tok.Project.ID != "p1" || tok.User.Name != "alice" {
			t.Fatalf("Validate = %+v, %v", tok, err)
		}
	}
	if n := idp.Count("validate"); n != 1 {
		t.Fatalf("%d validations at Keystone, want 1", n)
	}
	now = now.Add(61 * time.Second) // past cache_time, within the token's life
	if _, err := c.Validate(ctx, "tok-1"); err != nil || idp.Count("validate") != 2 {
		t.Fatalf("after cache_time: %v, %d validations", err, idp.Count("validate"))
	}
	if n := idp.Count("service-token"); n != 1 {
		t.Fatalf("%d service tokens issued, want 1", n)
	}
}

func TestInvalidTokens(t *testing.T) {
	idp := k2ktest.NewIdP()
	defer idp.Close()
	c := client(idp, idp.ServicePassword, nil, nil)
	for _, tok := range []string{"", "gAAAAAB-unknown"} {
		if _, err := c.Validate(context.Background(), tok); !errors.Is(err, keystone.ErrInvalidToken) {
			t.Errorf("Validate(%q) = %v, want ErrInvalidToken", tok, err)
		}
	}
}

// Without a service password, a token validates itself (Keystone's default policy
// lets a token's subject validate it).
func TestSelfValidation(t *testing.T) {
	idp := k2ktest.NewIdP()
	defer idp.Close()
	idp.AddUser("tok-1", "alice", "p1", time.Hour)
	c := client(idp, "", nil, nil)
	if tok, err := c.Validate(context.Background(), "tok-1"); err != nil || tok.Project.ID != "p1" {
		t.Fatalf("Validate = %+v, %v", tok, err)
	}
	if idp.Count("service-token") != 0 {
		t.Fatal("a service token was issued without a password")
	}
}

func TestServiceTokenRenewedBeforeExpiry(t *testing.T) {
	idp := k2ktest.NewIdP()
	defer idp.Close()
	now := time.Now()
	clock := func() time.Time { return now }
	idp.Now = clock
	c := client(idp, idp.ServicePassword, nil, clock)
	ctx := context.Background()
	if _, err := c.ServiceToken(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(50 * time.Minute) // the stand-in's tokens last an hour
	if _, err := c.ServiceToken(ctx); err != nil || idp.Count("service-token") != 1 {
		t.Fatalf("renewed too early: %d issued", idp.Count("service-token"))
	}
	now = now.Add(6 * time.Minute) // 4 minutes left: inside the renewal window
	if _, err := c.ServiceToken(ctx); err != nil || idp.Count("service-token") != 2 {
		t.Fatalf("not renewed: %d issued, %v", idp.Count("service-token"), err)
	}
}

func TestWrongServicePasswordIsNamed(t *testing.T) {
	idp := k2ktest.NewIdP()
	defer idp.Close()
	idp.AddUser("tok-1", "alice", "p1", time.Hour)
	_, err := client(idp, "wrong", nil, nil).Validate(context.Background(), "tok-1")
	if !keystone.StatusIs(err, 401) || !strings.Contains(err.Error(), "issuing a token at") || errors.Is(err, keystone.ErrInvalidToken) {
		t.Fatalf("got %v, want Keystone's 401 for mixmatch's own account", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatal("the password is in the error")
	}
}

func TestHashesHideTokens(t *testing.T) {
	h := keystone.ShortHash("gAAAAAB-secret")
	if len(h) != 12 || strings.Contains(h, "secret") || keystone.ShortHash("other") == h {
		t.Fatalf("ShortHash = %q", h)
	}
}

// A wrong [auth] password is the operator's to mend, not the user's: every call
// fails with 502 and a message that names the setting and no internal URL.
func TestRefusedServiceCredentialsAreABadGateway(t *testing.T) {
	idp := k2ktest.NewIdP()
	defer idp.Close()
	idp.AddUser("tok-1", "alice", "p1", time.Hour)
	c := client(idp, "not-the-password", nil, nil)
	_, err := c.Validate(context.Background(), "tok-1")
	e := apierr.As(err)
	if e.Status != 502 || !strings.Contains(e.Message, "[auth]") || strings.Contains(e.Message, idp.AuthURL()) {
		t.Fatalf("Validate with a refused service password = %d %q (%v)", e.Status, e.Message, err)
	}
	if !strings.Contains(err.Error(), idp.AuthURL()) {
		t.Fatalf("the log's text lacks the Keystone it asked: %v", err)
	}
}
