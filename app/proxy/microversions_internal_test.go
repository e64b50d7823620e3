package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"mixmatch/app/config"
	"mixmatch/app/fakecloud"
	"mixmatch/app/httpclient"
	"mixmatch/app/versions"
)

// A cloud that goes down keeps the range it last offered, and is asked again
// sooner than the others.
func TestAnSPThatGoesDownKeepsItsLastRange(t *testing.T) {
	local, remote := fakecloud.New(fakecloud.Options{}), fakecloud.New(fakecloud.Options{})
	t.Cleanup(local.Close)
	t.Cleanup(remote.Close)
	local.SetRoot("volume")
	remote.SetRoot("volume")
	remote.SetVolumeVersions("3.0", "3.50")
	cfg, err := config.Load(strings.NewReader(fmt.Sprintf("[DEFAULT]\nservice_providers = default, remote1\n"+
		"[sp_default]\nimage_endpoint = %[1]s\nvolume_endpoint = %[1]s\n[sp_remote1]\nimage_endpoint = %[2]s\nvolume_endpoint = %[2]s\n",
		local.URL(), remote.URL())), "test.conf")
	if err != nil {
		t.Fatal(err)
	}
	p := New(cfg, Deps{Logger: slog.New(slog.DiscardHandler), Transport: httpclient.New(cfg).Transport})
	now := time.Now()
	p.micro.now = func() time.Time { return now }
	want := versions.Range{Min: "3.0", Max: "3.50"}
	if got := p.micro.get(context.Background(), "volume"); got != want {
		t.Fatalf("both up: %v", got)
	}
	remote.Close()
	now = now.Add(microversionsTTL + time.Second)
	if got := p.micro.refresh("volume"); got != want {
		t.Fatalf("remote1 down: %v, want its last range kept", got)
	}
	if until := p.micro.ranges["volume"].until; !until.Equal(now.Add(microversionsRetry)) {
		t.Fatalf("read again at %v, want in %v", until.Sub(now), microversionsRetry)
	}
	if got := p.micro.get(context.Background(), "image"); got != (versions.Range{}) {
		t.Fatalf("image: %v", got)
	}
}
