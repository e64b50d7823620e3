package fakecloud

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Glance's image schema and controller (glance/api/v2/images.py).
var (
	imageSortKeys    = []string{"name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at"}
	imageReadOnly    = []string{"created_at", "updated_at", "status", "checksum", "size", "virtual_size", "direct_url", "self", "file", "schema", "stores", "os_hash_algo", "os_hash_value"}
	imageReserved    = []string{"location", "locations", "deleted", "deleted_at"}
	imageVisibility  = []string{"public", "private", "shared", "community"}
	diskFormats      = []string{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}
	containerFormats = []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}
	uuidPattern      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

const jsonPatch = "application/openstack-images-v2.1-json-patch"

func (c *Cloud) glance(req *request, rest []string) response {
	m := req.Method
	switch {
	case len(rest) == 0:
		return glance.collection(req, c.listImages, c.createImage)
	case rest[0] == "":
		return glance.noRoute(req.Request)
	}
	img, ok := c.find(Images, req.project, rest[0])
	known := len(rest) == 1 || len(rest) == 2 && (rest[1] == "file" || rest[1] == "members") ||
		len(rest) == 3 && (rest[1] == "tags" || rest[1] == "members")
	if !known {
		return glance.noRoute(req.Request)
	}
	if !ok || !readable(img, req.project) {
		return webobError(req.Request, http.StatusNotFound, "No image found with ID "+rest[0])
	}
	switch {
	case len(rest) == 1 && m == http.MethodGet:
		return reply(http.StatusOK, "get", imageView(img))
	case len(rest) == 1 && m == http.MethodPatch:
		return c.patchImage(req, img)
	case len(rest) == 1 && m == http.MethodDelete:
		if img.doc["protected"] == true {
			return webobError(req.Request, http.StatusForbidden, "Image "+img.id+" is protected and cannot be deleted.")
		}
		if !owns(req.project, img) {
			return webobError(req.Request, http.StatusForbidden, "You are not authorized to complete delete_image action.")
		}
		c.cols[Images].remove(img)
		return empty(http.StatusNoContent, "delete")
	case len(rest) == 1:
		return glance.badMethod(req.Request, "DELETE", "GET", "PATCH")
	case rest[1] == "file" && m == http.MethodPut:
		return c.upload(req, img)
	case rest[1] == "file" && m == http.MethodGet:
		return download(req, img)
	case rest[1] == "file":
		return glance.badMethod(req.Request, "GET", "PUT")
	case rest[1] == "tags":
		return c.tag(req, img, rest[2])
	}
	return c.members(req, img, rest[2:])
}

// owns: the caller may change the image (admins and tests without tokens may).
func owns(project string, img *resource) bool {
	return project == "" || img.project == "" || img.project == project
}

// readable is Glance's rule for reading one image: its owner, anyone for public
// and community images, and the projects it is shared with, whatever their answer.
func readable(img *resource, project string) bool {
	switch {
	case owns(project, img):
		return true
	case img.doc["visibility"] == "public" || img.doc["visibility"] == "community":
		return true
	}
	return img.doc["visibility"] == "shared" && img.members[project] != nil
}

// listed is Glance's rule for listing: community images only when asked for, shared
// ones when the membership has the status asked for (accepted by default).
func listed(img *resource, project, memberStatus, visibility string) bool {
	v := img.doc["visibility"]
	if visibility != "" && visibility != "all" && v != visibility {
		return false
	}
	switch {
	case v == "community":
		return visibility == "community" || visibility == "all" || owns(project, img)
	case owns(project, img) || v == "public":
		return true
	case v == "shared":
		m := img.members[project]
		return m != nil && (memberStatus == "all" || m["status"] == memberStatus)
	}
	return false
}

func imageView(img *resource) map[string]any { return clone(img.doc) }

