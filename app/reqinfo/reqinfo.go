// Package reqinfo reads what a proxied call is about from its path:
// /<service>/<version>/[<project_id>/]<resource_type>/[<resource_id>/][rest...].
// It is pure and total: any string either parses, or gives ErrMalformed (a 400) or
// ErrNotProxied (a 404).
package reqinfo

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"mixmatch/app/apierr"
	"mixmatch/app/services"
)

// ErrNotProxied is a path outside the services (a 404); its text is the answer's.
var ErrNotProxied = errors.New("mixmatch serves " + services.Prefixes() + " only")

// ErrMalformed is in the chain of every refusal of a path no service would read
// as its client wrote it; the refusal itself is an apierr 400.
var ErrMalformed = errors.New("malformed path")

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
	// ["action"], ["tags", "x"]). A trailing slash there is a last "": the
	// services' routes do not match it (Glance and Cinder answer 404), so such a
	// call is neither a list nor a create, and goes as written for the service to
	// answer.
	Rest []string
}

var (
	versionRE  = regexp.MustCompile(`^v[0-9]+(\.[0-9]+)?$`)
	uuidRE     = regexp.MustCompile(`^(?i:[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12})$`)
	projectRE  = regexp.MustCompile(`^(?i:[0-9a-f][0-9a-f-]*)$`) // Cinder's project_id_regex
	resourceRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*(\.json)?$`)
)

// Parse reads a URL path as the client wrote it (escaped, without query).
func Parse(escapedPath string) (Request, error) {
	segs, trailing, err := Segments(escapedPath)
	if err != nil {
		return Request{}, err
	}
	if len(segs) == 0 {
		return Request{}, ErrNotProxied
	}
	svc, ok := services.Get(segs[0])
	if !ok {
		return Request{}, ErrNotProxied
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
	if trailing {
		r.Rest = append(r.Rest, "")
	}
	return r, nil
}

// Segments splits an escaped path into its segments, unescaped, and says whether it
// ends with a slash. Mixmatch routes on the segments it checked, and the service
// must read the same ones whoever stands between (a web server, a path-based
// endpoint such as http://sp/image). So it refuses, before anything is routed: a dot
// segment (escaped too), which they would resolve, and which could climb out of the
// service to another on the same host; an empty segment, which Apache merges; an
// escaped slash, which the services' WSGI servers decode into a separator; and a %
// that starts no escape. A trailing slash is kept: the services' routes tell it apart.
func Segments(escapedPath string) (segs []string, trailing bool, err error) {
	if escapedPath == "" {
		return nil, false, nil
	}
	rest, ok := strings.CutPrefix(escapedPath, "/")
	if !ok {
		return nil, false, malformed("the path does not start with /")
	}
	if rest == "" {
		return nil, true, nil
	}
	raw := strings.Split(rest, "/")
	if raw[len(raw)-1] == "" {
		raw, trailing = raw[:len(raw)-1], true
	}
	for _, s := range raw {
		seg, err := url.PathUnescape(s)
		switch {
		case s == "":
			return nil, false, malformed("the path has an empty segment (//)")
		case err != nil:
			return nil, false, malformed("the path has a malformed %-escape")
		case strings.Contains(seg, "/"):
			return nil, false, malformed("the path has an escaped slash (%2F)")
		case seg == "." || seg == "..":
			return nil, false, malformed("the path has a dot segment (. or ..)")
		}
		segs = append(segs, seg)
	}
	return segs, trailing, nil
}

func malformed(msg string) error {
	return apierr.Wrap(http.StatusBadRequest, ErrMalformed, "%s", msg)
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

type namedKey struct{}

// RoutedByName marks a call whose MM-SERVICE-PROVIDER was set from the name of the
// resource it creates (NAME@SP), not by the client: the client chose a cloud by the
// name, and a parent its body names may contradict that choice, where a client's
// header is the client's word.
func RoutedByName(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), namedKey{}, true))
}

// IsRoutedByName reports whether RoutedByName marked the call.
func IsRoutedByName(r *http.Request) bool {
	named, _ := r.Context().Value(namedKey{}).(bool)
	return named
}
