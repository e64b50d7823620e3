package reqinfo

import (
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"mixmatch/app/apierr"
	"mixmatch/app/services"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		path string
		want Request
	}{
		{"/image", Request{Service: "image"}},
		{"/image/", Request{Service: "image"}},
		{"/image/v2", Request{Service: "image", Version: "v2"}},
		{"/image/v2/images", Request{Service: "image", Version: "v2", ResourceType: "images"}},
		{"/image/v2.1/images/0E4D8E4A-6B1C-4C5D-9E2F-1A2B3C4D5E6F/file",
			Request{Service: "image", Version: "v2.1", ResourceType: "images", ResourceID: "0E4D8E4A-6B1C-4C5D-9E2F-1A2B3C4D5E6F", Rest: []string{"file"}}},
		{"/image/v2/images/0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f/tags/gold",
			Request{Service: "image", Version: "v2", ResourceType: "images", ResourceID: "0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f", Rest: []string{"tags", "gold"}}},
		{"/image/v1/images/detail", Request{Service: "image", Version: "v1", ResourceType: "images", Rest: []string{"detail"}}},
		{"/volume/v3/8a1e6f2c-0000-4000-8000-000000000001/volumes/detail",
			Request{Service: "volume", Version: "v3", ProjectID: "8a1e6f2c-0000-4000-8000-000000000001", ResourceType: "volumes", Rest: []string{"detail"}}},
		{"/volume/v3/8a1e6f2c000040008000000000000001/volumes/0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f/action",
			Request{Service: "volume", Version: "v3", ProjectID: "8a1e6f2c000040008000000000000001", ResourceType: "volumes", ResourceID: "0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f", Rest: []string{"action"}}},
		{"/volume/v3/volumes", Request{Service: "volume", Version: "v3", ResourceType: "volumes"}},
		{"/volume/v2/abcdef/snapshots", Request{Service: "volume", Version: "v2", ProjectID: "abcdef", ResourceType: "snapshots"}},
		{"/volume/v3/", Request{Service: "volume", Version: "v3"}},
		{"/volume/v3/8a1e/", Request{Service: "volume", Version: "v3", ProjectID: "8a1e"}},
		{"/image/v2/images/", Request{Service: "image", Version: "v2", ResourceType: "images", Rest: []string{""}}},
		{"/volume/v3/8a1e/volumes/detail/",
			Request{Service: "volume", Version: "v3", ProjectID: "8a1e", ResourceType: "volumes", Rest: []string{"detail", ""}}},
		{"/image/v2/images/0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f/",
			Request{Service: "image", Version: "v2", ResourceType: "images", ResourceID: "0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f", Rest: []string{""}}},
		{"/image/v2/images/0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f/tags/caf%C3%A9",
			Request{Service: "image", Version: "v2", ResourceType: "images", ResourceID: "0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f", Rest: []string{"tags", "café"}}},
		{"/network/v2.0/networks/0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f",
			Request{Service: "network", Version: "v2.0", ResourceType: "networks", ResourceID: "0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f"}},
		{"/network/v2.0/networks.json", Request{Service: "network", Version: "v2.0", ResourceType: "networks"}},
	} {
		got, err := Parse(tc.path)
		if err != nil {
			t.Errorf("Parse(%s): %v", tc.path, err)
			continue
		}
		if len(got.Rest) == 0 {
			got.Rest = nil
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%s) =\n %+v, want\n %+v", tc.path, got, tc.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, path := range []string{"", "/", "/compute/v2.1/servers", "/images", "/imagefoo/v2", "/image/two/images",
		"/image/v2/Images", "/volume/v3/8a1e/!!/x"} {
		if _, err := Parse(path); !errors.Is(err, ErrNotProxied) {
			t.Errorf("Parse(%q) = %v, want ErrNotProxied", path, err)
		}
	}
	for _, path := range []string{"/image/v2/images/x/../../../identity/v3/users", "/image/v2/./images",
		"/volume/v3/8a1e/volumes/..", "/image/v2/images/x/%2e%2E/%2E", "//image/v2/images", "/image//v2/images",
		"/image/v2/images//", "/image/v2/images/x%2F..%2F..", "/image/v2/images/%zz", "/image/v2/images/%4",
		"image/v2/images", "/compute//v2.1"} {
		_, err := Parse(path)
		if !errors.Is(err, ErrMalformed) || apierr.As(err).Status != http.StatusBadRequest {
			t.Errorf("Parse(%q) = %v, want a 400 ErrMalformed", path, err)
		}
	}
}

func TestTrailingSlashIsNeitherListNorCreate(t *testing.T) {
	for _, path := range []string{"/image/v2/images/", "/volume/v3/8a1e/volumes/", "/volume/v3/8a1e/volumes/detail/"} {
		r, err := Parse(path)
		if err != nil || r.IsList("GET") || r.IsCreate("POST") {
			t.Errorf("Parse(%q) = %+v, %v: a list or a create", path, r, err)
		}
	}
}

func TestListAndCreate(t *testing.T) {
	list, _ := Parse("/volume/v3/8a1e/volumes/detail")
	member, _ := Parse("/image/v2/images/0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f")
	coll, _ := Parse("/image/v2/images")
	switch {
	case !list.IsList("GET"), list.IsList("POST"), member.IsList("GET"), !coll.IsCreate("POST"), member.IsCreate("POST"):
		t.Fatal("IsList/IsCreate misjudge")
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{"/image/v2/images", "/volume/v3/8a1e/volumes/detail", "/network/v2.0/networks/x",
		"/image/v2/images/0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f/file", "//volume//v3//", "/volume/v3/-/volumes"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r, err := Parse(path)
		if err != nil {
			return
		}
		if _, known := services.Get(r.Service); !known || (r.Version != "" && !versionRE.MatchString(r.Version)) {
			t.Fatalf("Parse(%q) = %+v", path, r)
		}
		segs := strings.Split(path, "/")
		for i, seg := range segs {
			plain, _ := url.PathUnescape(seg)
			if plain == "." || plain == ".." || strings.Contains(plain, "/") || seg == "" && i > 0 && i < len(segs)-1 {
				t.Fatalf("Parse(%q) accepted segment %d, %q", path, i, seg)
			}
		}
		// Ids are kept as written, unescaped as the services unescape them: they
		// look them up exactly so.
		plain, _ := url.PathUnescape(path)
		if r.ResourceID != "" && !strings.Contains(plain, "/"+r.ResourceID) || r.ProjectID != "" && !strings.Contains(plain, "/"+r.ProjectID+"/") && !strings.HasSuffix(plain, "/"+r.ProjectID) {
			t.Fatalf("ids not as written: %+v", r)
		}
	})
}

// Parse tells a project segment from a collection by its shape alone: no collection
// of a service with the project in its path may look like a project id.
func TestNoCollectionLooksLikeAProject(t *testing.T) {
	for _, svc := range services.All() {
		for _, c := range svc.Collections {
			r, err := Parse("/" + svc.Name + "/v3/" + c.Type)
			if err != nil || r.ResourceType != c.Type || r.ProjectID != "" {
				t.Errorf("%s/%s parses as %+v (%v)", svc.Name, c.Type, r, err)
			}
		}
	}
}
