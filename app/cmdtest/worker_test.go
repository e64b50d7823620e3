package cmdtest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"mixmatch/app/bintest"
	"mixmatch/app/k2k/k2ktest"
)

// httpWorker runs mixmatch-fcgi --http in front of glanceURL (the local cloud's
// Glance and Cinder), with extra added to [DEFAULT], until the test ends; it
// returns the worker's base URL and process. "user-token" is a valid token.
func httpWorker(t testing.TB, glanceURL, extra string) (string, *exec.Cmd) {
	t.Helper()
	dir := t.TempDir()
	idp := k2ktest.NewIdP()
	t.Cleanup(idp.Close)
	idp.AddUser("user-token", "alice", "a11ce", time.Hour)
	conf := filepath.Join(dir, "mixmatch.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[DEFAULT]\nservice_providers = default\n%s\n[database]\nconnection = sqlite:///%s/mm.db\n"+
		"[auth]\nauth_url = %s\npassword = %s\n[sp_default]\nimage_endpoint = %s\nvolume_endpoint = %s\n",
		extra, dir, idp.AuthURL(), idp.ServicePassword, glanceURL, glanceURL)), 0o600)
	if out, err := exec.Command(filepath.Join(binDir, "mixmatch-manage"), "--config-file", conf, "db_sync").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	addr, cmd := bintest.StartWorker(t, binDir, conf, io.Discard, "--http", "127.0.0.1:0")
	return "http://" + addr, cmd
}

// A worker serving max_active_requests calls answers the next ones itself, at
// once, with a 503 and Retry-After, and serves again once they end.
func TestAFullWorkerAnswers503(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	glance := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"images": []}`)
	})}
	gs := newLoopbackServer(t, &glance)
	base, _ := httpWorker(t, gs, "max_active_requests = 2\nadmission_wait = 0")
	get := func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", base+"/image/v2/images", nil)
		req.Header.Set("X-Auth-Token", "user-token")
		return http.DefaultClient.Do(req)
	}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := get(); err == nil {
				resp.Body.Close()
			}
		}()
		<-arrived
	}
	resp, err := get()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || resp.Header.Get("X-Openstack-Request-Id") == "" {
		t.Fatalf("a third call: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	close(release)
	wg.Wait()
	if resp, err := get(); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the calls ended: %v %v", resp, err)
	}
}

// newLoopbackServer serves srv on a loopback port until the test ends.
func newLoopbackServer(t testing.TB, srv *http.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}
