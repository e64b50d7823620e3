package fakecloud

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

var (
	// projectPattern is Cinder's project_id_regex: its routes match nothing else.
	projectPattern = regexp.MustCompile(`^[0-9a-f-]+$`)
	// cinderFilters are etc/cinder/resource_filters.json.
	cinderFilters = map[string][]string{
		Volumes: {"name", "status", "metadata", "bootable", "migration_status", "availability_zone", "group_id",
			"size", "created_at", "updated_at", "consumes_quota"},
		Snapshots: {"name", "status", "volume_id", "metadata", "availability_zone", "consumes_quota"},
	}
	// cinderSortKeys are the columns of the models the API exposes.
	cinderSortKeys = map[string][]string{
		Volumes:   {"id", "name", "description", "status", "size", "availability_zone", "bootable", "created_at", "updated_at", "migration_status", "user_id"},
		Snapshots: {"id", "name", "description", "status", "size", "volume_id", "created_at", "updated_at"},
	}
	// cinderFields are what a create may set (for a volume, from microversion 3.53).
	cinderFields = map[string][]string{
		Volumes: {"name", "description", "display_name", "display_description", "size", "volume_type", "availability_zone",
			"metadata", "snapshot_id", "source_volid", "imageRef", "image_id", "backup_id", "consistencygroup_id", "group_id",
			"multiattach"},
		Snapshots: {"name", "description", "display_name", "display_description", "volume_id", "force", "metadata"},
	}
)

func singular(kind string) string { return strings.TrimSuffix(kind, "s") }

func notFoundMessage(kind, id string) string {
	return fmt.Sprintf("%s %s could not be found.", strings.ToUpper(kind[:1])+singular(kind)[1:], id)
}

// cinder is /v3/{project_id}/volumes... and /v3/{project_id}/snapshots...
func (c *Cloud) cinder(req *request, project, kind string, rest []string) response {
	r, m := req.Request, req.Method
	routed := len(rest) == 0 && (m == http.MethodGet || m == http.MethodPost) ||
		len(rest) == 1 && rest[0] != "" && (m == http.MethodGet || m == http.MethodPut || m == http.MethodDelete)
	if !routed {
		return cinder.noRoute(r)
	}
	if resp, ok := c.cinderScope(req, project); !ok {
		return resp
	}
	switch {
	case len(rest) == 0:
		return cinder.collection(req, func(req *request) response { return c.listCinder(req, project, kind, false) },
			func(req *request) response { return c.createCinder(req, project, kind) })
	case rest[0] == "detail" && m == http.MethodGet:
		return c.listCinder(req, project, kind, true)
	}
	res, ok := c.cinderFind(kind, project, rest[0])
	if !ok {
		return cinder.fail(r, http.StatusNotFound, notFoundMessage(kind, rest[0]))
	}
	switch m {
	case http.MethodGet:
		return reply(http.StatusOK, "get", map[string]any{singular(kind): c.cinderView(req, project, res, true)})
	case http.MethodPut:
		return c.updateCinder(req, project, res)
	}
	if kind == Volumes {
		if st := res.doc["status"]; st != "available" && st != "error" {
			return cinder.fail(r, http.StatusBadRequest, volumeInUse)
		}
		for _, s := range c.cols[Snapshots].sorted {
			if s.doc["volume_id"] == res.id {
				return cinder.fail(r, http.StatusBadRequest, volumeInUse)
			}
		}
	}
	c.cols[kind].remove(res)
	return empty(http.StatusAccepted, "delete")
}

// volumeInUse is Cinder's refusal to delete a volume that is attached, reserved,
// offered for transfer or has snapshots.
const volumeInUse = "Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer."

// cinderScope refuses what Cinder's router and keystonemiddleware refuse before
// any controller: a project segment its routes do not match (a 404), and another
// project than the token's (a 400).
func (c *Cloud) cinderScope(req *request, project string) (response, bool) {
	if !projectPattern.MatchString(project) {
		return cinder.noRoute(req.Request), false
	}
	if c.opts.Tokens != nil && project != req.project {
		return cinder.fail(req.Request, http.StatusBadRequest, "Malformed request url"), false
	}
	return response{}, true
}

// cinderLinks are the self and bookmark links Cinder's view builders give a
// member, built from the caller's host.
func cinderLinks(req *request, project, collection, id string) []any {
	base := baseURL(req.Request)
	return []any{
		map[string]any{"href": base + "/v3/" + project + "/" + collection + "/" + id, "rel": "self"},
		map[string]any{"href": base + "/" + project + "/" + collection + "/" + id, "rel": "bookmark"}}
}

// cinderFind is a resource of the path's project, by exactly its id.
func (c *Cloud) cinderFind(kind, project, id string) (*resource, bool) {
	res, ok := c.find(kind, project, id)
	return res, ok && res.visibleTo(project)
}

