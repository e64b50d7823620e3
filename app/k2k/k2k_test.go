package k2k_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mixmatch/app/apierr"
	"mixmatch/app/config"
	"mixmatch/app/httpclient"
	"mixmatch/app/k2k"
	"mixmatch/app/k2k/k2ktest"
	"mixmatch/app/keystone"
	"mixmatch/app/tokencache"
)

// clock is a settable time for the caches and the stand-ins.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Now().UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) Advance(d time.Duration) { c.t.Add(int64(d)) }

type fixture struct {
	idp   *k2ktest.IdP
	sp    *k2ktest.SP
	cfg   *config.SP
	local *keystone.Client
	ex    *k2k.Exchanger
	clock *clock
}

const userToken = "gAAAAAB-local-user-token-alice"

// clients reach the stand-ins, which have no TLS and no section in a configuration.
var clients = httpclient.New(&config.Config{})

func setup(t *testing.T, verify bool) *fixture {
	t.Helper()
	f := &fixture{clock: newClock()}
	f.idp = k2ktest.NewIdP()
	f.idp.Now = f.clock.Now
	t.Cleanup(f.idp.Close)
	f.sp = k2ktest.NewSP(f.idp.MetadataURL())
	f.sp.Now = f.clock.Now
	t.Cleanup(f.sp.Close)
	f.idp.SPs["remote1"] = keystone.ServiceProvider{ID: "remote1", AuthURL: f.sp.AuthURL(), SPURL: f.sp.SPURL()}
	f.idp.AddUser(userToken, "alice", "a11ce", time.Hour)
	f.cfg = &config.SP{Name: "remote1", SPName: "remote1"}
	f.local = keystone.NewClient(keystone.Options{AuthURL: f.idp.AuthURL(),
		Credentials: keystone.Credentials{Username: "admin", Password: f.idp.ServicePassword, ProjectName: "admin", UserDomainID: "default", ProjectDomainID: "default"},
		Cache:       tokencache.New(tokencache.NewMemory(f.clock.Now), f.clock.Now), CacheTime: 10 * time.Minute, Now: f.clock.Now,
		HTTP: clients.LocalKeystone()})
	f.ex = k2k.New(k2k.Options{Local: f.local, Cache: tokencache.New(tokencache.NewMemory(f.clock.Now), f.clock.Now),
		VerifyAssertions: verify, Now: f.clock.Now, HTTP: clients.Keystone})
	return f
}

