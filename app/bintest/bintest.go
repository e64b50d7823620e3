// Package bintest builds mixmatch's programs for the tests that run them as an
// operator would, and finds them free ports.
package bintest

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
)

// programs are the installed binaries, by name, and their packages.
var programs = map[string]string{
	"mixmatch-fcgi":     "mixmatch/fcgi",
	"mixmatch-ingester": "mixmatch/app/cmd/mixmatch-ingester",
	"mixmatch-manage":   "mixmatch/app/cmd/mixmatch-manage",
}

// Build builds every program into dir.
func Build(dir string) error {
	for name, pkg := range programs {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput()
		if err != nil {
			return fmt.Errorf("building %s: %v\n%s", name, err, out)
		}
	}
	return nil
}

// FreePort is a loopback TCP port nothing listens on, for a program to take.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