func (c *Cloud) listImages(req *request) response {
	q, fail := req.q, func(msg string) response { return webobError(req.Request, http.StatusBadRequest, msg) }
	limit, msg := pageLimit(q, 25, 1000) // limit_param_default, api_limit_max
	if msg != "" {
		return fail(msg)
	}
	memberStatus, _ := q.first("member_status")
	if memberStatus == "" {
		memberStatus = "accepted"
	}
	if !slices.Contains([]string{"pending", "accepted", "rejected", "all"}, memberStatus) {
		return fail("Invalid status: " + memberStatus)
	}
	keys, msg := glanceSort(q)
	if msg != "" {
		return fail(msg)
	}
	tags := q.all("tag")
	filters := q.without("limit", "marker", "member_status", "sort", "sort_key", "sort_dir", "tag").lastValues()
	visibility := ""
	for i, f := range filters {
		if f.key == "visibility" {
			if f.value != "all" && !slices.Contains(imageVisibility, f.value) {
				return fail("Invalid visibility value: " + f.value)
			}
			visibility = f.value
			filters = append(filters[:i:i], filters[i+1:]...)
			break
		}
	}
	var marker *resource
	if id, ok := q.first("marker"); ok {
		m, found := c.find(Images, req.project, id)
		if !found || !readable(m, req.project) {
			return fail("No image found with ID " + id)
		}
		marker = m
	}
	keep := func(r *resource) bool {
		if !listed(r, req.project, memberStatus, visibility) {
			return false
		}
		have, _ := r.doc["tags"].([]any)
		for _, t := range tags {
			if !slices.Contains(have, any(t)) {
				return false
			}
		}
		return matches(r.doc, filters)
	}
	items := c.cols[Images].list(page{keys: keys, marker: marker, limit: limit, keep: keep})
	views := make([]map[string]any, len(items))
	for i, r := range items {
		views[i] = imageView(r)
	}
	// The links repeat the query as dict(request.params) has it, marker replaced.
	params := q.lastValues().without("marker")
	body := map[string]any{"images": views, "first": "/v2/images", "schema": "/v2/schemas/images"}
	if len(params) > 0 {
		body["first"] = "/v2/images?" + params.encode()
	}
	if len(items) > 0 && len(items) == limit {
		body["next"] = "/v2/images?" + append(params, param{"marker", items[len(items)-1].id}).encode()
	}
	return reply(http.StatusOK, "list", body)
}

// glanceSort reads sort=k:dir,... or repeated sort_key and sort_dir as Glance does,
// and completes them as its database does; msg says what is wrong.
func glanceSort(q query) (keys []sortKey, msg string) {
	var names, dirs []string
	if v, ok := q.first("sort"); ok {
		if q.has("sort_key") || q.has("sort_dir") {
			return nil, "Old and new sorting syntax cannot be combined"
		}
		names, dirs = sortParam(v)
	} else {
		for _, k := range q.all("sort_key") {
			names = append(names, strings.TrimSpace(k))
		}
		for _, d := range q.all("sort_dir") {
			dirs = append(dirs, strings.TrimSpace(d))
		}
	}
	for _, k := range names {
		if !slices.Contains(imageSortKeys, k) {
			return nil, fmt.Sprintf("Invalid sort key: %s. It must be one of the following: %s.", k, strings.Join(imageSortKeys, ", "))
		}
	}
	for _, d := range dirs {
		if d != "asc" && d != "desc" {
			return nil, "Invalid sort direction: " + d
		}
	}
	if len(dirs) > 1 && len(dirs) != len(names) {
		return nil, "Number of sort dirs does not match the number of sort keys"
	}
	if len(names) == 0 {
		names = []string{"created_at"}
	}
	// One direction applies to every key, and to the keys the database adds.
	fill := "desc"
	if len(dirs) == 1 {
		fill = dirs[0]
	}
	for i, k := range names {
		d := fill
		if len(dirs) > 1 {
			d = dirs[i]
		}
		keys = append(keys, sortKey{k, d == "desc"})
	}
	return tiebreak(keys, []string{"created_at", "id"}, fill == "desc"), ""
}