func (f *fixture) user(t *testing.T) *keystone.Token {
	t.Helper()
	u, err := f.local.Validate(context.Background(), userToken)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (f *fixture) token(t *testing.T, project string) k2k.Scoped {
	t.Helper()
	s, err := f.ex.Token(context.Background(), f.cfg, f.user(t), userToken, project)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestExchangeThenServeFromCache(t *testing.T) {
	f := setup(t, true)
	first := f.token(t, "")
	if first.ProjectID != f.sp.Projects[0].ID {
		t.Fatalf("scoped to %q, want the user's first project %q", first.ProjectID, f.sp.Projects[0].ID)
	}
	if project, ok := f.sp.ValidToken(first.Token); !ok || project != first.ProjectID {
		t.Fatalf("the SP does not honour the token (%q, %v)", project, ok)
	}
	second := f.token(t, "")
	if second.Token != first.Token {
		t.Fatal("the second call did not come from the cache")
	}
	for op, want := range map[string]int{"assertion": 1, "unscoped": 1, "projects": 1, "scoped": 1} {
		if got := f.sp.Count(op); got != want {
			t.Errorf("SP %s: %d, want %d", op, got, want)
		}
	}
	if n := f.idp.Count("ecp"); n != 1 {
		t.Errorf("ECP assertions asked: %d, want 1", n)
	}
	if n := f.ex.Stats.Exchanges.Load(); n != 1 {
		t.Errorf("exchanges: %d", n)
	}
	// The user's local token went to the local Keystone only.
	for _, r := range f.sp.Received() {
		if strings.Contains(r.Body, userToken) || strings.Contains(strings.Join(flatten(r.Header), " "), userToken) {
			t.Fatalf("the local token reached the SP in %s %s", r.Method, r.Path)
		}
	}
}

func flatten(h map[string][]string) []string {
	var out []string
	for k, vs := range h {
		out = append(out, k+": "+strings.Join(vs, ","))
	}
	return out
}

func TestConcurrentRequestsShareOneExchange(t *testing.T) {
	f := setup(t, true)
	user := f.user(t)
	var wg sync.WaitGroup
	tokens := make(chan string, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := f.ex.Token(context.Background(), f.cfg, user, userToken, "")
			if err != nil {
				t.Error(err)
				return
			}
			tokens <- s.Token
		}()
	}
	wg.Wait()
	close(tokens)
	distinct := map[string]bool{}
	for tok := range tokens {
		distinct[tok] = true
	}
	if len(distinct) != 1 || f.sp.Count("assertion") != 1 || f.sp.Count("scoped") != 1 {
		t.Fatalf("%d distinct tokens, %d assertions, %d scoped tokens; want 1 each",
			len(distinct), f.sp.Count("assertion"), f.sp.Count("scoped"))
	}
}

// After the SP's service refuses a cached token (401), Forget makes the next call
// exchange anew.
func TestForgetAfterTheSPRefusesAToken(t *testing.T) {
	f := setup(t, true)
	old := f.token(t, "")
	f.sp.Revoke()
	if _, ok := f.sp.ValidToken(old.Token); ok {
		t.Fatal("revocation did not work")
	}
	f.ex.Forget(context.Background(), f.cfg, userToken, old.ProjectID)
	fresh := f.token(t, "")
	if fresh.Token == old.Token {
		t.Fatal("Forget did not drop the token")
	}
	if _, ok := f.sp.ValidToken(fresh.Token); !ok || f.ex.Stats.Exchanges.Load() != 2 {
		t.Fatalf("fresh token valid=%v after %d exchanges", ok, f.ex.Stats.Exchanges.Load())
	}
}

// A cached unscoped token that the SP no longer honours is replaced once, within
// the same call.
func TestRescopeRetriesWithAFreshExchange(t *testing.T) {
	f := setup(t, true)
	if _, err := f.ex.Projects(context.Background(), f.cfg, f.user(t), userToken); err != nil {
		t.Fatal(err)
	}
	f.sp.Revoke()
	s := f.token(t, f.sp.Projects[0].ID)
	if _, ok := f.sp.ValidToken(s.Token); !ok || f.ex.Stats.Exchanges.Load() != 2 {
		t.Fatalf("valid=%v after %d exchanges, want a valid token after 2", ok, f.ex.Stats.Exchanges.Load())
	}
}

func TestRefusedAssertionsNeverReachTheSP(t *testing.T) {
	f := setup(t, true)
	f.idp.AssertionTTL = -time.Minute
	_, err := f.ex.Token(context.Background(), f.cfg, f.user(t), userToken, "")
	if !errors.Is(err, k2k.ErrAssertion) || !strings.Contains(strings.ToLower(err.Error()), "expired") {
		t.Fatalf("expired assertion: %v", err)
	}
	other := k2ktest.NewCert("not-the-idp")
	f.idp.AssertionTTL = time.Hour
	f.idp.SignWith = &other
	_, err = f.ex.Token(context.Background(), f.cfg, f.user(t), userToken, "")
	if !errors.Is(err, k2k.ErrAssertion) || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("assertion signed by another key: %v", err)
	}
	if n := f.sp.Count("assertion"); n != 0 || len(f.sp.Received()) != 0 {
		t.Fatalf("the SP received %d requests", len(f.sp.Received()))
	}
}

// Without mixmatch's own check, the SP's signature check (gosaml2) still refuses.
func TestTheSPVerifiesSignatures(t *testing.T) {
	f := setup(t, false)
	other := k2ktest.NewCert("not-the-idp")
	f.idp.SignWith = &other
	_, err := f.ex.Token(context.Background(), f.cfg, f.user(t), userToken, "")
	if !keystone.StatusIs(err, 401) || f.sp.Count("assertion") != 0 {
		t.Fatalf("got %v, want the SP's 401", err)
	}
}

