//go:build e2e

// Package e2etest drives the federation of scripts/federation.sh with gophercloud, the
// Go OpenStack SDK; scripts/e2e.sh runs it with MIXMATCH_E2E_ENV naming the
// federation's environment file. Without the e2e build tag it is not built at all.
package e2etest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
)

func env(t *testing.T) map[string]string {
	f, err := os.Open(os.Getenv("MIXMATCH_E2E_ENV"))
	if err != nil {
		t.Fatalf("MIXMATCH_E2E_ENV: %v", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[k] = v
		}
	}
	return out
}

func TestGophercloudThroughTheCatalog(t *testing.T) {
	e := env(t)
	ctx := context.Background()
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: e["KEYSTONE_URL"],
		Username: "demo", Password: e["KEYSTONE_DEMO_PASSWORD"], DomainID: "default",
		Scope: &gophercloud.AuthScope{ProjectName: "demo", DomainID: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	imageClient, err := openstack.NewImageV2(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(imageClient.Endpoint, e["MIXMATCH_URL"]) {
		t.Fatalf("the catalog's image endpoint is %s, not mixmatch's", imageClient.Endpoint)
	}
	data := bytes.Repeat([]byte("gophercloud"), 10000)
	for _, name := range []string{"gc-local", "gc-remote@remote1"} {
		img, err := images.Create(ctx, imageClient, images.CreateOpts{Name: name, DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		if err := imagedata.Upload(ctx, imageClient, img.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
			t.Fatalf("upload %s: %v", name, err)
		}
		r, err := imagedata.Download(ctx, imageClient, img.ID).Extract()
		if err != nil {
			t.Fatalf("download %s: %v", name, err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("%s came back altered", name)
		}
		if want := strings.TrimSuffix(name, "@remote1"); img.Name != want {
			t.Fatalf("created as %q, want %q", img.Name, want)
		}
		defer images.Delete(ctx, imageClient, img.ID)
	}
	pages, err := images.List(imageClient, images.ListOpts{Limit: 1}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := images.ExtractImages(pages)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, img := range all {
		names[img.Name] = true
	}
	if !names["gc-local"] || !names["gc-remote"] {
		t.Fatalf("paging one image at a time listed %v", names)
	}

	volumeClient, err := openstack.NewBlockStorageV3(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	vpages, err := volumes.List(volumeClient, volumes.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vols, err := volumes.ExtractVolumes(vpages)
	if err != nil || len(vols) != 1 || vols[0].ID != e["REMOTE_VOLUME"] {
		t.Fatalf("volumes: %+v %v", vols, err)
	}
}
