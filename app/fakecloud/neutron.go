package fakecloud

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

var (
	// networkAttrs are the network attributes Neutron filters on.
	networkAttrs = []string{"id", "name", "description", "status", "admin_state_up", "shared", "tenant_id", "project_id",
		"mtu", "router:external", "port_security_enabled", "created_at", "updated_at", "revision_number",
		"availability_zone_hints", "availability_zones", "subnets", "tags", "ipv4_address_scope", "ipv6_address_scope"}
	// networkSortKeys are the attributes whose is_sort_key is set.
	networkSortKeys = []string{"id", "name", "description", "status", "admin_state_up", "shared", "tenant_id", "project_id",
		"mtu", "created_at", "updated_at", "revision_number"}
	networkWritable = []string{"name", "description", "admin_state_up", "shared", "tenant_id", "project_id", "mtu",
		"router:external", "port_security_enabled", "availability_zone_hints", "dns_domain", "qos_policy_id",
		"provider:network_type", "provider:physical_network", "provider:segmentation_id", "segments", "is_default"}
)

// neutron is /v2.0/networks...
func (c *Cloud) neutron(req *request, rest []string) response {
	r, m := req.Request, req.Method
	switch {
	case len(rest) == 0:
		return neutron.collection(req, c.listNetworks, c.createNetwork)
	case len(rest) != 1 || rest[0] == "":
		return neutron.noRoute(r)
	}
	n, ok := c.find(Networks, req.project, rest[0])
	if !ok || !networkVisible(n, req.project) {
		return neutron.neutronError(http.StatusNotFound, "NetworkNotFound", "Network "+rest[0]+" could not be found.")
	}
	switch m {
	case http.MethodGet:
		return reply(http.StatusOK, "get", map[string]any{"network": networkView(n, req.q.all("fields"))})
	case http.MethodPut, http.MethodDelete:
		if !n.visibleTo(req.project) {
			return neutron.neutronError(http.StatusForbidden, "PolicyNotAuthorized", "rule:update_network is disallowed by policy")
		}
		if m == http.MethodDelete {
			c.cols[Networks].remove(n)
			return empty(http.StatusNoContent, "delete")
		}
		in, msg := networkBody(req)
		if msg != "" {
			return neutron.fail(r, http.StatusBadRequest, msg)
		}
		doc := clone(n.doc)
		for k, v := range in {
			doc[k] = v
		}
		doc["updated_at"] = time.Now().UTC().Format(time.RFC3339)
		doc["revision_number"] = revision(doc) + 1
		n.doc = doc
		return reply(http.StatusOK, "update", map[string]any{"network": networkView(n, nil)})
	}
	return neutron.badMethod(r, "DELETE", "GET", "PUT")
}

func revision(doc map[string]any) int {
	n, _ := number(doc["revision_number"])
	return int(n)
}

// networkVisible: a project's own networks and the shared ones.
func networkVisible(n *resource, project string) bool {
	return n.visibleTo(project) || n.doc["shared"] == true
}

func networkView(n *resource, fields []string) map[string]any {
	doc := clone(n.doc)
	if len(fields) == 0 {
		return doc
	}
	out := map[string]any{}
	for _, f := range fields {
		if v, ok := doc[f]; ok {
			out[f] = v
		}
	}
	return out
}

