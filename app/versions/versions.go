// Package versions writes the version documents of the unversioned roots (GET /image,
// /volume, /network) from the configured *_api_versions, as Glance, Cinder and
// Neutron write theirs, with links into the proxy.
package versions

import (
	"encoding/json"
	"net/http"
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

// Document builds the version list of a service; the first id is CURRENT.
func Document(service string, ids []string, base string) any {
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
			// The SPs' highest microversions differ; 3.0 is the one they all have.
			empty, micro := "", strings.TrimPrefix(id, "v")
			v.Version, v.MinVersion = &empty, &empty
			if major == svc.Microversions {
				v.Version, v.MinVersion = &micro, &micro
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
func Write(w http.ResponseWriter, service string, ids []string, base string) {
	status := http.StatusMultipleChoices
	if svc, ok := services.Get(service); ok {
		status = svc.RootStatus
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Document(service, ids, base))
}
