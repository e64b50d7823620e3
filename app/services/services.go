// Package services describes the OpenStack services mixmatch proxies, one entry
// each: how mixmatch.conf names them, how their paths and answers are shaped, and
// which of their collections it records, aggregates or routes. Adding a service or
// a resource type is one edit to the table below; everything else looks it up.
package services

import (
	"encoding/json"
	"slices"
	"strings"
)

// Service is one proxied service. Read-only: the table is shared by every caller.
type Service struct {
	// Name is the path prefix (/image) and the name in enabled_services.
	Name string
	// CodeName names the service as operators know it, for help texts.
	CodeName string
	// EndpointKey and VersionsKey are the mixmatch.conf options of the service's
	// endpoint ([sp_*]) and announced versions ([DEFAULT]).
	EndpointKey, VersionsKey string
	// Port is where the service listens in a stock deployment; the sample's local
	// cloud points there.
	Port int
	// APIVersions is the default of VersionsKey, CURRENT first.
	APIVersions []string
	// DefaultEnabled: part of the default enabled_services. Upstream enabled image
	// and volume only, and a file without the option must keep meaning that.
	DefaultEnabled bool
	// ProjectInPath: the path names the project before the collection
	// (/v3/<project>/volumes), and a remote cloud needs its own project there.
	ProjectInPath bool
	// DefaultLimit is the page size the service uses when a list gives no limit,
	// and MaxLimit the largest it answers; an aggregated list pages alike. Neutron
	// is unbounded unless configured, but a merged list must be bounded.
	DefaultLimit, MaxLimit int
	// Paging is how the service's lists point at their next page.
	Paging Paging
	// RootStatus is the status of the unversioned root's version document.
	RootStatus int
	// Microversions is the major version that has microversions (Cinder's v3):
	// the version document then carries version and min_version for it, and
	// media types and a describedby link for every version. "" for none.
	Microversions string
	// Collections are the resource types under the service's versioned paths.
	Collections []Collection
}

// Paging is a style of list answer's next-page links.
type Paging int

const (
	// LinksKey: "<list key>_links": [{"rel": "next", "href": <absolute URL>}].
	LinksKey Paging = iota
	// FirstNext: "first", "next" and "schema" beside the list, relative to the
	// endpoint (Glance v2; v1 had none).
	FirstNext
)

// Collection is one resource type of a service.
type Collection struct {
	// Type is the path segment (/v2/images) and, for Mapped types, the
	// resource_type stored in resource_mapping: existing rows and operators' SQL
	// use it, so it never changes.
	Type string
	// MappedAs is the resource_type of a Mapped collection's rows when it is not
	// Type: one resource under two paths (Cinder's transfers) is one row, found
	// whichever path the next call takes.
	MappedAs string
	// Key is the singular: the key wrapping one member in a create or show request
	// and answer ({"volume": {...}}), and the noun of messages. "" for what has no
	// members (schemas, limits).
	Key string
	// Bare: answers hold the member itself, not wrapped in Key (Glance v2).
	Bare bool
	// ListKey is the key of the list in a list answer.
	ListKey string
	// PerCloud: a member lives in one cloud and belongs to a user's project, as
	// opposed to definitions every cloud has its own of (types, schemas, limits).
	PerCloud bool
	// Mapped: resource_mapping records where members are, learned from creates
	// and notifications and accepted by mixmatch-manage.
	Mapped bool
	// Aggregate: with [DEFAULT] aggregation, a list merges every cloud's.
	Aggregate bool
	// Detail: the collection has a /detail list, the only one whose items carry
	// the sort keys; an aggregated summary list is read from it and trimmed.
	Detail bool
	// RouteByName: a create naming the member NAME@SP goes to that SP.
	RouteByName bool
	// NameHeader is the request header a create may name the member in instead of
	// the body (Glance v1).
	NameHeader string
	// Refs are the fields of a create's member object that name its parent, a
	// resource the new one must live beside: the create goes to the parent's cloud.
	// A field naming what the service fetches through the catalog (a volume's
	// imageRef: Cinder downloads the image through mixmatch) is no parent.
	Refs []Ref
}

