//go:build load

package loadtest

import (
	"fmt"
	"strings"
	"time"

	"mixmatch/app/fakecloud"
	"mixmatch/app/store"
)

// cloud is one cloud's Glance v2 and Cinder v3: the shared fake, which never
// answers 5xx unless told to, so every 5xx the generator sees was made by mixmatch.
// Each resource names its cloud ("cloud" key), so the generator can tell a call that
// reached the wrong one.
type cloud struct {
	*fakecloud.Cloud
	name string
	// project is where the resources it holds live.
	project string
	// virtual: any id virtualID made with this prefix is a resource the cloud holds
	// in project. Broadcasts need an endless supply of ids no table row names yet;
	// minting them costs the stand-in nothing.
	virtual string
}

// newCloud starts a cloud whose tokens valid checks; created hears of every resource
// created through it, as its notifier would.
func newCloud(name, project, virtual string, valid func(string) (string, bool), created func(sp, kind, id, project string)) *cloud {
	c := &cloud{name: name, project: project, virtual: virtual}
	// A ten-minute run makes hundreds of thousands of calls; the report wants counts.
	opts := fakecloud.Options{Name: name, Tokens: valid, KeepCalls: 1}
	if virtual != "" {
		opts.Virtual = func(_, p, id string) bool { return p == project && isVirtualID(id, virtual) }
	}
	if created != nil {
		opts.Created = func(kind, id, p string) { created(name, kind, id, p) }
	}
	c.Cloud = fakecloud.New(opts)
	return c
}

// seed puts n images and n volumes in the cloud's project, created in the past so
// that what the run creates lists first.
func (c *cloud) seed(n int) []resource {
	var out []resource
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		at := base.Add(time.Duration(i) * time.Minute)
		img, vol := fakecloud.NewUUID(), fakecloud.NewUUID()
		c.Add(fakecloud.Images, c.project, img, map[string]any{"name": fmt.Sprintf("seed-image-%d", i),
			"created_at": at.Format(time.RFC3339), "disk_format": "raw", "container_format": "bare"})
		c.Add(fakecloud.Volumes, c.project, vol, map[string]any{"name": fmt.Sprintf("seed-volume-%d", i),
			"created_at": at.Format("2006-01-02T15:04:05.000000")})
		out = append(out, resource{Type: "images", ID: img, SP: c.name, Project: c.project},
			resource{Type: "volumes", ID: vol, SP: c.name, Project: c.project})
	}
	return out
}

// virtualID is a random id the cloud whose prefix it starts with holds. It has no
// dashes: mixmatch's broadcast asks the clouds for the normalised id (issue 17), and
// a cloud, as a real one, finds an id only as it was written.
func virtualID(prefix string) string {
	id := store.NormalizeID(fakecloud.NewUUID())
	return prefix + id[len(prefix):]
}

func isVirtualID(id, prefix string) bool {
	return len(id) == 32 && strings.HasPrefix(id, prefix) && strings.Trim(id, "0123456789abcdef") == ""
}
