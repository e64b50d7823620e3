package manage

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mixmatch/app/cmdline"
	"mixmatch/app/config"
	"mixmatch/app/store"
)

// setup writes a configuration with a local and a remote SP on a fresh SQLite file.
func setup(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "mixmatch.conf")
	body := "[DEFAULT]\nservice_providers = default, remote1\n" +
		"[database]\nconnection = sqlite:///" + filepath.Join(dir, "mm.db") + "\n" +
		"[sp_default]\nimage_endpoint = http://127.0.0.1:9292\nvolume_endpoint = http://127.0.0.1:8776\n" +
		"[sp_remote1]\nimage_endpoint = http://127.0.0.2:9292\nvolume_endpoint = http://127.0.0.2:8776\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, args...)
	if err != nil {
		t.Fatalf("mixmatch-manage %v: %v\n%s", args, err, errOut)
	}
	return out
}

func TestMappingsCommands(t *testing.T) {
	conf := setup(t)
	out := mustRun(t, "--config-file", conf, "db_sync")
	if !strings.Contains(out, "applied 00001_resource_mapping.sql") || !strings.Contains(out, "at version 4") {
		t.Fatalf("db_sync said %q", out)
	}
	if out := mustRun(t, "db_sync", "--config-file", conf); strings.Contains(out, "applied") {
		t.Fatalf("second db_sync applied something: %q", out)
	}

	id := "0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f"
	out = mustRun(t, "--config-file", conf, "mappings", "add", "volumes", id, "remote1", "8a1e")
	if !strings.Contains(out, "volumes  0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f  remote1  8a1e") {
		t.Fatalf("add printed %q", out)
	}
	mustRun(t, "--config-file", conf, "mappings", "add", "images", "img1", "default", "p2")

	var rows []store.Mapping
	out = mustRun(t, "--config-file", conf, "mappings", "list", "--sp", "remote1", "--format", "json")
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0].ResourceType != "volumes" {
		t.Fatalf("list --sp remote1 --format json = %q (%v)", out, err)
	}
	out = mustRun(t, "--config-file", conf, "mappings", "list", "--type", "images")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "TYPE") ||
		!strings.Contains(lines[1], "img1") {
		t.Fatalf("list --type images = %q", out)
	}

	var row store.Mapping
	out = mustRun(t, "--config-file", conf, "mappings", "show", "volumes", strings.ReplaceAll(id, "-", ""), "--format", "json")
	if err := json.Unmarshal([]byte(out), &row); err != nil || row.ResourceSP != "remote1" || row.ProjectID != "8a1e" {
		t.Fatalf("show = %q (%v)", out, err)
	}

	mustRun(t, "--config-file", conf, "mappings", "delete", "volumes", id)
	_, _, err := run(t, "--config-file", conf, "mappings", "show", "volumes", id)
	if err == nil || !strings.Contains(err.Error(), "no mapping for volumes") || cmdline.ExitCode(err) != 1 {
		t.Fatalf("show after delete = %v", err)
	}
	if _, _, err := run(t, "--config-file", conf, "mappings", "delete", "volumes", id); cmdline.ExitCode(err) != 1 {
		t.Fatalf("second delete = %v", err)
	}
}

func TestUsageMistakesExit2(t *testing.T) {
	conf := setup(t)
	mustRun(t, "--config-file", conf, "db_sync")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "no command"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"mappings"}, "needs a subcommand"},
		{[]string{"mappings", "add", "volumes", "v1", "remote1"}, "takes 4 argument(s)"},
		{[]string{"mappings", "add", "volume", "v1", "remote1", "p"}, `unknown resource type "volume"`},
		{[]string{"mappings", "add", "volumes", "v1", "remote9", "p"}, `"remote9" is not in [DEFAULT] service_providers`},
		{[]string{"mappings", "add", "volumes", strings.Repeat("a", 256), "remote1", "p"}, "resource id"},
		{[]string{"mappings", "list", "--format", "yaml"}, "--format"},
		{[]string{"mappings", "list", "--colour"}, "flag provided but not defined"},
	} {
		_, _, err := run(t, append([]string{"--config-file", conf}, tc.args...)...)
		if cmdline.ExitCode(err) != cmdline.ExitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v (exit %d), want exit 2 and %q", tc.args, err, cmdline.ExitCode(err), tc.want)
		}
	}
}

func TestMappingsNeedDBSync(t *testing.T) {
	conf := setup(t)
	_, _, err := run(t, "--config-file", conf, "mappings", "list")
	if err == nil || !strings.Contains(err.Error(), "db_sync") {
		t.Fatalf("list before db_sync = %v", err)
	}
}

func TestConfigSampleAndCheck(t *testing.T) {
	if out := mustRun(t, "config-sample"); out != config.Sample() {
		t.Fatal("config-sample does not print the sample")
	}
	conf := setup(t)
	if out := mustRun(t, "check-config", "--config-file", conf); !strings.Contains(out, "valid, 2 service provider(s): default, remote1") {
		t.Fatalf("check-config = %q", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(bad, []byte("[DEFAULT]\nsearch_by_broadcast = sometimes\n[sp_default]\nimage_endpoint=http://a:1\nvolume_endpoint=http://a:2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(t, "--config-file", bad, "check-config")
	if cmdline.ExitCode(err) != 2 || !strings.Contains(err.Error(), bad+" [DEFAULT] search_by_broadcast:") {
		t.Fatalf("check-config of a bad file = %v", err)
	}
}