// Ref is a create field naming a resource of a Mapped type.
type Ref struct {
	Field string
	// Type is a Mapped type; those are unique across services, as resource_mapping
	// keys rows on them alone.
	Type string
}

var table = []*Service{
	{
		Name: "image", CodeName: "Glance", EndpointKey: "image_endpoint", VersionsKey: "image_api_versions",
		// Glance has served no v1 since Rocky; announcing it sends clients to 404s.
		Port: 9292, APIVersions: []string{"v2.3", "v2.2", "v2.1", "v2.0"}, DefaultEnabled: true,
		// api_limit_max and limit_param_default.
		DefaultLimit: 25, MaxLimit: 1000, Paging: FirstNext, RootStatus: 300,
		Collections: []Collection{
			{Type: "images", Key: "image", Bare: true, ListKey: "images", PerCloud: true, Mapped: true,
				Aggregate: true, RouteByName: true, NameHeader: "X-Image-Meta-Name"},
			{Type: "tasks", Key: "task", Bare: true, ListKey: "tasks"},
			{Type: "schemas"},
			{Type: "info"},
			{Type: "metadefs"},
		},
	},
	{
		Name: "volume", CodeName: "Cinder", EndpointKey: "volume_endpoint", VersionsKey: "volume_api_versions",
		// Cinder has served v3 alone since Xena (v2 went then, v1 in Queens).
		Port: 8776, APIVersions: []string{"v3.0"}, DefaultEnabled: true, ProjectInPath: true,
		// osapi_max_limit, which is also Cinder's page size without a limit.
		DefaultLimit: 1000, MaxLimit: 1000, Paging: LinksKey, RootStatus: 300, Microversions: "v3",
		Collections: []Collection{
			{Type: "volumes", Key: "volume", ListKey: "volumes", PerCloud: true, Mapped: true,
				Aggregate: true, Detail: true, RouteByName: true,
				Refs: []Ref{{"source_volid", "volumes"}, {"snapshot_id", "snapshots"}, {"backup_id", "backups"}}},
			{Type: "snapshots", Key: "snapshot", ListKey: "snapshots", PerCloud: true, Mapped: true,
				Aggregate: true, Detail: true, Refs: []Ref{{"volume_id", "volumes"}}},
			{Type: "backups", Key: "backup", ListKey: "backups", PerCloud: true, Mapped: true,
				Refs: []Ref{{"volume_id", "volumes"}, {"snapshot_id", "snapshots"}}},
			{Type: "os-volume-transfer", MappedAs: "transfers", Key: "transfer", ListKey: "transfers", PerCloud: true,
				Mapped: true, Refs: []Ref{{"volume_id", "volumes"}}},
			// The transfer API of microversion 3.55 on, over the same transfers.
			{Type: "volume-transfers", MappedAs: "transfers", Key: "transfer", ListKey: "transfers", PerCloud: true,
				Mapped: true, Refs: []Ref{{"volume_id", "volumes"}}},
			// Nova's attach and detach (microversion 3.44): the reservation names its
			// volume in the body only.
			{Type: "attachments", Key: "attachment", ListKey: "attachments", PerCloud: true, Mapped: true,
				Refs: []Ref{{"volume_uuid", "volumes"}}},
			{Type: "types", Key: "volume_type", ListKey: "volume_types"},
			{Type: "qos-specs", Key: "qos_specs", ListKey: "qos_specs"},
			{Type: "messages", Key: "message", ListKey: "messages"},
			{Type: "limits"},
		},
	},
	{
		Name: "network", CodeName: "Neutron", EndpointKey: "network_endpoint", VersionsKey: "network_api_versions",
		Port: 9696, APIVersions: []string{"v2.0"},
		DefaultLimit: 1000, MaxLimit: 1000, Paging: LinksKey, RootStatus: 200,
		Collections: []Collection{
			{Type: "networks", Key: "network", ListKey: "networks", PerCloud: true, Mapped: true, Aggregate: true},
			{Type: "subnets", Key: "subnet", ListKey: "subnets", PerCloud: true, Mapped: true, Aggregate: true,
				Refs: []Ref{{"network_id", "networks"}}},
			{Type: "ports", Key: "port", ListKey: "ports", PerCloud: true, Mapped: true, Aggregate: true,
				Refs: []Ref{{"network_id", "networks"}}},
			{Type: "routers", Key: "router", ListKey: "routers", PerCloud: true},
			{Type: "floatingips", Key: "floatingip", ListKey: "floatingips", PerCloud: true,
				Refs: []Ref{{"floating_network_id", "networks"}, {"port_id", "ports"}}},
			{Type: "security-groups", Key: "security_group", ListKey: "security_groups", PerCloud: true},
		},
	},
}