func (c *Cloud) createImage(req *request) response {
	fail := func(status int, msg string) response { return webobError(req.Request, status, msg) }
	body, ok := decodeObject(req.body)
	if !ok {
		return fail(http.StatusBadRequest, "Malformed JSON in request body.")
	}
	for k := range body {
		switch {
		case slices.Contains(imageReadOnly, k):
			return fail(http.StatusForbidden, fmt.Sprintf("Attribute '%s' is read-only.", k))
		case slices.Contains(imageReserved, k):
			return fail(http.StatusForbidden, fmt.Sprintf("Attribute '%s' is reserved.", k))
		}
	}
	id := NewUUID()
	if v, ok := body["id"]; ok {
		s, isString := v.(string)
		if !isString || !uuidPattern.MatchString(s) {
			return fail(http.StatusBadRequest, fmt.Sprintf("Provided object does not match schema 'image': %v is not a valid UUID", v))
		}
		if c.cols[Images].byID[s] != nil {
			return fail(http.StatusConflict, "Image with identifier "+s+" already exists!")
		}
		id = s
	}
	doc := c.newDoc(Images, req.project, id, time.Now())
	for k, v := range body {
		if msg := checkImageProperty(k, v); msg != "" {
			return fail(http.StatusBadRequest, "Provided object does not match schema 'image': "+msg)
		}
		doc[k] = v
	}
	resp := reply(http.StatusCreated, "create", doc)
	// webob makes Location absolute, from the URL the client called.
	resp.header().Set("Location", baseURL(req.Request)+"/v2/images/"+id)
	return c.create(Images, req.project, doc, resp)
}

// checkImageProperty is the image schema's check of one property.
func checkImageProperty(k string, v any) string {
	isString := func(v any) bool { _, ok := v.(string); return ok }
	switch k {
	case "id":
		return ""
	case "name":
		if s, ok := v.(string); v != nil && (!ok || len(s) > 255) {
			return fmt.Sprintf("%v is not of type 'string' or too long", v)
		}
	case "visibility":
		if !slices.Contains(imageVisibility, fmt.Sprint(v)) || !isString(v) {
			return fmt.Sprintf("%v is not one of %v", v, imageVisibility)
		}
	case "disk_format":
		if v != nil && (!isString(v) || !slices.Contains(diskFormats, v.(string))) {
			return fmt.Sprintf("%v is not one of %v", v, diskFormats)
		}
	case "container_format":
		if v != nil && (!isString(v) || !slices.Contains(containerFormats, v.(string))) {
			return fmt.Sprintf("%v is not one of %v", v, containerFormats)
		}
	case "min_disk", "min_ram":
		if n, ok := v.(json.Number); !ok || strings.ContainsAny(n.String(), ".eE-") {
			return fmt.Sprintf("%v is not a non-negative integer", v)
		}
	case "protected", "os_hidden":
		if _, ok := v.(bool); !ok {
			return fmt.Sprintf("%v is not of type 'boolean'", v)
		}
	case "tags":
		list, ok := v.([]any)
		if !ok {
			return fmt.Sprintf("%v is not of type 'array'", v)
		}
		for _, t := range list {
			if !isString(t) {
				return fmt.Sprintf("%v is not of type 'string'", t)
			}
		}
	case "owner":
		if v != nil && !isString(v) {
			return fmt.Sprintf("%v is not of type 'string'", v)
		}
	default:
		// Additional properties are strings.
		if !isString(v) {
			return fmt.Sprintf("%v is not of type 'string'", v)
		}
	}
	return ""
}

