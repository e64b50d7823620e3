// Package versions writes the version documents of the unversioned roots (GET /image,
// /volume, /network) from the configured *_api_versions, as Glance, Cinder and
// Neutron write theirs, with links into the proxy.
package versions

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"mixmatch/app/services"
)

type link struct {
	Rel  string `json:"rel"`
	Type string `json:"type,omitempty"`
	Href string `json:"href"`
}

type mediaType struct {
	Base string `json:"base"`
	Type string `json:"type"`
}

type version struct {
	ID         string      `json:"id"`
	Status     string      `json:"status"`
	Version    *string     `json:"version,omitempty"`
	MinVersion *string     `json:"min_version,omitempty"`
	Updated    string      `json:"updated,omitempty"`
	Links      []link      `json:"links"`
	MediaTypes []mediaType `json:"media-types,omitempty"`
}

// BaseURL is the proxy's own URL as the client reached it: the scheme of the
// connection (under FastCGI, Apache's HTTPS) and its Host, which Apache passes on.
// X-Forwarded-* are not believed: any client can send them, and the links built
// from them are followed with the client's token. Behind a proxy that changes the
// scheme or host, [DEFAULT] public_url says it. "" when the call named no host.
func BaseURL(r *http.Request) string {
	if r.Host == "" {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Range is a microversion range, "3.0" to "3.70", as a version document's
// min_version and version give it.
type Range struct{ Min, Max string }

// ParseMicroversion reads "3.70".
func ParseMicroversion(v string) (major, minor int, ok bool) {
	a, b, found := strings.Cut(strings.TrimSpace(v), ".")
	major, errA := strconv.Atoi(a)
	minor, errB := strconv.Atoi(b)
	return major, minor, found && errA == nil && errB == nil && major >= 0 && minor >= 0
}

// less orders microversions of one major version, which is all a range holds.
func less(a, b string) bool {
	_, x, _ := ParseMicroversion(a)
	_, y, _ := ParseMicroversion(b)
	return x < y
}

// Narrow is the range every one of ranges supports: the highest of their lowest
// versions to the lowest of their highest. ok is false when there is none, or the
// ranges have nothing in common.
func Narrow(ranges []Range) (r Range, ok bool) {
	for i, x := range ranges {
		if i == 0 || less(r.Min, x.Min) {
			r.Min = x.Min
		}
		if i == 0 || less(x.Max, r.Max) {
			r.Max = x.Max
		}
	}
	return r, len(ranges) > 0 && !less(r.Max, r.Min)
}

// Document builds the version list of a service; the first id is CURRENT. micro is
// the microversion range of the service's major version that has them; the zero
// Range offers its first, x.0, which every release serves.
func Document(service string, ids []string, base string, micro Range) any {
	svc, _ := services.Get(service)
	out := make([]version, 0, len(ids))
	for i, id := range ids {
		major, _, _ := strings.Cut(id, ".")
		v := version{ID: id, Status: "SUPPORTED",
			Links: []link{{Rel: "self", Href: base + "/" + service + "/" + major + "/"}}}
		if i == 0 {
			v.Status = "CURRENT"
		}
		if svc != nil && svc.Microversions != "" {
			empty := ""
			v.Version, v.MinVersion = &empty, &empty
			if major == svc.Microversions {
				r := micro
				if r == (Range{}) {
					r.Min = strings.TrimPrefix(svc.Microversions, "v") + ".0"
					r.Max = r.Min
				}
				v.Version, v.MinVersion = &r.Max, &r.Min
			}
			v.Updated = "2017-02-25T12:00:00Z"
			v.Links = append([]link{{Rel: "describedby", Type: "text/html", Href: "https://docs.openstack.org/"}}, v.Links...)
			v.MediaTypes = []mediaType{{Base: "application/json",
				Type: "application/vnd.openstack." + service + "+json;version=" + strings.TrimPrefix(major, "v")}}
		}
		out = append(out, v)
	}
	return map[string]any{"versions": out}
}

// Write answers with a service's document, links under base, with the status the
// service's own root answers.
func Write(w http.ResponseWriter, service string, ids []string, base string, micro Range) {
	status := http.StatusMultipleChoices
	if svc, ok := services.Get(service); ok {
		status = svc.RootStatus
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Document(service, ids, base, micro))
}
