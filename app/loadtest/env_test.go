//go:build load

package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3"
	amqp "github.com/rabbitmq/amqp091-go"

	"mixmatch/app/bintest"
	"mixmatch/app/k2k/k2ktest"
	"mixmatch/app/keystone"
	"mixmatch/app/store"
)

const (
	rabbitURL = "amqp://guest:guest@127.0.0.1:5672/"
	// userProject is the project of every user's local token; hex, as Cinder paths need.
	userProject = "a11ce000000040008000000000000001"
	// seedsPerCloud images and as many volumes are in each cloud and mapped before
	// the run: the first targets of mapped GETs, and enough for two full list pages.
	seedsPerCloud = 300
)

// busSPs are the clouds whose notification bus the ingester listens to; remote2
// has none, so its resources are known only from what passes through mixmatch.
var busSPs = []string{"default", "remote1"}

// env is the federation under test: a local Keystone (IdP), two remote Keystones
// (SPs), three clouds' Glance and Cinder, and the real worker and ingester on one
// SQLite file, the ingester fed from the real RabbitMQ.
type env struct {
	dir, conf, dbPath string
	idp               *k2ktest.IdP
	clouds            map[string]*cloud
	users             []string
	remoteProject     string
	// queues and exchanges of each bus SP: [glance-like, openstack-like].
	queues    map[string]string
	exchanges map[string][2]string

	sps map[string]*k2ktest.SP

	db                                        *sqlx.DB
	worker, ingester                          *proc
	workerURL, workerMetrics, ingesterMetrics string
	seeds                                     []resource
}

