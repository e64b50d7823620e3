package bintest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ApacheConfig is a main configuration for Debian's apache2 (event MPM) that runs
// in dir and serves the shipped site file (httpd/mixmatch.conf) on 127.0.0.1:port,
// its workers' sockets in dir; extra is appended (more modules, more sites).
func ApacheConfig(dir string, port int, site, extra string) string {
	mods := "/usr/lib/apache2/modules/"
	return fmt.Sprintf(`ServerRoot %[1]s
PidFile %[1]s/apache.pid
DefaultRuntimeDir %[1]s
ServerName 127.0.0.1
User www-data
Group www-data
ErrorLog %[1]s/error.log
LogLevel warn
Define APACHE_LOG_DIR %[1]s
Define MIXMATCH_PORT %[2]d
Define MIXMATCH_LISTEN 127.0.0.1:%[2]d
Define MIXMATCH_RUNDIR %[1]s
LoadModule mpm_event_module %[3]smod_mpm_event.so
LoadModule authz_core_module %[3]smod_authz_core.so
LoadModule proxy_module %[3]smod_proxy.so
LoadModule proxy_fcgi_module %[3]smod_proxy_fcgi.so
LoadModule proxy_balancer_module %[3]smod_proxy_balancer.so
LoadModule slotmem_shm_module %[3]smod_slotmem_shm.so
LoadModule lbmethod_byrequests_module %[3]smod_lbmethod_byrequests.so
Include %[4]s
%[5]s`, dir, port, mods, site, extra)
}

// StartApache runs apache2 in the foreground on the main configuration conf,
// written to dir/apache2.conf, until the test ends; its own output goes to
// dir/apache.out. It does not wait for Apache to listen.
func StartApache(t testing.TB, dir, conf string) {
	t.Helper()
	path := filepath.Join(dir, "apache2.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("apache2", "-f", path, "-D", "FOREGROUND")
	cmd.Env = append(os.Environ(), "APACHE_RUN_DIR="+dir)
	out, err := os.Create(filepath.Join(dir, "apache.out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait(); out.Close() })
}