func TestExchangeRefusals(t *testing.T) {
	f := setup(t, true)
	user := f.user(t)
	unscopedUser := *user
	unscopedUser.Project.ID = ""
	if _, err := f.ex.Token(context.Background(), f.cfg, &unscopedUser, userToken, ""); !errors.Is(err, k2k.ErrNoProjectScope) {
		t.Errorf("unscoped user token: %v", err)
	}
	unknown := &config.SP{Name: "remote9", SPName: "remote9"}
	if _, err := f.ex.Token(context.Background(), unknown, user, userToken, ""); !errors.Is(err, k2k.ErrUnknownSP) {
		t.Errorf("unknown SP: %v", err)
	}
	f.sp.Projects = nil
	if _, err := f.ex.Token(context.Background(), f.cfg, user, userToken, ""); !errors.Is(err, k2k.ErrNoProjects) {
		t.Errorf("no projects at the SP: %v", err)
	}
}

// A remote token is never served past the local token's expiry.
func TestCacheNeverOutlivesTheLocalToken(t *testing.T) {
	f := setup(t, true)
	const short = "gAAAAAB-short-lived"
	f.idp.AddUser(short, "bob", "b0b", 30*time.Second)
	user, err := f.local.Validate(context.Background(), short)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ex.Token(context.Background(), f.cfg, user, short, ""); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(31 * time.Second)
	if _, err := f.ex.Token(context.Background(), f.cfg, user, short, ""); !errors.Is(err, keystone.ErrInvalidToken) {
		t.Fatalf("after the local token expired: %v, want ErrInvalidToken from a new exchange", err)
	}
	if _, err := f.local.Validate(context.Background(), short); !errors.Is(err, keystone.ErrInvalidToken) {
		t.Fatalf("validation after expiry: %v", err)
	}
}

func TestFromConfig(t *testing.T) {
	for _, conf := range []string{
		"[cache]\nbackend = dogpile.cache.memory\n",
		"[cache]\nenabled = false\n",
		"[cache]\nbackend = oslo_cache.memcache_pool\nmemcache_servers = 127.0.0.1:11211\nmemcache_secret_key = s\n",
	} {
		cfg, err := config.Load(strings.NewReader("[sp_default]\nimage_endpoint = http://a:1\nvolume_endpoint = http://a:2\n"+conf), "m.conf")
		if err != nil {
			t.Fatal(err)
		}
		local, ex, err := k2k.FromConfig(cfg, httpclient.New(cfg), nil)
		if err != nil || local == nil || ex == nil {
			t.Fatalf("%q: %v", conf, err)
		}
		if local.AuthURL != "http://127.0.0.1:5000/v3" {
			t.Fatalf("auth_url = %s", local.AuthURL)
		}
	}
}