func newEnv(t *testing.T, events func(sp, kind, id, project string)) *env {
	t.Helper()
	bin := buildBinaries(t)
	e := &env{dir: t.TempDir(), clouds: map[string]*cloud{}, sps: map[string]*k2ktest.SP{}, queues: map[string]string{}, exchanges: map[string][2]string{}}
	e.dbPath = filepath.Join(e.dir, "mixmatch.db")
	e.conf = filepath.Join(e.dir, "mixmatch.conf")

	e.idp = k2ktest.NewIdP()
	t.Cleanup(e.idp.Close)
	for i, name := range []string{"remote1", "remote2"} {
		sp := k2ktest.NewSP(e.idp.MetadataURL())
		t.Cleanup(sp.Close)
		e.sps[name] = sp
		e.idp.SPs[name] = keystone.ServiceProvider{ID: name, AuthURL: sp.AuthURL(), SPURL: sp.SPURL()}
		e.remoteProject = sp.Projects[0].ID
		c := newCloud(name, store.NormalizeID(e.remoteProject), fmt.Sprintf("bcbc000%d", i+1), sp.ValidToken, events)
		t.Cleanup(c.Close)
		e.clouds[name] = c
	}
	// Four users: the token cache and the K2K exchanges are per user token.
	for i := 0; i < 4; i++ {
		tok := fmt.Sprintf("load-user-token-%d", i)
		e.idp.AddUser(tok, fmt.Sprintf("user%d", i), userProject, 24*time.Hour)
		e.users = append(e.users, tok)
	}
	users := map[string]bool{}
	for _, u := range e.users {
		users[u] = true
	}
	local := newCloud("default", userProject, "", func(tok string) (string, bool) { return userProject, users[tok] }, events)
	t.Cleanup(local.Close)
	e.clouds["default"] = local

	suffix := make([]byte, 4)
	rand.Read(suffix)
	tag := hex.EncodeToString(suffix)
	for _, sp := range busSPs {
		e.queues[sp] = "mixmatch.load." + tag + "." + sp
		e.exchanges[sp] = [2]string{"load-" + tag + "-glance-" + sp, "load-" + tag + "-openstack-" + sp}
	}
	e.declareTopology(t)

	e.workerMetrics = fmt.Sprintf("127.0.0.1:%d", bintest.FreePort(t))
	e.ingesterMetrics = fmt.Sprintf("127.0.0.1:%d", bintest.FreePort(t))
	e.writeConfig(t)
	if out, err := exec.Command(filepath.Join(bin, "mixmatch-manage"), "--config-file", e.conf, "db_sync").CombinedOutput(); err != nil {
		t.Fatalf("db_sync: %v\n%s", err, out)
	}
	db, err := sqlx.Open("sqlite3", e.dbPath+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(2)
	t.Cleanup(func() { db.Close() })
	e.db = db
	for _, name := range []string{"default", "remote1", "remote2"} {
		e.seeds = append(e.seeds, e.clouds[name].seed(seedsPerCloud)...)
	}
	e.insertSeeds(t)

	var addr []string
	e.worker, addr = startProc(t, "mixmatch-fcgi", filepath.Join(bin, "mixmatch-fcgi"),
		[]string{"--config-file", e.conf, "--http", "127.0.0.1:0", "--metrics", e.workerMetrics},
		regexp.MustCompile(`msg="mixmatch-fcgi serving" address=([0-9.:]+)`), 1)
	e.workerURL = "http://" + addr[0]
	e.ingester, _ = startProc(t, "mixmatch-ingester", filepath.Join(bin, "mixmatch-ingester"),
		[]string{"--config-file", e.conf}, regexp.MustCompile(`msg="consuming notifications"`), len(busSPs))
	return e
}

func (e *env) writeConfig(t *testing.T) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[DEFAULT]\nservice_providers = default, remote1, remote2\naggregation = true\nsearch_by_broadcast = true\n")
	fmt.Fprintf(&b, "[database]\nconnection = sqlite:///%s\n", e.dbPath)
	fmt.Fprintf(&b, "[auth]\nauth_url = %s\npassword = %s\n", e.idp.AuthURL(), e.idp.ServicePassword)
	// The worker's --metrics overrides this; the ingester serves its metrics here.
	fmt.Fprintf(&b, "[metrics]\nlisten = %s\n", e.ingesterMetrics)
	for _, name := range []string{"default", "remote1", "remote2"} {
		c := e.clouds[name]
		fmt.Fprintf(&b, "[sp_%s]\nimage_endpoint = %s\nvolume_endpoint = %s\n", name, c.URL(), c.URL())
		if name != "default" {
			fmt.Fprintf(&b, "auth_url = %s/v3\n", e.sps[name].Server.URL)
		}
		if q, ok := e.queues[name]; ok {
			fmt.Fprintf(&b, "messagebus = rabbit://guest:guest@127.0.0.1:5672/\nnotification_queue = %s\nnotification_exchanges = %s, %s\n",
				q, e.exchanges[name][0], e.exchanges[name][1])
		}
	}
	if err := os.WriteFile(e.conf, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// declareTopology declares what the ingester declares, before anything is published,
// and removes it when the test ends.
func (e *env) declareTopology(t *testing.T) {
	t.Helper()
	conn, err := amqp.Dial(rabbitURL)
	if err != nil {
		t.Fatalf("RabbitMQ at %s (scripts/test-services.sh starts it): %v", rabbitURL, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range busSPs {
		for _, ex := range e.exchanges[sp] {
			if err := ch.ExchangeDeclare(ex, "topic", false, false, false, false, nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ch.QueueDeclare(e.queues[sp], true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		for _, ex := range e.exchanges[sp] {
			if err := ch.QueueBind(e.queues[sp], "notifications.info", ex, false, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		conn, err := amqp.Dial(rabbitURL)
		if err != nil {
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return
		}
		for _, sp := range busSPs {
			ch.QueueDelete(e.queues[sp], false, false, false)
			for _, ex := range e.exchanges[sp] {
				ch.ExchangeDelete(ex, false, false)
			}
		}
	})
}

// insertSeeds maps the seeded resources as an earlier life of the federation would
// have left them.
func (e *env) insertSeeds(t *testing.T) {
	t.Helper()
	tx, err := e.db.BeginTxx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range e.seeds {
		if _, err := tx.Exec(`INSERT INTO resource_mapping (resource_type, resource_id, resource_sp, project_id)
			VALUES (?, ?, ?, ?)`, r.Type, store.NormalizeID(r.ID), r.SP, store.NormalizeID(r.Project)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// projectAt is the project a resource created by a user lives in at an SP.
func (e *env) projectAt(sp string) string {
	if sp == "default" {
		return userProject
	}
	return store.NormalizeID(e.remoteProject)
}
