package cmdtest

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mixmatch/app/bintest"
	"mixmatch/app/k2k/k2ktest"
)

// BenchmarkStreamingRSS: the worker's peak resident memory while a 2 GiB image is
// uploaded through it and downloaded again (target: under 64 MiB).
func BenchmarkStreamingRSS(b *testing.B) {
	const size = 2 << 30
	dir := b.TempDir()
	idp := k2ktest.NewIdP()
	defer idp.Close()
	idp.AddUser("user-token", "alice", "a11ce", time.Hour)
	gs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		io.Copy(w, &bintest.Pattern{N: size})
	}))
	defer gs.Close()
	conf := filepath.Join(dir, "mixmatch.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[DEFAULT]\nservice_providers = default\n[database]\nconnection = sqlite:///%s/mm.db\n"+
		"[auth]\nauth_url = %s\npassword = %s\n[sp_default]\nimage_endpoint = %s\nvolume_endpoint = %s\n",
		dir, idp.AuthURL(), idp.ServicePassword, gs.URL, gs.URL)), 0o600)
	if out, err := exec.Command(filepath.Join(binDir, "mixmatch-manage"), "--config-file", conf, "db_sync").CombinedOutput(); err != nil {
		b.Fatalf("%v %s", err, out)
	}
	cmd := exec.Command(filepath.Join(binDir, "mixmatch-fcgi"), "--config-file", conf, "--http", "127.0.0.1:0")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	addrRE := regexp.MustCompile(`address=([0-9.:]+)`)
	lines := bufio.NewScanner(stderr)
	addr := ""
	for addr == "" && lines.Scan() {
		if m := addrRE.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	go io.Copy(io.Discard, stderr)
	url := "http://" + addr + "/image/v2/images/0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f/file"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest(http.MethodPut, url, io.NopCloser(&bintest.Pattern{N: size}))
		req.ContentLength = -1
		req.Header.Set("X-Auth-Token", "user-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 204 {
			b.Fatalf("upload: %v %v", resp, err)
		}
		resp.Body.Close()
		req, _ = http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("X-Auth-Token", "user-token")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != size {
			b.Fatalf("downloaded %d bytes", n)
		}
	}
	b.StopTimer()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			b.ReportMetric(float64(kb)/1024, "MiB-peak-RSS")
		}
	}
	b.ReportMetric(float64(2*size)/(1<<20)/b.Elapsed().Seconds()*float64(b.N), "MiB/s")
}
