package worker

import (
	"context"
	"io"
	"strings"
	"testing"

	"mixmatch/app/cmdline"
)

func TestBothFrontEndsIsAUsageError(t *testing.T) {
	err := Run(context.Background(), []string{"--http", "127.0.0.1:0", "--fcgi", "tcp:127.0.0.1:0"}, io.Discard, io.Discard)
	if cmdline.ExitCode(err) != cmdline.ExitUsage || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("--http and --fcgi together: %v (exit %d), want a usage error", err, cmdline.ExitCode(err))
	}
}
