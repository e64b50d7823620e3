package fakecloud_test

import (
	"testing"

	"mixmatch/app/fakecloud"
)

// Glance's and Cinder's routes (python-routes, without minimization) match a path
// exactly: a collection or a member with a trailing slash is no route, a 404.
// mixmatch forwards such paths as written and relies on the answer being that.
func TestTrailingSlashesAreNoRoute(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	c.Add(fakecloud.Images, "", dashed, nil)
	c.Add(fakecloud.Volumes, "", dashed, nil)
	for _, path := range []string{"/v2/images/", "/v2/images/" + dashed + "/", "/v3/8a1e/volumes/", "/v3/8a1e/volumes/detail/",
		"/v3/8a1e/volumes/" + dashed + "/", "/v3/8a1e/snapshots/"} {
		call(t, c, "GET", path, "").want(t, path, 404)
	}
}
