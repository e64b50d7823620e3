package fakecloud

import (
	"net/http"
	"strings"
)

// SetRoot makes GET / answer as the root of a service ("image", "volume" or
// "network"; "" for none, the default: a 404). The one server stands in for all
// three, whose roots share that path, and a client that discovers versions must
// not be given another service's.
func (c *Cloud) SetRoot(service string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.root = service
}

// rootDocument is a service's version document, with links built from the host the
// caller named, as each service builds them (Glance's and Cinder's with a 300,
// Neutron's with a 200). The services answer it before any token check.
func (c *Cloud) rootDocument(r *http.Request) response {
	service, base := c.rootService(), baseURL(r)
	self := func(path string) map[string]any { return map[string]any{"rel": "self", "href": base + path} }
	switch service {
	case "image":
		var versions []any
		for i, minor := range strings.Fields("9 8 7 6 5 4 3 2 1 0") {
			status := "SUPPORTED"
			if i == 0 {
				status = "CURRENT"
			}
			versions = append(versions, map[string]any{"id": "v2." + minor, "status": status, "links": []any{self("/v2/")}})
		}
		return reply(http.StatusMultipleChoices, "root", map[string]any{"versions": versions})
	case "volume":
		lowest, highest := c.volumeVersions()
		return reply(http.StatusMultipleChoices, "root", map[string]any{"versions": []any{map[string]any{
			"id": "v3.0", "status": "CURRENT", "version": highest, "min_version": lowest, "updated": "2023-08-31T00:00:00Z",
			"links": []any{map[string]any{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
				self("/v3/")},
			"media-types": []any{map[string]any{"base": "application/json",
				"type": "application/vnd.openstack.volume+json;version=3"}}}}})
	case "network":
		return reply(http.StatusOK, "root", map[string]any{"versions": []any{map[string]any{
			"id": "v2.0", "status": "CURRENT", "links": []any{self("/v2.0/")}}}})
	}
	return glance.noRoute(r)
}

func (c *Cloud) rootService() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.root
}
