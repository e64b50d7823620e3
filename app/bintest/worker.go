package bintest

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var servingRE = regexp.MustCompile(`msg="mixmatch-fcgi serving" address=(\S+)`)

// StartWorker runs dir/mixmatch-fcgi on conf with args (--http ADDR or --fcgi ...)
// until the test ends, and returns the address it said it serves on, once it has;
// its log goes to log, every line.
func StartWorker(t testing.TB, dir, conf string, log io.Writer, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "mixmatch-fcgi"), append([]string{"--config-file", conf}, args...)...)
	return Start(t, cmd, log, servingRE), cmd
}

// Start runs cmd until the test ends, its standard error going to log, and
// returns the first submatch of the first line that ready matches, once one has.
func Start(t testing.TB, cmd *exec.Cmd, log io.Writer, ready *regexp.Regexp) string {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		fmt.Fprintln(log, lines.Text())
		if m := ready.FindStringSubmatch(lines.Text()); m != nil {
			go io.Copy(log, stderr)
			return append(m, "")[1]
		}
	}
	t.Fatalf("%s did not start", strings.Join(cmd.Args, " "))
	return ""
}