func (c *Cloud) listNetworks(req *request) response {
	r, q := req.Request, req.q
	bad := func(typ, msg string) response { return neutron.neutronError(http.StatusBadRequest, typ, msg) }
	limit := 0 // pagination_max_limit is infinite: no limit, no pages
	if v, ok := q.first("limit"); ok {
		n, ok := pyInt(v)
		if !ok || n < 0 {
			return bad("BadRequest", fmt.Sprintf("Bad limit request: Limit must be an integer 0 or greater and not '%s'.", v))
		}
		limit = n
	}
	var names, dirs []string
	for _, k := range q.all("sort_key") {
		if k != "" {
			names = append(names, k)
		}
	}
	for _, d := range q.all("sort_dir") {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if len(names) != len(dirs) {
		return bad("HTTPBadRequest", "The number of sort_keys and sort_dirs must be same")
	}
	var keys []sortKey
	for i, k := range names {
		if !slices.Contains(networkSortKeys, k) {
			return bad("HTTPBadRequest", fmt.Sprintf("['%s'] is invalid attribute for sort_keys", k))
		}
		if dirs[i] != "asc" && dirs[i] != "desc" {
			return bad("HTTPBadRequest", fmt.Sprintf("['%s'] is invalid value for sort_dirs, valid value is 'asc' and 'desc'", dirs[i]))
		}
		keys = append(keys, sortKey{k, dirs[i] == "desc"})
	}
	// The primary key closes the order, ascending, whatever the other keys.
	keys = tiebreak(keys, []string{"id"}, false)
	reverse := false
	if v, ok := q.first("page_reverse"); ok {
		reverse = strings.ToLower(v) == "true"
	}
	filters := q.without("limit", "marker", "sort_key", "sort_dir", "page_reverse", "fields")
	for _, f := range filters {
		if !slices.Contains(networkAttrs, f.key) {
			return bad("HTTPBadRequest", fmt.Sprintf("[%s] is invalid attribute for filtering", f.key))
		}
	}
	p := page{keys: keys, limit: -1, keep: func(n *resource) bool { return networkVisible(n, req.project) && matches(n.doc, filters) }}
	if limit > 0 {
		p.limit, p.reverse = limit, reverse
		if id, _ := q.first("marker"); id != "" {
			m, ok := c.find(Networks, req.project, id)
			if !ok || !networkVisible(m, req.project) {
				return neutron.neutronError(http.StatusNotFound, "NetworkNotFound", "Network "+id+" could not be found.")
			}
			p.marker = m
		}
	}
	items := c.cols[Networks].list(p)
	views := make([]map[string]any, len(items))
	for i, n := range items {
		views[i] = networkView(n, q.all("fields"))
	}
	body := map[string]any{"networks": views}
	if limit > 0 {
		links := []any{}
		path := baseURL(r) + r.URL.EscapedPath() + "?"
		if !(len(items) < limit && !reverse) {
			params := q.without("marker", "page_reverse")
			if len(items) > 0 {
				params = append(params, param{"marker", items[len(items)-1].id})
			}
			links = append(links, map[string]any{"rel": "next", "href": path + params.encode()})
		}
		if !(len(items) < limit && reverse) {
			params := q.without("marker", "page_reverse")
			if len(items) > 0 {
				params = append(params, param{"marker", items[0].id})
			}
			links = append(links, map[string]any{"rel": "previous", "href": path + append(params, param{"page_reverse", "True"}).encode()})
		}
		body["networks_links"] = links
	}
	return reply(http.StatusOK, "list", body)
}

// networkBody is the attributes of {"network": {...}}, or what is wrong with it.
func networkBody(req *request) (map[string]any, string) {
	body, ok := decodeObject(req.body)
	in, isObject := body["network"].(map[string]any)
	if !ok || !isObject {
		return nil, "Unable to find 'network' in request body"
	}
	var unknown []string
	for k := range in {
		if !slices.Contains(networkWritable, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Sprintf("Unrecognized attribute(s) '%s'", strings.Join(unknown, ", "))
	}
	return in, ""
}

func (c *Cloud) createNetwork(req *request) response {
	in, msg := networkBody(req)
	if msg != "" {
		return neutron.fail(req.Request, http.StatusBadRequest, msg)
	}
	project := req.project
	if project == "" {
		project, _ = in["project_id"].(string)
	}
	doc := c.newDoc(Networks, project, NewUUID(), time.Now())
	for k, v := range in {
		doc[k] = v
	}
	doc["tenant_id"], doc["project_id"] = project, project
	n := &resource{kind: Networks, doc: doc}
	return c.create(Networks, project, doc, reply(http.StatusCreated, "create", map[string]any{"network": networkView(n, nil)}))
}
