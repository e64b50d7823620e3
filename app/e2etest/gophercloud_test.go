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
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
)

// waitTime bounds each wait for Cinder to finish a create or a delete.
const waitTime = time.Minute

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

// clients are the demo user's image and volume clients, found in the local catalog,
// which must name mixmatch.
func clients(t *testing.T, ctx context.Context) (image, volume *gophercloud.ServiceClient) {
	e := env(t)
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: e["KEYSTONE_URL"],
		Username: "demo", Password: e["KEYSTONE_DEMO_PASSWORD"], DomainID: "default",
		Scope: &gophercloud.AuthScope{ProjectName: "demo", DomainID: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	image, err = openstack.NewImageV2(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	volume, err = openstack.NewBlockStorageV3(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*gophercloud.ServiceClient{image, volume} {
		if !strings.HasPrefix(c.Endpoint, e["MIXMATCH_URL"]) {
			t.Fatalf("the catalog's %s endpoint is %s, not mixmatch's", c.Type, c.Endpoint)
		}
	}
	return image, volume
}

// only keeps the ids among got that are in mine, in got's order: the shell's checks
// have images and volumes of their own in the same project.
func only(got, mine []string) []string {
	var out []string
	for _, id := range got {
		if slices.Contains(mine, id) {
			out = append(out, id)
		}
	}
	return out
}

// gone waits until get answers 404.
func gone(ctx context.Context, get func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, waitTime)
	defer cancel()
	return gophercloud.WaitFor(ctx, func(ctx context.Context) (bool, error) {
		err := get(ctx)
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return true, nil
		}
		return false, err
	})
}

func TestImages(t *testing.T) {
	ctx := context.Background()
	imageClient, _ := clients(t, ctx)
	data := bytes.Repeat([]byte("gophercloud"), 10000)
	var ids []string
	for _, name := range []string{"gc-local", "gc-remote@remote1"} {
		img, err := images.Create(ctx, imageClient, images.CreateOpts{Name: name, DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		ids = append(ids, img.ID)
		t.Cleanup(func() {
			if err := images.Delete(ctx, imageClient, img.ID).ExtractErr(); err != nil {
				t.Errorf("delete %s: %v", img.ID, err)
			}
		})
		if want := strings.TrimSuffix(name, "@remote1"); img.Name != want {
			t.Fatalf("created as %q, want %q", img.Name, want)
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
		shown, err := images.Get(ctx, imageClient, img.ID).Extract()
		if err != nil || shown.ID != img.ID || shown.Status != images.ImageStatusActive {
			t.Fatalf("show %s: %+v %v", name, shown, err)
		}
	}
	for _, dir := range []string{"asc", "desc"} {
		pages, err := images.List(imageClient, images.ListOpts{Limit: 1, Sort: "name:" + dir}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all, err := images.ExtractImages(pages)
		if err != nil {
			t.Fatal(err)
		}
		var got, names []string
		for _, img := range all {
			got = append(got, img.ID)
			names = append(names, img.Name)
		}
		want := slices.Clone(ids) // gc-local, gc-remote
		sorted := slices.Sorted(slices.Values(names))
		if dir == "desc" {
			slices.Reverse(want)
			slices.Reverse(sorted)
		}
		if !slices.Equal(only(got, ids), want) || !slices.Equal(names, sorted) {
			t.Errorf("paging one image at a time sorted by name %s listed %v (%v), want %v among them", dir, got, names, want)
		}
	}
}

func TestVolumesAndSnapshots(t *testing.T) {
	ctx := context.Background()
	_, volumeClient := clients(t, ctx)
	var vols, snaps []string
	for _, name := range []string{"gc-local", "gc-remote@remote1"} {
		v, err := volumes.Create(ctx, volumeClient, volumes.CreateOpts{Name: name, Size: 1}, nil).Extract()
		if err != nil {
			t.Fatalf("create volume %s: %v", name, err)
		}
		vols = append(vols, v.ID)
		t.Cleanup(func() {
			if err := volumes.Delete(ctx, volumeClient, v.ID, nil).ExtractErr(); err != nil {
				t.Errorf("delete volume %s: %v", v.ID, err)
				return
			}
			if err := gone(ctx, func(ctx context.Context) error { return volumes.Get(ctx, volumeClient, v.ID).Err }); err != nil {
				t.Errorf("volume %s not deleted: %v", v.ID, err)
			}
		})
		if want := strings.TrimSuffix(name, "@remote1"); v.Name != want {
			t.Fatalf("created as %q, want %q", v.Name, want)
		}
		wctx, cancel := context.WithTimeout(ctx, waitTime)
		err = volumes.WaitForStatus(wctx, volumeClient, v.ID, "available")
		cancel()
		if err != nil {
			t.Fatalf("volume %s: %v", name, err)
		}
		// No header names the cloud: mixmatch routes the create by the volume it names.
		s, err := snapshots.Create(ctx, volumeClient, snapshots.CreateOpts{VolumeID: v.ID, Name: v.Name}).Extract()
		if err != nil {
			t.Fatalf("create a snapshot of %s: %v", name, err)
		}
		snaps = append(snaps, s.ID)
		t.Cleanup(func() { // before the volume's, as cleanups run last first
			if err := snapshots.Delete(ctx, volumeClient, s.ID).ExtractErr(); err != nil {
				t.Errorf("delete snapshot %s: %v", s.ID, err)
				return
			}
			if err := gone(ctx, func(ctx context.Context) error { return snapshots.Get(ctx, volumeClient, s.ID).Err }); err != nil {
				t.Errorf("snapshot %s not deleted: %v", s.ID, err)
			}
		})
		wctx, cancel = context.WithTimeout(ctx, waitTime)
		err = snapshots.WaitForStatus(wctx, volumeClient, s.ID, "available")
		cancel()
		if err != nil {
			t.Fatalf("snapshot of %s: %v", name, err)
		}
	}

	// Newest first by default, across both clouds, one item a page.
	pages, err := volumes.List(volumeClient, volumes.ListOpts{Limit: 1}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := volumes.ExtractVolumes(pages)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, v := range all {
		got = append(got, v.ID)
		if i > 0 && v.CreatedAt.After(all[i-1].CreatedAt) {
			t.Errorf("volume %s (%s) listed after the older %s (%s)", v.ID, v.CreatedAt, all[i-1].ID, all[i-1].CreatedAt)
		}
	}
	if want := []string{vols[1], vols[0]}; !slices.Equal(only(got, vols), want) {
		t.Errorf("paging one volume at a time listed %v, want %v among them", got, want)
	}
	pages, err = volumes.List(volumeClient, volumes.ListOpts{Limit: 1, Sort: "name:asc"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all, err = volumes.ExtractVolumes(pages); err != nil {
		t.Fatal(err)
	}
	got = nil
	var names []string
	for _, v := range all {
		got = append(got, v.ID)
		names = append(names, v.Name)
	}
	if !slices.Equal(only(got, vols), vols) || !slices.IsSorted(names) {
		t.Errorf("paging one volume at a time sorted by name listed %v (%v), want %v among them", got, names, vols)
	}

	// Newest first by default, then by name. Cinder sorts snapshots by display_name;
	// "name" is a 400 for snapshots, not for volumes.
	for sort, want := range map[string][]string{"": {snaps[1], snaps[0]}, "display_name:asc": snaps} {
		spages, err := snapshots.List(volumeClient, snapshots.ListOpts{Limit: 1, Sort: sort}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sall, err := snapshots.ExtractSnapshots(spages)
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		for _, s := range sall {
			got = append(got, s.ID)
		}
		if !slices.Equal(only(got, snaps), want) {
			t.Errorf("paging one snapshot at a time (sort %q) listed %v, want %v among them", sort, got, want)
		}
	}

	v, err := volumes.Get(ctx, volumeClient, vols[1]).Extract()
	if err != nil || v.Name != "gc-remote" || v.Status != "available" {
		t.Errorf("show the remote volume: %+v %v", v, err)
	}
	s, err := snapshots.Get(ctx, volumeClient, snaps[1]).Extract()
	if err != nil || s.VolumeID != vols[1] || s.Status != "available" {
		t.Errorf("show the remote snapshot: %+v %v", s, err)
	}
}
