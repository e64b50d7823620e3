// Package cmdtest runs the three built binaries as an operator or systemd would: exit
// statuses, messages, and what is (not) left behind.
package cmdtest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"mixmatch/app/bintest"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mixmatch-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	if err := bintest.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// writeConfig writes a configuration whose database is a SQLite file in dir.
func writeConfig(t *testing.T, dir, extra string) (conf, db string) {
	t.Helper()
	db = filepath.Join(dir, "state", "mixmatch.db")
	conf = filepath.Join(dir, "mixmatch.conf")
	body := "[DEFAULT]\nservice_providers = default\n" +
		"[database]\nconnection = sqlite:///" + db + "\n" +
		"[sp_default]\nimage_endpoint = http://127.0.0.1:9292\nvolume_endpoint = http://127.0.0.1:8776\n" + extra
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf, db
}

func run(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// A bad configuration stops every binary with status 2, a message naming file,
// section and key, and nothing started: no database file, no socket.
func TestBadConfigExits2AndStartsNothing(t *testing.T) {
	dir := t.TempDir()
	conf, db := writeConfig(t, dir, "enabled_services = image, volume, compute\n")
	for _, tc := range [][]string{
		{"mixmatch-fcgi", "--config-file", conf, "--http", "127.0.0.1:0"},
		{"mixmatch-ingester", "--config-file", conf},
		{"mixmatch-manage", "--config-file", conf, "db_sync"},
	} {
		out, code := run(t, tc[0], tc[1:]...)
		if code != 2 || !strings.Contains(out, conf+` [sp_default] enabled_services: unknown service "compute"`) {
			t.Errorf("%s: exit %d, output %q", tc[0], code, out)
		}
	}
	if _, err := os.Stat(filepath.Dir(db)); !os.IsNotExist(err) {
		t.Fatalf("a bad configuration left %s behind", filepath.Dir(db))
	}
}

func TestMissingConfigFileExits2(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.conf")
	out, code := run(t, "mixmatch-manage", "--config-file", missing, "db_sync")
	if code != 2 || !strings.Contains(out, missing+": cannot read the configuration file") {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

func TestWorkerRefusesAnUnmigratedDatabase(t *testing.T) {
	conf, _ := writeConfig(t, t.TempDir(), "")
	out, code := run(t, "mixmatch-fcgi", "--config-file", conf, "--http", "127.0.0.1:0")
	if code != 1 || !strings.Contains(out, "run `mixmatch-manage db_sync`") || strings.Contains(out, "serving") {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

// The worker on plain HTTP: serves JSON errors, and on SIGTERM stops with status 0.
func TestWorkerServesAndStopsOnSIGTERM(t *testing.T) {
	conf, _ := writeConfig(t, t.TempDir(), "")
	if out, code := run(t, "mixmatch-manage", "--config-file", conf, "db_sync"); code != 0 {
		t.Fatalf("db_sync: exit %d: %s", code, out)
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", bintest.FreePort(t))
	cmd := exec.Command(filepath.Join(binDir, "mixmatch-fcgi"), "--config-file", conf, "--http", "127.0.0.1:0", "--metrics", metricsAddr)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// The worker logs its address once it listens; that line is the synchronisation.
	lines := bufio.NewScanner(stderr)
	addrRE := regexp.MustCompile(`msg="mixmatch-fcgi serving" address=([0-9.:]+)`)
	var addr string
	for addr == "" && lines.Scan() {
		if m := addrRE.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatal("the worker never said it was serving")
	}

	resp, err := http.Get("http://" + addr + "/compute/v2.1/servers")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 404 || body.Error.Code != 404 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /compute: %d %+v %v", resp.StatusCode, body, err)
	}

	resp, err = http.Get("http://" + addr + "/healthcheck")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /healthcheck: %d", resp.StatusCode)
	}
	resp, err = http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scraped, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`mixmatch_requests_total{method="GET",service="healthcheck",sp="",status="200"} 1`,
		`mixmatch_requests_total{method="GET",service="other",sp="",status="404"} 1`, "mixmatch_k2k_exchanges_total 0",
		`mixmatch_token_cache_total{result="miss"}`} {
		if !strings.Contains(string(scraped), want) {
			t.Fatalf("metrics lack %s:\n%s", want, scraped)
		}
	}

	// No path is redirected to a cleaned one: what the services would not read as
	// written is a JSON 400, as through Apache (apache_test.go).
	for _, path := range []string{"/image/v2/../v2/images", "//image/v2/images", "/volume/v3/8a1e/volumes/x%2Fy"} {
		if code, body := rawGet(t, addr, path); code != 400 || !strings.Contains(body, `"code":400`) {
			t.Errorf("GET %s: %d %s, want a JSON 400", path, code, body)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stderr)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker exited with %v after SIGTERM; log: %s", err, rest)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop within 30 s of SIGTERM")
	}
	if !strings.Contains(string(rest), "mixmatch-fcgi stopped") {
		t.Fatalf("no stop line in %q", rest)
	}
}

func TestDoneWhenCommandWorksOnTheSample(t *testing.T) {
	sample, err := filepath.Abs("../../etc/mixmatch.conf.sample")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "mixmatch-manage"), "--config-file", sample, "db_sync")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("db_sync on the sample: %v\n%s", err, out)
	}
	// The sample's database is relative to the working directory, as SQLAlchemy reads it.
	if _, err := os.Stat(filepath.Join(cmd.Dir, "var", "mixmatch.db")); err != nil {
		t.Fatalf("db_sync on the sample made no var/mixmatch.db: %v", err)
	}
}
