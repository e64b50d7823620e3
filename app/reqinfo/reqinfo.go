// Package reqinfo reads what a proxied call is about from its path:
// /<service>/<version>/[<project_id>/]<resource_type>/[<resource_id>/][rest...].
// It is pure and total: any string either parses or gives ErrNotProxied.
package reqinfo

import (
	"errors"
	"regexp"
	"strings"

	"mixmatch/app/services"
)

// ErrNotProxied is a path outside the services (a 404); its text is the answer's.
var ErrNotProxied = errors.New("mixmatch serves " + services.Prefixes() + " only")

// Request is the parsed path of a call.
type Request struct {
	Service string // image, volume or network
	// Version is the path's version segment (v2, v2.1, v3, v2.0), "" for the
	// unversioned root.
	Version string
	// ProjectID is the Cinder path's project segment as written; "" when the path
	// has none (Glance, Neutron, Cinder >= 3.67 without it).
	ProjectID string
	// ResourceType is the collection (images, volumes, snapshots, networks, ...).
	ResourceType string
	// ResourceID is the member's id as written, when the path names one. The
	// services look ids up exactly as stored, so this is what goes to them; the
	// mapping table normalises ids itself (store.NormalizeID).
	ResourceID string
	// Rest is what follows the collection or the member (["detail"], ["file"],
	// ["action"], ["tags", "x"]).
	Rest []string
}

var (
	versionRE  = regexp.MustCompile(`^v[0-9]+(\.[0-9]+)?$`)
	uuidRE     = regexp.MustCompile(`^(?i:[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12})$`)
	projectRE  = regexp.MustCompile(`^(?i:[0-9a-f][0-9a-f-]*)$`) // Cinder's project_id_regex
	resourceRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*(\.json)?$`)
)

// Parse reads a URL path (already unescaped, without query).
func Parse(path string) (Request, error) {
	segs := split(path)
	if len(segs) == 0 {
		return Request{}, ErrNotProxied
	}
	svc, ok := services.Get(segs[0])
	if !ok {
		return Request{}, ErrNotProxied
	}
	for _, s := range segs {
		// A dot segment, which a path-based endpoint (http://sp/image) or the web
		// server in front of it would resolve, could climb out of the service to
		// another one on the same host.
		if s == "." || s == ".." {
			return Request{}, ErrNotProxied
		}
	}
	r := Request{Service: segs[0]}
	segs = segs[1:]
	if len(segs) == 0 {
		return r, nil
	}
	if !versionRE.MatchString(segs[0]) {
		return Request{}, ErrNotProxied
	}
	r.Version, segs = segs[0], segs[1:]
	// No collection name of a service that puts the project before the collection
	// (Cinder) is made of hex digits and dashes only, so such a segment is the project.
	if svc.ProjectInPath && len(segs) > 0 && projectRE.MatchString(segs[0]) {
		r.ProjectID, segs = segs[0], segs[1:]
	}
	if len(segs) == 0 {
		return r, nil
	}
	if !resourceRE.MatchString(segs[0]) {
		return Request{}, ErrNotProxied
	}
	r.ResourceType, segs = strings.TrimSuffix(segs[0], ".json"), segs[1:]
	if len(segs) > 0 && uuidRE.MatchString(segs[0]) {
		r.ResourceID, segs = segs[0], segs[1:]
	}
	r.Rest = segs
	return r, nil
}

func split(path string) []string {
	var segs []string
	for _, s := range strings.Split(path, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	return segs
}

// IsList reports a collection read: GET .../volumes, .../volumes/detail, .../images.
func (r Request) IsList(method string) bool {
	return method == "GET" && r.ResourceType != "" && r.ResourceID == "" &&
		(len(r.Rest) == 0 || (len(r.Rest) == 1 && r.Rest[0] == "detail"))
}

// IsCreate reports a POST to a collection.
func (r Request) IsCreate(method string) bool {
	return method == "POST" && r.ResourceType != "" && r.ResourceID == "" && len(r.Rest) == 0
}
