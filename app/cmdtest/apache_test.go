package cmdtest

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mixmatch/app/bintest"
	"mixmatch/app/k2k/k2ktest"
)

// glance stands in for the local Glance's image data calls.
type glance struct {
	mu       sync.Mutex
	uploaded [32]byte
	length   int64
	chunked  bool
	tokens   []string
}

func (g *glance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.tokens = append(g.tokens, r.Header.Get("X-Auth-Token"))
	g.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		g.mu.Lock()
		copy(g.uploaded[:], h.Sum(nil))
		g.length, g.chunked = n, len(r.TransferEncoding) > 0
		g.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		const size = 256 << 20
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", fmt.Sprint(size))
		if strings.Contains(r.URL.Path, brokenImage) {
			// Glance's store fails mid-image: the answer has begun, the connection drops.
			io.Copy(w, &bintest.Pattern{N: 8 << 20})
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		io.Copy(w, &bintest.Pattern{N: size})
	}
}

// brokenImage is the image whose download the stand-in Glance breaks off.
const brokenImage = "5b1c7a7e-0000-4c5d-9e2f-1a2b3c4d5e6f"

// Real Apache with mod_proxy_fcgi and the site file of httpd/, in front of two real
// workers: a chunked 64 MiB upload and a 256 MiB download pass through whole.
func TestApacheInFrontOfWorkers(t *testing.T) {
	if _, err := exec.LookPath("apache2"); err != nil {
		t.Fatal("apache2 is not installed (scripts/test-services.sh installs it)")
	}
	dir, err := os.MkdirTemp("", "mixmatch-apache-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // Apache's children run as www-data

	idp := k2ktest.NewIdP()
	defer idp.Close()
	idp.AddUser("user-token", "alice", "a11ce", time.Hour)
	g := &glance{}
	gs := httptest.NewServer(g)
	defer gs.Close()

	conf := filepath.Join(dir, "mixmatch.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[DEFAULT]\nservice_providers = default\n[database]\nconnection = sqlite:///%s/mm.db\n"+
		"[auth]\nauth_url = %s\npassword = %s\n[sp_default]\nimage_endpoint = %s\nvolume_endpoint = %s\n",
		dir, idp.AuthURL(), idp.ServicePassword, gs.URL, gs.URL)), 0o600)
	if out, code := run(t, "mixmatch-manage", "--config-file", conf, "db_sync"); code != 0 {
		t.Fatalf("db_sync: %s", out)
	}
	for i := 1; i <= 2; i++ {
		sock := filepath.Join(dir, fmt.Sprintf("fcgi-%d.sock", i))
		cmd := exec.Command(filepath.Join(binDir, "mixmatch-fcgi"), "--config-file", conf, "--fcgi", "unix:"+sock)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		lines := bufio.NewScanner(stderr)
		for lines.Scan() && !strings.Contains(lines.Text(), "mixmatch-fcgi serving") {
		}
		go io.Copy(io.Discard, stderr)
		os.Chmod(sock, 0o666)
	}

	site, _ := filepath.Abs("../../httpd/mixmatch.conf")
	port := bintest.FreePort(t)
	main := bintest.ApacheConfig(dir, port, site, "")
	bintest.StartApache(t, dir, main)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// Start-up: poll for the port, bounded.
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if i > 100 {
			b, _ := os.ReadFile(filepath.Join(dir, "apache.out"))
			e, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("Apache did not start: %s %s", b, e)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A chunked upload: no Content-Length, the body streamed as it is produced.
	const up = 64 << 20
	req, _ := http.NewRequest(http.MethodPut, base+"/image/v2/images/0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f/file",
		io.NopCloser(&bintest.Pattern{N: up}))
	req.ContentLength = -1
	req.Header.Set("X-Auth-Token", "user-token")
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	g.mu.Lock()
	gotLen, gotSum := g.length, g.uploaded
	g.mu.Unlock()
	if resp.StatusCode != http.StatusNoContent || gotLen != up || gotSum != bintest.PatternSum(up) {
		e, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("upload: status %d, Glance got %d bytes (want %d), same data %v; %s", resp.StatusCode, gotLen, up, gotSum == bintest.PatternSum(up), e)
	}

	req, _ = http.NewRequest(http.MethodGet, base+"/image/v2/images/0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f/file", nil)
	req.Header.Set("X-Auth-Token", "user-token")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	// Apache 2.4's mod_proxy_fcgi answers a streamed body chunked, without the
	// worker's Content-Length; the bytes are what counts.
	if err != nil || resp.StatusCode != 200 || n != 256<<20 || sum != bintest.PatternSum(256<<20) {
		t.Fatalf("download: status %d, %d bytes, same data %v, %v", resp.StatusCode, n, sum == bintest.PatternSum(256<<20), err)
	}
	for _, tok := range g.tokens {
		if tok != "user-token" {
			t.Fatalf("Glance got token %q", tok)
		}
	}

	// The access log is in the site's own format, which this apache2.conf does not
	// define otherwise (Debian's defines "combined", this one does not). The upload's
	// line is there already: the download just read went on the same kept-alive
	// connection, and Apache logs a request before it reads the next one from it.
	logged, _ := os.ReadFile(filepath.Join(dir, "mixmatch-access.log"))
	uploadLine := regexp.MustCompile(`(?m)^127\.0\.0\.1 - - \[[^]]+\] "PUT /image/v2/images/0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f/file HTTP/1\.1" ` +
		`204 \d+ "-" "Go-http-client/1\.1" \d+ \S+$`)
	if !uploadLine.Match(logged) {
		t.Fatalf("no access log line for the upload in the site's format:\n%s", logged)
	}

	// A download Glance breaks off must reach the client as broken, not as a shorter
	// image with a clean end. (Apache ends the chunked body without its last chunk
	// and keeps the connection until KeepAliveTimeout, so the client's read fails
	// after that.)
	req, _ = http.NewRequest(http.MethodGet, base+"/image/v2/images/"+brokenImage+"/file", nil)
	req.Header.Set("X-Auth-Token", "user-token")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("a download broken off after %d bytes ended cleanly (status %d, headers %v)", n, resp.StatusCode, resp.Header)
	}

	// Anything else through Apache is the worker's JSON 404.
	resp, err = http.Get(base + "/image/unknown/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), `"code":404`) {
		t.Fatalf("404 through Apache: %d %s", resp.StatusCode, b)
	}

	// Apache resolves dot segments and merges slashes for its own routing only, and
	// lets escaped slashes through (AllowEncodedSlashes NoDecode): the worker reads
	// the path as written and answers as under --http. A % that starts no escape is
	// Apache's own 400, an HTML one: no worker sees it.
	for _, path := range []string{"/image/v2/../v2/images", "/image//v2/images", "/image/v2/images/%2e%2e/x",
		"/volume/v3/8a1e/volumes/x%2Fy"} {
		if code, body := rawGet(t, fmt.Sprintf("127.0.0.1:%d", port), path); code != 400 || !strings.Contains(body, `"code":400`) {
			t.Errorf("%s through Apache: %d %s, want the worker's JSON 400", path, code, body)
		}
	}
	if code, _ := rawGet(t, fmt.Sprintf("127.0.0.1:%d", port), "/image/v2/images/%zz"); code != 400 {
		t.Errorf("%%zz through Apache: %d, want Apache's 400", code)
	}
}

// rawGet sends a request line as written: Go's client would refuse some of them.
func rawGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: user-token\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