// cinderView is a resource as Cinder shows it; the summary of a volume is its id,
// name and links.
func (c *Cloud) cinderView(req *request, project string, res *resource, detail bool) map[string]any {
	doc := clone(res.doc)
	if res.kind == Volumes {
		if _, ok := doc["links"]; !ok {
			doc["links"] = cinderLinks(req, project, Volumes, res.id)
		}
		if !detail {
			return map[string]any{"id": doc["id"], "name": doc["name"], "links": doc["links"]}
		}
	}
	if !detail {
		maps.DeleteFunc(doc, func(k string, _ any) bool { return strings.HasPrefix(k, "os-extended-snapshot-attributes:") })
	}
	return doc
}

func (c *Cloud) listCinder(req *request, project, kind string, detail bool) response {
	r, q := req.Request, req.q
	fail := func(msg string) response { return cinder.fail(r, http.StatusBadRequest, msg) }
	limit, msg := pageLimit(q, 1000, 1000) // osapi_max_limit
	if msg != "" {
		return fail(msg)
	}
	offset := 0
	if v, ok := q.first("offset"); ok {
		n, ok := pyInt(v)
		if !ok || n < 0 {
			return fail("Invalid input received: offset must be an integer greater than or equal to 0.")
		}
		offset = n
	}
	keys, msg := cinderSort(q, kind)
	if msg != "" {
		return fail(msg)
	}
	// What the API pops (the first of each) is a parameter; the rest are filters.
	filters := q.withoutFirst("limit", "marker", "offset", "sort", "sort_key", "sort_dir")
	var invalid []string
	for i := 0; i < len(filters); i++ {
		switch f := filters[i]; {
		case f.key == "all_tenants":
			// cinderclient always sends it; Cinder drops it for non-admins.
			filters = append(filters[:i:i], filters[i+1:]...)
			i--
		case !slices.Contains(cinderFilters[kind], f.key) && !slices.Contains(invalid, f.key):
			invalid = append(invalid, f.key)
		}
	}
	if len(invalid) > 0 {
		return fail(fmt.Sprintf("Invalid filters %s are found in query options.", strings.Join(invalid, ",")))
	}
	var marker *resource
	if id, ok := q.first("marker"); ok {
		m, found := c.cinderFind(kind, project, id)
		if !found {
			return cinder.fail(r, http.StatusNotFound, notFoundMessage(kind, id))
		}
		marker = m
	}
	keep := func(res *resource) bool { return res.visibleTo(project) && matches(res.doc, filters) }
	items := c.cols[kind].list(page{keys: keys, marker: marker, limit: limit, offset: offset, keep: keep})
	views := make([]map[string]any, len(items))
	for i, res := range items {
		views[i] = c.cinderView(req, project, res, detail)
	}
	body := map[string]any{kind: views}
	if len(items) > 0 && limit <= len(items) {
		collection := kind
		if detail {
			collection += "/detail"
		}
		params := append(q.without("marker"), param{"marker", items[len(items)-1].id})
		body[kind+"_links"] = []any{map[string]any{"rel": "next",
			"href": baseURL(r) + "/v3/" + project + "/" + collection + "?" + params.encode()}}
	}
	return reply(http.StatusOK, "list", body)
}

// cinderSort reads sort=k:dir,... or sort_key and sort_dir as Cinder's API does,
// and completes them as its database does.
func cinderSort(q query, kind string) ([]sortKey, string) {
	if q.has("sort") && (q.has("sort_key") || q.has("sort_dir")) {
		return nil, "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter."
	}
	var names, dirs []string
	if v, ok := q.first("sort"); ok {
		names, dirs = sortParam(v)
	} else {
		k, ok := q.first("sort_key")
		if !ok {
			k = "created_at"
		}
		d, ok := q.first("sort_dir")
		if !ok {
			d = "desc"
		}
		names, dirs = []string{strings.TrimSpace(k)}, []string{strings.TrimSpace(d)}
	}
	var keys []sortKey
	for i, k := range names {
		if dirs[i] != "asc" && dirs[i] != "desc" {
			return nil, "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'."
		}
		if !slices.Contains(cinderSortKeys[kind], k) {
			return nil, "Invalid input received: Invalid sort key"
		}
		keys = append(keys, sortKey{k, dirs[i] == "desc"})
	}
	return tiebreak(keys, []string{"created_at", "id"}, keys[0].desc), ""
}

