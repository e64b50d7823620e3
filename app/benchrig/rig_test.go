//go:build bench

// Package benchrig measures mixmatch as deployed: the real mixmatch-fcgi binary,
// alone (--http) and behind Apache's mod_proxy_fcgi with the shipped
// httpd/mixmatch.conf, against references measured in the same run on the same
// machine: the backend directly, nginx as a bare reverse proxy, Apache's
// mod_proxy_http, and bareproxy, Go's own ReverseProxy with nothing of mixmatch
// in it, over HTTP and behind the same Apache: what a proxy in Go can reach.
// Absolute numbers on a shared machine mean little; the table gives ratios, each
// against its target (README.rst, "Performance").
//
// It needs wrk, nginx and apache2 (scripts/bench.sh installs them) and prints the
// table whatever the numbers; it fails only when something it measures breaks (an
// error answer, a lost byte), never because the machine is slow.
package benchrig

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/jmoiron/sqlx"

	"mixmatch/app/bintest"
	"mixmatch/app/k2k/k2ktest"
	"mixmatch/app/keystone"
	"mixmatch/app/store"
)

const (
	imageID   = "0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f"
	project   = "a11ce000000040008000000000000001"
	userToken = "gAAAAABbench-user-token"
)

// duration is how long each wrk run lasts (BENCH_DURATION, default 10s).
func duration() string {
	if d := os.Getenv("BENCH_DURATION"); d != "" {
		return d
	}
	return "10s"
}

// streamSize is the image streamed up and down (BENCH_STREAM_MIB, default 512).
func streamSize() int64 {
	if n, err := strconv.Atoi(os.Getenv("BENCH_STREAM_MIB")); err == nil && n > 0 {
		return int64(n) << 20
	}
	return 512 << 20
}

// row is one line of the table.
type row struct {
	what, value, target string
	ok                  *bool
}