// patchImage applies a JSON patch of top-level properties, as Glance's PATCH does.
func (c *Cloud) patchImage(req *request, img *resource) response {
	fail := func(status int, msg string) response { return webobError(req.Request, status, msg) }
	ct := req.Header.Get("Content-Type")
	if ct != jsonPatch && ct != "application/openstack-images-v2.0-json-patch" {
		return fail(http.StatusUnsupportedMediaType, "Invalid content type "+ct)
	}
	if !owns(req.project, img) {
		return fail(http.StatusForbidden, "You are not authorized to complete modify_image action.")
	}
	var ops []struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	if json.Unmarshal(req.body, &ops) != nil {
		return fail(http.StatusBadRequest, "Malformed JSON in request body.")
	}
	doc := clone(img.doc)
	for _, op := range ops {
		k := strings.TrimPrefix(op.Path, "/")
		switch {
		case !strings.HasPrefix(op.Path, "/") || k == "" || strings.Contains(k, "/"):
			return fail(http.StatusBadRequest, "Invalid JSON pointer for this resource: '"+op.Path+"'")
		case slices.Contains(imageReadOnly, k) || k == "id":
			return fail(http.StatusForbidden, fmt.Sprintf("Attribute '%s' is read-only.", k))
		case slices.Contains(imageReserved, k):
			return fail(http.StatusForbidden, fmt.Sprintf("Attribute '%s' is reserved.", k))
		}
		v := op.Value
		if n, ok := v.(float64); ok {
			v = json.Number(strconv.FormatFloat(n, 'f', -1, 64))
		}
		_, present := doc[k]
		switch op.Op {
		case "add", "replace":
			if op.Op == "replace" && !present {
				return fail(http.StatusConflict, "Property "+k+" does not exist.")
			}
			if msg := checkImageProperty(k, v); msg != "" {
				return fail(http.StatusBadRequest, "Provided object does not match schema 'image': "+msg)
			}
			doc[k] = v
		case "remove":
			if !present {
				return fail(http.StatusConflict, "Property "+k+" does not exist.")
			}
			delete(doc, k)
		default:
			return fail(http.StatusBadRequest, "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".")
		}
	}
	doc["updated_at"] = time.Now().UTC().Format(time.RFC3339)
	img.doc = doc
	return reply(http.StatusOK, "update", imageView(img))
}

func (c *Cloud) upload(req *request, img *resource) response {
	if ct := req.Header.Get("Content-Type"); ct != "application/octet-stream" {
		return webobError(req.Request, http.StatusUnsupportedMediaType, "The request media type "+ct+" is not supported by this server.")
	}
	if !owns(req.project, img) {
		return webobError(req.Request, http.StatusForbidden, "You are not authorized to complete upload_image action.")
	}
	if img.doc["status"] != "queued" {
		return webobError(req.Request, http.StatusConflict, fmt.Sprintf("Image status transition from %v to saving is not allowed", img.doc["status"]))
	}
	setImageData(img, req.body)
	return empty(http.StatusNoContent, "upload")
}

// download sends image data as Glance does: the whole of it, or one byte range
// (206); an image without data is a 204.
func download(req *request, img *resource) response {
	if img.data == nil {
		return empty(http.StatusNoContent, "download")
	}
	size := len(img.data)
	resp := response{status: http.StatusOK, op: "download", body: img.data}
	if h := req.Header.Get("Range"); h != "" {
		start, end, ok := byteRange(h, size)
		if !ok {
			r := webobError(req.Request, http.StatusRequestedRangeNotSatisfiable, "The Range requested is not available.")
			r.header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			return r
		}
		resp.status, resp.body = http.StatusPartialContent, img.data[start:end+1]
		resp.header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
	}
	resp.header().Set("Content-Type", "application/octet-stream")
	// Glance sends the hex checksum here, not RFC 1864's base64.
	if sum, ok := img.doc["checksum"].(string); ok {
		resp.header().Set("Content-MD5", sum)
	}
	return resp
}

// byteRange reads one range of a Range header (webob takes one), inclusive.
func byteRange(h string, size int) (start, end int, ok bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	if a == "" {
		n, err := strconv.Atoi(b)
		if err != nil || n <= 0 {
			return 0, 0, false
		}
		return max(size-n, 0), size - 1, size > 0
	}
	s, err := strconv.Atoi(a)
	if err != nil || s < 0 || s >= size {
		return 0, 0, false
	}
	e := size - 1
	if b != "" {
		n, err := strconv.Atoi(b)
		if err != nil || n < s {
			return 0, 0, false
		}
		e = min(n, size-1)
	}
	return s, e, true
}

func (c *Cloud) tag(req *request, img *resource, tag string) response {
	if req.Method != http.MethodPut && req.Method != http.MethodDelete {
		return glance.badMethod(req.Request, "DELETE", "PUT")
	}
	if !owns(req.project, img) {
		return webobError(req.Request, http.StatusForbidden, "You are not authorized to complete modify_image action.")
	}
	have, _ := img.doc["tags"].([]any)
	i := slices.Index(have, any(tag))
	switch {
	case req.Method == http.MethodPut && i < 0:
		img.doc["tags"] = append(slices.Clone(have), tag)
	case req.Method == http.MethodDelete && i < 0:
		return webobError(req.Request, http.StatusNotFound, "The resource could not be found.")
	case req.Method == http.MethodDelete:
		img.doc["tags"] = slices.Delete(slices.Clone(have), i, i+1)
	}
	return empty(http.StatusNoContent, "tag")
}

// members is /v2/images/{id}/members[/{member}]: an image's sharing with projects.
func (c *Cloud) members(req *request, img *resource, rest []string) response {
	fail := func(status int, msg string) response { return webobError(req.Request, status, msg) }
	if len(rest) == 0 {
		switch req.Method {
		case http.MethodGet:
			list := []any{}
			for p, m := range img.members {
				if owns(req.project, img) || p == req.project {
					list = append(list, m)
				}
			}
			return reply(http.StatusOK, "member", map[string]any{"members": list, "schema": "/v2/schemas/members"})
		case http.MethodPost:
			body, ok := decodeObject(req.body)
			member, isString := body["member"].(string)
			switch {
			case !ok || !isString || member == "":
				return fail(http.StatusBadRequest, "Member to be added not specified")
			case img.doc["visibility"] != "shared":
				return fail(http.StatusForbidden, "Only shared images have members.")
			case !owns(req.project, img):
				return fail(http.StatusForbidden, "You are not authorized to complete add_member action.")
			case img.members[member] != nil:
				return fail(http.StatusConflict, fmt.Sprintf("Member %s already exists for image %s", member, img.id))
			}
			now := time.Now().UTC().Format(time.RFC3339)
			m := map[string]any{"image_id": img.id, "member_id": member, "status": "pending", "created_at": now,
				"updated_at": now, "schema": "/v2/schemas/member"}
			if img.members == nil {
				img.members = map[string]map[string]any{}
			}
			img.members[member] = m
			return reply(http.StatusOK, "member", m)
		}
		return glance.badMethod(req.Request, "GET", "POST")
	}
	m := img.members[rest[0]]
	if m == nil || !owns(req.project, img) && rest[0] != req.project {
		return fail(http.StatusNotFound, fmt.Sprintf("%s is not a member of image %s", rest[0], img.id))
	}
	switch req.Method {
	case http.MethodGet:
		return reply(http.StatusOK, "member", m)
	case http.MethodPut:
		body, _ := decodeObject(req.body)
		status, _ := body["status"].(string)
		if !slices.Contains([]string{"pending", "accepted", "rejected"}, status) {
			return fail(http.StatusBadRequest, fmt.Sprintf("Invalid status: %v", body["status"]))
		}
		if req.project != "" && rest[0] != req.project {
			return fail(http.StatusForbidden, "You are not authorized to complete modify_member action.")
		}
		m = clone(m)
		m["status"], m["updated_at"] = status, time.Now().UTC().Format(time.RFC3339)
		img.members[rest[0]] = m
		return reply(http.StatusOK, "member", m)
	case http.MethodDelete:
		if !owns(req.project, img) {
			return fail(http.StatusForbidden, "You are not authorized to complete delete_member action.")
		}
		delete(img.members, rest[0])
		return empty(http.StatusNoContent, "member")
	}
	return glance.badMethod(req.Request, "DELETE", "GET", "PUT")
}
