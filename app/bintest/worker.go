package bintest

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

var servingRE = regexp.MustCompile(`msg="mixmatch-fcgi serving" address=(\S+)`)

// StartWorker runs dir/mixmatch-fcgi on conf with args (--http ADDR or --fcgi ...)
// until the test ends, and returns the address it said it serves on, once it has;
// its log goes to log, every line.
func StartWorker(t testing.TB, dir, conf string, log io.Writer, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "mixmatch-fcgi"), append([]string{"--config-file", conf}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stderr)
	addr := ""
	for addr == "" && lines.Scan() {
		fmt.Fprintln(log, lines.Text())
		if m := servingRE.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("mixmatch-fcgi %v did not start", args)
	}
	go io.Copy(log, stderr)
	return addr, cmd
}