func (c *Cloud) createCinder(req *request, project, kind string) response {
	r := req.Request
	fail := func(msg string) response { return cinder.fail(r, http.StatusBadRequest, msg) }
	body, ok := decodeObject(req.body)
	if !ok {
		return fail("Malformed request body")
	}
	in, ok := body[singular(kind)].(map[string]any)
	if !ok {
		return fail(fmt.Sprintf("Missing required element '%s' in request body.", singular(kind)))
	}
	// The request schemas: nothing but the object at the top; inside it, what the
	// schema lists, except that a volume takes anything before microversion 3.53.
	top := []string{singular(kind)}
	if kind == Volumes {
		top = append(top, "OS-SCH-HNT:scheduler_hints")
	}
	if msg := unexpected("request body", body, top); msg != "" {
		return fail(msg)
	}
	if kind == Snapshots || c.volumeVersion(r) >= 53 {
		if msg := unexpected(singular(kind), in, cinderFields[kind]); msg != "" {
			return fail(msg)
		}
	}
	doc := c.newDoc(kind, project, NewUUID(), time.Now())
	setCinderNames(doc, in)
	size, sized := in["size"]
	switch kind {
	case Volumes:
		for _, src := range []struct{ field, kind string }{{"snapshot_id", Snapshots}, {"source_volid", Volumes}, {"backup_id", Backups}} {
			id, given := in[src.field].(string)
			if !given {
				continue
			}
			from, found := c.cinderFind(src.kind, project, id)
			if !found {
				return cinder.fail(r, http.StatusNotFound, notFoundMessage(src.kind, id))
			}
			doc[src.field] = id
			if !sized {
				size, sized = from.doc["size"], true
			}
		}
		if !sized {
			return fail("Invalid input received: Volume size '' must be an integer and greater than 0")
		}
		n, isInt := number(size)
		if !isInt || n < 1 || n != float64(int(n)) {
			return fail(fmt.Sprintf("Invalid input received: Volume size '%v' must be an integer and greater than 0", size))
		}
		doc["size"] = int(n)
		for _, k := range []string{"volume_type", "availability_zone", "multiattach"} {
			if v, ok := in[k]; ok {
				doc[k] = v
			}
		}
	case Snapshots:
		id, _ := in["volume_id"].(string)
		if id == "" {
			return fail("Invalid input for field/attribute snapshot. 'volume_id' is a required property")
		}
		vol, found := c.cinderFind(Volumes, project, id)
		if !found {
			return cinder.fail(r, http.StatusNotFound, notFoundMessage(Volumes, id))
		}
		doc["volume_id"], doc["size"] = id, vol.doc["size"]
	}
	// The answer comes before the backend has done its part.
	view := c.cinderView(req, project, &resource{kind: kind, id: doc["id"].(string), doc: doc}, true)
	view["status"] = "creating"
	resp := reply(http.StatusAccepted, "create", map[string]any{singular(kind): view})
	return c.create(kind, project, doc, resp)
}

func (c *Cloud) updateCinder(req *request, project string, res *resource) response {
	body, ok := decodeObject(req.body)
	in, isObject := body[singular(res.kind)].(map[string]any)
	if !ok || !isObject {
		return cinder.fail(req.Request, http.StatusBadRequest, fmt.Sprintf("Missing required element '%s' in request body.", singular(res.kind)))
	}
	if msg := unexpected(singular(res.kind), in, []string{"name", "description", "display_name", "display_description", "metadata"}); msg != "" {
		return cinder.fail(req.Request, http.StatusBadRequest, msg)
	}
	doc := clone(res.doc)
	setCinderNames(doc, in)
	doc["updated_at"] = time.Now().UTC().Format("2006-01-02T15:04:05.000000")
	res.doc = doc
	return reply(http.StatusOK, "update", map[string]any{singular(res.kind): c.cinderView(req, project, res, true)})
}

// volumeMember reads the body of a create that names a volume in volumeField (an
// attachment, a backup, a transfer) and finds the volume; uuids are the other
// fields the schema wants as UUIDs when given. ok false: the refusal is the answer.
func (c *Cloud) volumeMember(req *request, project, key, volumeField string, allowed []string, uuids ...string) (map[string]any, *resource, response, bool) {
	in, resp, ok := cinderMember(req, key, allowed)
	for _, field := range uuids {
		if v, given := in[field]; ok && given && v != nil {
			if id, _ := v.(string); !uuidPattern.MatchString(id) {
				resp, ok = cinder.fail(req.Request, http.StatusBadRequest, notUUID(field, v)), false
			}
		}
	}
	if !ok {
		return nil, nil, resp, false
	}
	vol, resp, ok := c.volumeNamed(req, project, in, volumeField)
	return in, vol, resp, ok
}

func notUUID(field string, v any) string {
	return fmt.Sprintf("Invalid input for field/attribute %s. Value: %v. %q is not a 'uuid'", field, v, v)
}