func TestRig(t *testing.T) {
	for _, tool := range []string{"wrk", "nginx", "apache2"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (scripts/bench.sh installs it)", tool)
		}
	}
	// Not t.TempDir(): its parent is closed to Apache's children (www-data), which
	// reach the workers' sockets in here.
	dir, err := os.MkdirTemp("", "mixmatch-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "bin")
	if err := bintest.Build(bin); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("go", "build", "-tags", "bench", "-o", filepath.Join(bin, "bareproxy"), "./bareproxy").CombinedOutput(); err != nil {
		t.Fatalf("building bareproxy: %v\n%s", err, out)
	}

	idp := k2ktest.NewIdP()
	t.Cleanup(idp.Close)
	// A remote SP behind K2K, for the first-call figure; the backend is its Glance too.
	sp := k2ktest.NewSP(idp.MetadataURL())
	t.Cleanup(sp.Close)
	idp.SPs["remote1"] = keystone.ServiceProvider{ID: "remote1", AuthURL: sp.AuthURL(), SPURL: sp.SPURL()}
	idp.AddUser(userToken, "alice", project, 24*time.Hour)
	backend := startBackend(t, dir)

	conf := writeConfig(t, dir, idp, sp, backend)
	if out, err := exec.Command(filepath.Join(bin, "mixmatch-manage"), "--config-file", conf, "db_sync").CombinedOutput(); err != nil {
		t.Fatalf("db_sync: %v\n%s", err, out)
	}
	mapImage(t, dir)

	// One worker as an operator runs it without Apache, and two behind Apache as
	// httpd/mixmatch.conf ships; each logs to a file, as under systemd.
	// The bare Go proxy is run the same two ways.
	worker := startWorker(t, bin, conf, filepath.Join(dir, "worker-http.log"), "--http", "127.0.0.1:0")
	bareHTTP := "http://" + startBare(t, bin, filepath.Join(dir, "bare-http.log"), backend, "-http", "127.0.0.1:0")
	for i := 1; i <= 2; i++ {
		sock := filepath.Join(dir, fmt.Sprintf("fcgi-%d.sock", i))
		startWorker(t, bin, conf, filepath.Join(dir, fmt.Sprintf("worker-fcgi-%d.log", i)), "--fcgi", "unix:"+sock)
		os.Chmod(sock, 0o666)
		sock = filepath.Join(dir, fmt.Sprintf("bare-%d.sock", i))
		startBare(t, bin, filepath.Join(dir, fmt.Sprintf("bare-fcgi-%d.log", i)), backend, "-fcgi", sock)
		os.Chmod(sock, 0o666)
	}
	nginx := startNginx(t, dir, backend)
	apacheFCGI, apacheHTTP, apacheBare := startApache(t, dir, backend)

	path := "/v2/images/" + imageID
	urls := map[string]string{
		"direct":      backend + path,
		"nginx":       nginx + path,
		"mixmatch":    worker.url + "/image" + path,
		"apache-http": apacheHTTP + path,
		"apache-fcgi": apacheFCGI + "/image" + path,
		"bare-http":   bareHTTP + "/image" + path,
		"bare-fcgi":   apacheBare + "/image" + path,
	}
	// Every URL answers the same document before anything is timed.
	for name, u := range urls {
		if code, body := get(t, u); code != 200 || !strings.Contains(body, imageID) {
			t.Fatalf("%s: %d %s", name, code, body)
		}
	}

	if hold := os.Getenv("BENCH_HOLD"); hold != "" {
		holdForHand(t, hold, urls, worker)
		return
	}
	var rows []row
	rps := map[string]float64{}
	for _, conns := range []int{64, 8} {
		for _, name := range []string{"direct", "nginx", "bare-http", "mixmatch", "apache-http", "bare-fcgi", "apache-fcgi"} {
			var stop func()
			if name == os.Getenv("BENCH_PERF") && conns == 64 {
				stop = profile(t)
			}
			rps[fmt.Sprint(name, conns)] = wrk(t, urls[name], conns)
			if stop != nil {
				stop()
			}
		}
		rows = append(rows,
			row{what: fmt.Sprintf("mapped GET, %d conns: direct req/s", conns), value: fmt.Sprintf("%.0f", rps[fmt.Sprint("direct", conns)])},
			row{what: fmt.Sprintf("mapped GET, %d conns: nginx / direct", conns), value: ratio(rps[fmt.Sprint("nginx", conns)], rps[fmt.Sprint("direct", conns)])},
			atLeast(fmt.Sprintf("mapped GET, %d conns: mixmatch --http / nginx", conns), rps[fmt.Sprint("mixmatch", conns)], rps[fmt.Sprint("nginx", conns)], 0.5),
			atLeast(fmt.Sprintf("mapped GET, %d conns: Apache+fcgi / Apache proxy_http", conns), rps[fmt.Sprint("apache-fcgi", conns)], rps[fmt.Sprint("apache-http", conns)], 0.8),
			// What Go itself reaches, and mixmatch against it: the part of the gap
			// that is mixmatch's own.
			row{what: fmt.Sprintf("  bare Go proxy --http / nginx, %d conns", conns), value: ratio(rps[fmt.Sprint("bare-http", conns)], rps[fmt.Sprint("nginx", conns)])},
			row{what: fmt.Sprintf("  mixmatch --http / bare Go proxy, %d conns", conns), value: ratio(rps[fmt.Sprint("mixmatch", conns)], rps[fmt.Sprint("bare-http", conns)])},
			row{what: fmt.Sprintf("  Apache+bare Go fcgi / Apache proxy_http, %d conns", conns), value: ratio(rps[fmt.Sprint("bare-fcgi", conns)], rps[fmt.Sprint("apache-http", conns)])},
			row{what: fmt.Sprintf("  mixmatch Apache+fcgi / Apache+bare Go fcgi, %d conns", conns), value: ratio(rps[fmt.Sprint("apache-fcgi", conns)], rps[fmt.Sprint("bare-fcgi", conns)])},
		)
	}

	direct, through := newConnLatency(t, urls["direct"], 200), newConnLatency(t, urls["mixmatch"], 200)
	bare := newConnLatency(t, urls["bare-http"], 200)
	added := through - direct
	ok := added <= 250*time.Microsecond
	rows = append(rows, row{what: "GET on a new connection: added over direct (median of 200)",
		value: fmt.Sprintf("%.3f ms", float64(added)/1e6), target: "<= 0.25 ms", ok: &ok},
		row{what: "  the same, bare Go proxy", value: fmt.Sprintf("%.3f ms", float64(bare-direct)/1e6)})

	first, next := firstCalls(t, idp, worker.url+"/image"+path, 50)
	rows = append(rows,
		row{what: "first call to a remote SP (validation, ECP, rescope; median of 50)", value: fmt.Sprintf("%.2f ms", float64(first)/1e6)},
		row{what: "the same user's next call there (median of 50)", value: fmt.Sprintf("%.2f ms", float64(next)/1e6)})

	rss, err := bintest.PeakRSS(worker.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	rows = append(rows, row{what: "worker peak RSS (VmHWM) after the runs above", value: mib(rss)})

	// The streaming target bounds the memory a stream costs, so the streams go
	// through a worker of their own: the one above holds what 64 connections left.
	streamer := startWorker(t, bin, conf, filepath.Join(dir, "worker-stream.log"), "--http", "127.0.0.1:0")
	size := streamSize()
	downDirect := download(t, backend+path+"/file", size)
	downMM := download(t, streamer.url+"/image"+path+"/file", size)
	upDirect := upload(t, backend+path+"/file", size)
	upMM := upload(t, streamer.url+"/image"+path+"/file", size)
	downBare := download(t, urls["bare-http"]+"/file", size)
	upBare := upload(t, urls["bare-http"]+"/file", size)
	rows = append(rows,
		atLeast(fmt.Sprintf("%d MiB download: mixmatch / direct", size>>20), downMM, downDirect, 0.8),
		row{what: "  the same, bare Go proxy", value: ratio(downBare, downDirect)},
		atLeast(fmt.Sprintf("%d MiB chunked upload: mixmatch / direct", size>>20), upMM, upDirect, 0.8),
		row{what: "  the same, bare Go proxy", value: ratio(upBare, upDirect)})
	if rss, err = bintest.PeakRSS(streamer.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	rssOK := rss < 32<<20
	rows = append(rows, row{what: "streaming worker peak RSS (VmHWM), both streams", value: mib(rss), target: "< 32 MiB", ok: &rssOK})

	printTable(rows)
}

// holdForHand keeps everything running, for wrk, perf or strace by hand, while
// the file hold exists; it prints each URL and the --http worker's pid.
func holdForHand(t *testing.T, hold string, urls map[string]string, worker worker) {
	for name, u := range urls {
		fmt.Printf("HOLD %s %s\n", name, u)
	}
	fmt.Printf("HOLD worker-pid %d\nHOLD token %s\n", worker.cmd.Process.Pid, userToken)
	for {
		if _, err := os.Stat(hold); err != nil {
			return
		}
		time.Sleep(time.Second)
	}
}

// profile records the whole machine with perf, into BENCH_PERF_DATA (perf.data),
// while the 64-connection run of the URL BENCH_PERF names lasts (mixmatch,
// apache-fcgi, …): where the CPU goes, as deployed.
func profile(t *testing.T) (stop func()) {
	out := os.Getenv("BENCH_PERF_DATA")
	if out == "" {
		out = "perf.data"
	}
	cmd := exec.Command("perf", "record", "-a", "-g", "-o", out)
	if err := cmd.Start(); err != nil {
		t.Fatalf("perf: %v", err)
	}
	return func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func atLeast(what string, a, b, target float64) row {
	ok := b > 0 && a/b >= target
	return row{what: what, value: ratio(a, b), target: fmt.Sprintf(">= %.2g", target), ok: &ok}
}

func printTable(rows []row) {
	fmt.Printf("\n%-62s %12s %12s  %s\n", "measure (real binaries, one run)", "value", "target", "")
	for _, r := range rows {
		verdict := ""
		if r.ok != nil {
			verdict = "FAIL"
			if *r.ok {
				verdict = "pass"
			}
		}
		fmt.Printf("%-62s %12s %12s  %s\n", r.what, r.value, r.target, verdict)
	}
}

// writeConfig is a worker's mixmatch.conf: the local cloud and one remote SP, whose
// Glance are both the backend.
func writeConfig(t *testing.T, dir string, idp *k2ktest.IdP, sp *k2ktest.SP, backend string) string {
	t.Helper()
	conf := filepath.Join(dir, "mixmatch.conf")
	text := fmt.Sprintf("[DEFAULT]\nservice_providers = default, remote1\n[database]\nconnection = sqlite:///%s/mm.db\n"+
		"[auth]\nauth_url = %s\npassword = %s\n[sp_default]\nimage_endpoint = %s\nvolume_endpoint = %s\n"+
		"[sp_remote1]\nauth_url = %s\nimage_endpoint = %s\nvolume_endpoint = %s\n",
		dir, idp.AuthURL(), idp.ServicePassword, backend, backend, sp.AuthURL(), backend, backend)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// mapImage records the image at the local cloud, as the ingester would have.
func mapImage(t *testing.T, dir string) {
	t.Helper()
	db, err := sqlx.Open("sqlite3", filepath.Join(dir, "mm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO resource_mapping (resource_type, resource_id, resource_sp, project_id) VALUES (?, ?, ?, ?)`,
		"images", store.NormalizeID(imageID), "default", store.NormalizeID(project)); err != nil {
		t.Fatal(err)
	}
}

type worker struct {
	cmd *exec.Cmd
	url string
}

// startWorker starts mixmatch-fcgi with args, its log in logPath.
func startWorker(t *testing.T, bin, conf, logPath string, args ...string) worker {
	t.Helper()
	addr, cmd := bintest.StartWorker(t, bin, conf, createLog(t, logPath), args...)
	return worker{cmd: cmd, url: "http://" + addr}
}

// waitPort polls a loopback port until it accepts, at most 10 s.
func waitPort(t *testing.T, addr, what string, logPaths ...string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	var logs []string
	for _, p := range logPaths {
		b, _ := os.ReadFile(p)
		logs = append(logs, string(b))
	}
	t.Fatalf("%s did not listen on %s: %s", what, addr, strings.Join(logs, "\n"))
}

// startNginx is nginx as a bare reverse proxy to the backend: a worker per CPU and a
// pool of kept-alive upstream connections, its access log on as mixmatch's is.
func startNginx(t *testing.T, dir, backend string) string {
	t.Helper()
	ndir := filepath.Join(dir, "nginx")
	os.MkdirAll(ndir, 0o755)
	port := bintest.FreePort(t)
	conf := fmt.Sprintf(`worker_processes auto;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 4096; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream backend { server %[2]s; keepalive 128; }
    server {
        listen 127.0.0.1:%[3]d;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`, ndir, strings.TrimPrefix(backend, "http://"), port)
	confPath := filepath.Join(ndir, "nginx.conf")
	os.WriteFile(confPath, []byte(conf), 0o644)
	cmd := exec.Command("nginx", "-p", ndir, "-c", confPath)
	out, _ := os.Create(filepath.Join(ndir, "nginx.out"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	waitPort(t, fmt.Sprintf("127.0.0.1:%d", port), "nginx", filepath.Join(ndir, "nginx.out"), filepath.Join(ndir, "error.log"))
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// startApache is one Apache (event MPM, Debian's module set) with two sites: the
// shipped httpd/mixmatch.conf in front of the two fcgi workers, and mod_proxy_http
// straight to the backend, the reference.
func startApache(t *testing.T, dir, backend string) (fcgiURL, httpURL, bareURL string) {
	t.Helper()
	site, err := filepath.Abs("../../httpd/mixmatch.conf")
	if err != nil {
		t.Fatal(err)
	}
	fcgiPort, httpPort, barePort := bintest.FreePort(t), bintest.FreePort(t), bintest.FreePort(t)
	// The references, beside the shipped site: mod_proxy_http straight to the
	// backend, and two bare Go FastCGI proxies balanced as the shipped site
	// balances mixmatch's two workers.
	conf := bintest.ApacheConfig(dir, fcgiPort, site, fmt.Sprintf(`LoadModule proxy_http_module /usr/lib/apache2/modules/mod_proxy_http.so
Listen 127.0.0.1:%[1]d
<VirtualHost *:%[1]d>
    ProxyPass "/" "%[2]s/"
    CustomLog %[3]s/reference-access.log mixmatch
</VirtualHost>
Listen 127.0.0.1:%[4]d
<VirtualHost *:%[4]d>
    <Proxy "balancer://bare">
        BalancerMember "unix:%[3]s/bare-1.sock|fcgi://bare-1" retry=1 enablereuse=on
        BalancerMember "unix:%[3]s/bare-2.sock|fcgi://bare-2" retry=1 enablereuse=on
        ProxyFCGIBackendType GENERIC
    </Proxy>
    ProxyPass "/image" "balancer://bare/image"
    CustomLog %[3]s/bare-access.log mixmatch
</VirtualHost>
`, httpPort, backend, dir, barePort))
	bintest.StartApache(t, dir, conf)
	logs := []string{filepath.Join(dir, "apache.out"), filepath.Join(dir, "error.log")}
	waitPort(t, fmt.Sprintf("127.0.0.1:%d", fcgiPort), "Apache", logs...)
	waitPort(t, fmt.Sprintf("127.0.0.1:%d", httpPort), "Apache", logs...)
	waitPort(t, fmt.Sprintf("127.0.0.1:%d", barePort), "Apache", logs...)
	return fmt.Sprintf("http://127.0.0.1:%d", fcgiPort), fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		fmt.Sprintf("http://127.0.0.1:%d", barePort)
}

// startBare runs bareproxy (-http ADDR or -fcgi SOCKET) in front of backend,
// logging to logPath, and returns the address it says it serves on.
func startBare(t *testing.T, bin, logPath, backend string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "bareproxy"), append([]string{"-backend", backend, "-strip", "/image"}, args...)...)
	return bintest.Start(t, cmd, createLog(t, logPath), bareReady)
}

// createLog is a program's log file, closed when the test ends.
func createLog(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

var bareReady = regexp.MustCompile(`bareproxy serving on (\S+)`)

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("X-Auth-Token", userToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var (
	wrkRate   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkErrors = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// wrk is the rate wrk -t2 reaches against u with conns connections; any error
// answer fails the run: a fast wrong answer is not a result. Socket read errors
// are not: Apache closes a kept-alive connection after MaxKeepAliveRequests.
func wrk(t *testing.T, u string, conns int) float64 {
	t.Helper()
	out, err := exec.Command("wrk", "-t2", fmt.Sprintf("-c%d", conns), "-d"+duration(),
		"-H", "X-Auth-Token: "+userToken, u).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk %s: %v\n%s", u, err, out)
	}
	if m := wrkErrors.FindString(string(out)); m != "" {
		t.Fatalf("wrk %s: %s\n%s", u, m, out)
	}
	m := wrkRate.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("wrk %s printed no rate:\n%s", u, out)
	}
	rate, _ := strconv.ParseFloat(m[1], 64)
	return rate
}

// firstCalls is the median time of n new users' first GET of u at the remote SP
// (MM-SERVICE-PROVIDER): their token validated at the local Keystone, an ECP
// assertion, the SP's unscoped token and its rescope, then the call; and the median
// of the same users' second call, with all of it cached.
func firstCalls(t *testing.T, idp *k2ktest.IdP, u string, n int) (first, next time.Duration) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	var firsts, nexts []time.Duration
	for i := 0; i < n; i++ {
		token := fmt.Sprintf("gAAAAABbench-first-call-%d", i)
		idp.AddUser(token, fmt.Sprintf("user%d", i), project, time.Hour)
		for _, took := range []*[]time.Duration{&firsts, &nexts} {
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			req.Header.Set("X-Auth-Token", token)
			req.Header.Set("MM-SERVICE-PROVIDER", "remote1")
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			*took = append(*took, time.Since(start))
			if resp.StatusCode != 200 || !strings.Contains(string(body), imageID) {
				t.Fatalf("remote GET for a new user: %d %s", resp.StatusCode, body)
			}
		}
	}
	return median(firsts), median(nexts)
}

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// newConnLatency is the median time of n sequential GETs of u, each on a connection
// of its own.
func newConnLatency(t *testing.T, u string, n int) time.Duration {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	took, err := bintest.TimeGets(client, u, userToken, n)
	if err != nil {
		t.Fatal(err)
	}
	return median(took)
}

// download is the rate (bytes/s) of one GET of size bytes from u, every byte checked.
func download(t *testing.T, u string, size int64) float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("X-Auth-Token", userToken)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil || n != size || resp.StatusCode != 200 || [32]byte(h.Sum(nil)) != bintest.PatternSum(size) {
		t.Fatalf("download from %s: status %d, %d of %d bytes, %v", u, resp.StatusCode, n, size, err)
	}
	return float64(size) / took.Seconds()
}

// upload is the rate (bytes/s) of one chunked PUT of size bytes to u; the backend
// checks every byte.
func upload(t *testing.T, u string, size int64) float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, u, io.NopCloser(&bintest.Pattern{N: size}))
	req.ContentLength = -1
	req.Header.Set("X-Auth-Token", userToken)
	req.Header.Set("Content-Type", "application/octet-stream")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("upload to %s: %d %s", u, resp.StatusCode, body)
	}
	return float64(size) / took.Seconds()
}