func TestStatusAndLogsForFailures(t *testing.T) {
	f := setup(t, true)
	var logs strings.Builder
	f.ex = k2k.New(k2k.Options{Local: f.local, VerifyAssertions: true, Now: f.clock.Now, HTTP: clients.Keystone,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	f.idp.AssertionTTL = -time.Minute
	_, err := f.ex.Token(context.Background(), f.cfg, f.user(t), userToken, "")
	if e := apierr.As(err); e.Status != 502 || strings.Contains(e.Message, f.sp.Server.URL) {
		t.Fatalf("expired assertion: %d %q (%v), want 502 naming no URL", e.Status, e.Message, err)
	}
	if !strings.Contains(logs.String(), "K2K exchange failed") || !strings.Contains(logs.String(), keystone.ShortHash(userToken)) {
		t.Fatalf("no reason logged: %q", logs.String())
	}
	if strings.Contains(logs.String(), userToken) {
		t.Fatal("the token is in the log")
	}
	// The SP refusing to scope the user to a project is the user's business: 403.
	f.idp.AssertionTTL = time.Hour
	_, err = f.ex.Token(context.Background(), f.cfg, f.user(t), userToken, "not-my-project")
	if e := apierr.As(err); e.Status != 403 || !strings.Contains(e.Message, "not-my-project") {
		t.Fatalf("scoping to another project: %d %q (%v), want 403", e.Status, e.Message, err)
	}
	for err, want := range map[error]int{
		keystone.ErrInvalidToken: 401,
		k2k.ErrNoProjectScope:    403,
		k2k.ErrNoProjects:        403,
		k2k.ErrUnknownSP:         502,
		context.DeadlineExceeded: 504,
		keystone.Classify(&keystone.Error{Op: "posting to sp_url http://sp/ECP", Status: 500}, "the SP"): 502,
		keystone.Classify(context.DeadlineExceeded, "the SP"):                                            504,
	} {
		if got := apierr.As(fmt.Errorf("wrapped: %w", err)).Status; got != want {
			t.Errorf("status of %v = %d, want %d", err, got, want)
		}
	}
}

// A project the user has no role in is refused from the user's cached project
// list: no rescope, no new exchange, and the user's good tokens stay cached.
func TestForeignProjectsCostNothingAtTheSP(t *testing.T) {
	f := setup(t, true)
	own := f.token(t, "")
	for i := 0; i < 20; i++ {
		_, err := f.ex.Token(context.Background(), f.cfg, f.user(t), userToken, "not-my-project")
		if e := apierr.As(err); e.Status != 403 {
			t.Fatalf("call %d: %d %v, want 403", i, e.Status, err)
		}
	}
	if a, s, p := f.sp.Count("assertion"), f.sp.Count("scoped"), f.sp.Count("projects"); a != 1 || s != 1 || p != 1 {
		t.Fatalf("%d assertions, %d rescopes, %d project lists at the SP; want 1 each", a, s, p)
	}
	if again := f.token(t, own.ProjectID); again.Token != own.Token {
		t.Fatal("the user's valid token was evicted")
	}
}

// An SP that refuses to scope the user to a project it listed is asked again
// only after RefusedTTL.
func TestARefusedRescopeIsCachedBriefly(t *testing.T) {
	f := setup(t, true)
	listed := f.sp.Projects[0].ID
	if _, err := f.ex.Projects(context.Background(), f.cfg, f.user(t), userToken); err != nil {
		t.Fatal(err)
	}
	kept := f.sp.Projects
	f.sp.Projects = f.sp.Projects[1:] // the role goes after the list was read
	for i := 0; i < 5; i++ {
		_, err := f.ex.Token(context.Background(), f.cfg, f.user(t), userToken, listed)
		if e := apierr.As(err); e.Status != 403 {
			t.Fatalf("call %d: %d %v, want 403", i, e.Status, err)
		}
	}
	if n := f.ex.Stats.Exchanges.Load(); n != 2 {
		t.Fatalf("%d exchanges; want the first and one retry", n)
	}
	f.sp.Projects = kept
	f.clock.Advance(31 * time.Second)
	if s := f.token(t, listed); s.ProjectID != listed {
		t.Fatalf("after RefusedTTL: %+v", s)
	}
}

// A token every SP service keeps refusing makes every call need an exchange;
// they are bounded per user token and SP per minute.
func TestExchangesAreBoundedPerMinute(t *testing.T) {
	f := setup(t, true)
	ctx := context.Background()
	for i := 1; i <= 11; i++ {
		f.ex.Forget(ctx, f.cfg, userToken, "")
		_, err := f.ex.Token(ctx, f.cfg, f.user(t), userToken, "")
		switch e := apierr.As(err); {
		case i <= 10 && err != nil:
			t.Fatalf("exchange %d: %v", i, err)
		case i == 11 && e.Status != 429:
			t.Fatalf("exchange 11: %d %v, want 429", e.Status, err)
		}
	}
	if n := f.sp.Count("assertion"); n != 10 {
		t.Fatalf("%d assertions presented, want 10", n)
	}
	f.clock.Advance(61 * time.Second)
	f.ex.Forget(ctx, f.cfg, userToken, "")
	f.token(t, "")
}