// cinderMember reads a create body as the schemas of Cinder's newer APIs do:
// {key: {...}} and nothing beside it, the member holding only allowed fields. ok
// false: the refusal is the answer.
func cinderMember(req *request, key string, allowed []string) (map[string]any, response, bool) {
	fail := func(msg string) (map[string]any, response, bool) {
		return nil, cinder.fail(req.Request, http.StatusBadRequest, msg), false
	}
	body, ok := decodeObject(req.body)
	if !ok {
		return fail("Malformed request body")
	}
	in, ok := body[key].(map[string]any)
	if !ok {
		return fail(fmt.Sprintf("Invalid input for field/attribute %s. '%s' is a required property", key, key))
	}
	if msg := unexpected("request body", body, []string{key}); msg != "" {
		return fail(msg)
	}
	if msg := unexpected(key, in, allowed); msg != "" {
		return fail(msg)
	}
	return in, response{}, true
}

// volumeNamed is the volume a create's field names: a UUID, as the schemas say, of
// the path's project.
func (c *Cloud) volumeNamed(req *request, project string, in map[string]any, field string) (*resource, response, bool) {
	id, _ := in[field].(string)
	if !uuidPattern.MatchString(id) {
		return nil, cinder.fail(req.Request, http.StatusBadRequest, notUUID(field, in[field])), false
	}
	vol, found := c.cinderFind(Volumes, project, id)
	if !found {
		return nil, cinder.fail(req.Request, http.StatusNotFound, notFoundMessage(Volumes, id)), false
	}
	return vol, response{}, true
}

// unexpected is jsonschema's refusal of properties a schema does not list.
func unexpected(what string, in map[string]any, allowed []string) string {
	var extra []string
	for k := range in {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return ""
	}
	sort.Strings(extra)
	verb := "was"
	if len(extra) > 1 {
		verb = "were"
	}
	raw, _ := json.Marshal(in)
	return fmt.Sprintf("Invalid input for field/attribute %s. Value: %s. Additional properties are not allowed ('%s' %s unexpected)",
		what, raw, strings.Join(extra, "', '"), verb)
}

// SetVolumeVersions sets the microversion range of the cloud's Cinder, "3.0" to
// "3.70" by default: its root offers it, and a call outside it is a 406.
func (c *Cloud) SetVolumeVersions(lowest, highest string) {
	minor := func(v string) int {
		var major, n int
		if k, _ := fmt.Sscanf(v, "%d.%d", &major, &n); k != 2 || major != 3 {
			panic("fakecloud: not a Cinder microversion: " + v)
		}
		return n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.volumeMin, c.volumeMax = minor(lowest), minor(highest)
}

func (c *Cloud) volumeVersions() (lowest, highest string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("3.%d", c.volumeMin), fmt.Sprintf("3.%d", c.volumeMax)
}

// volumeVersion is the minor version a Cinder call is served at: "latest" is the
// cloud's highest. Called with the lock held.
func (c *Cloud) volumeVersion(r *http.Request) int {
	return min(cinderMicroversion(r), c.volumeMax)
}

// checkMicroversion is Cinder's 406 to a microversion outside its range. Called
// with the lock held.
func (c *Cloud) checkMicroversion(req *request) (response, bool) {
	h := strings.TrimSpace(req.Header.Get("OpenStack-API-Version"))
	v, ok := strings.CutPrefix(h, "volume ")
	if !ok || strings.TrimSpace(v) == "latest" {
		return response{}, true
	}
	var major, minor int
	n, _ := fmt.Sscanf(strings.TrimSpace(v), "%d.%d", &major, &minor)
	if n == 2 && major == 3 && minor >= c.volumeMin && minor <= c.volumeMax {
		return response{}, true
	}
	return cinder.fail(req.Request, http.StatusNotAcceptable, fmt.Sprintf(
		"Version %s is not supported by the API. Minimum is 3.%d and maximum is 3.%d.", strings.TrimSpace(v), c.volumeMin, c.volumeMax)), false
}

// cinderMicroversion is the minor version of "OpenStack-API-Version: volume 3.x";
// 0 without one, as Cinder then serves 3.0.
func cinderMicroversion(r *http.Request) int {
	v, ok := strings.CutPrefix(strings.TrimSpace(r.Header.Get("OpenStack-API-Version")), "volume ")
	if !ok {
		return 0
	}
	if strings.TrimSpace(v) == "latest" {
		return 1 << 10
	}
	var major, minor int
	if n, _ := fmt.Sscanf(v, "%d.%d", &major, &minor); n != 2 || major != 3 {
		return 0
	}
	return minor
}

// setCinderNames takes name and description, or their display_ forms.
func setCinderNames(doc, in map[string]any) {
	for _, k := range []string{"name", "description"} {
		if v, ok := in["display_"+k]; ok {
			doc[k] = v
		}
		if v, ok := in[k]; ok {
			doc[k] = v
		}
	}
	if v, ok := in["metadata"]; ok {
		doc["metadata"] = v
	}
}