// All returns the services in the table's order.
func All() []*Service { return table }

// Get returns the service of a name.
func Get(name string) (*Service, bool) {
	for _, s := range table {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}

// Names lists the services' names in the table's order.
func Names() []string {
	names := make([]string, len(table))
	for i, s := range table {
		names[i] = s.Name
	}
	return names
}

// Prefixes lists the path prefixes for messages: "/image, /volume and /network".
func Prefixes() string {
	paths := make([]string, len(table))
	for i, s := range table {
		paths[i] = "/" + s.Name
	}
	if len(paths) < 2 {
		return strings.Join(paths, "")
	}
	return strings.Join(paths[:len(paths)-1], ", ") + " and " + paths[len(paths)-1]
}

// Collection returns the collection of a resource type.
func (s *Service) Collection(resourceType string) (*Collection, bool) {
	for i := range s.Collections {
		if s.Collections[i].Type == resourceType {
			return &s.Collections[i], true
		}
	}
	return nil, false
}

// Lookup returns a service's collection; ok is false when either is unknown.
func Lookup(service, resourceType string) (*Collection, bool) {
	s, ok := Get(service)
	if !ok {
		return nil, false
	}
	return s.Collection(resourceType)
}

// MappedTypes lists the resource types resource_mapping holds, in table order,
// each once.
func MappedTypes() []string {
	var types []string
	for _, s := range table {
		for _, c := range s.Collections {
			if t := c.Row(); c.Mapped && !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	return types
}

// Row is the resource_type of a Mapped collection's rows.
func (c *Collection) Row() string {
	if c.MappedAs != "" {
		return c.MappedAs
	}
	return c.Type
}

// ByRow returns the first collection of a service whose rows are of a
// resource_type: where to ask for a resource a reference names.
func (s *Service) ByRow(row string) (*Collection, bool) {
	for i := range s.Collections {
		if c := &s.Collections[i]; c.Mapped && c.Row() == row {
			return c, true
		}
	}
	return nil, false
}

// RowType is the resource_type of the rows of a service's resource type: the
// path's type unless the table stores it under another.
func RowType(service, resourceType string) string {
	if c, ok := Lookup(service, resourceType); ok {
		return c.Row()
	}
	return resourceType
}

// IsMapped reports whether resource_mapping holds a resource type. The type alone
// says it, as rows carry no service.
func IsMapped(resourceType string) bool {
	for _, t := range MappedTypes() {
		if t == resourceType {
			return true
		}
	}
	return false
}

// Noun names a resource type in messages: its singular, else the type as given.
func Noun(service, resourceType string) string {
	if c, ok := Lookup(service, resourceType); ok && c.Key != "" {
		return c.Key
	}
	return resourceType
}

// Member finds the member object in an answer about one: under Key, else the
// answer itself. A Bare answer with an id is the member even when it has a field
// named Key (an image property); Glance v1 wrapped its images as the others do.
func (c *Collection) Member(body map[string]json.RawMessage) map[string]json.RawMessage {
	if c.Bare && body["id"] != nil {
		return body
	}
	if raw, ok := body[c.Key]; c.Key != "" && ok {
		// The wrapped resource alone: an "id" beside the wrapper is not its id, and
		// a wrapper that is no object holds none.
		var inner map[string]json.RawMessage
		if json.Unmarshal(raw, &inner) != nil {
			return nil
		}
		return inner
	}
	return body
}
