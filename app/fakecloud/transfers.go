package fakecloud

import (
	"fmt"
	"net/http"
	"time"
)

// Microversions of Cinder's transfer API.
const (
	transferWithSnapshots = 55 // no_snapshots, on volume-transfers
	transferWithHistory   = 57
)

// transfers is /v3/{project_id}/os-volume-transfer... and its successor
// .../volume-transfers... (cinder/api/contrib/volume_transfer.py and
// api/v3/volume_transfer.py): create (202, with the auth key), show, delete (202),
// and accept (202) by another project, which then owns the volume. A transfer is
// seen by its volume's project; accept finds it whoever asks.
func (c *Cloud) transfers(req *request, project, path string, rest []string) response {
	r, m := req.Request, req.Method
	routed := len(rest) == 0 && m == http.MethodPost ||
		len(rest) == 1 && rest[0] != "" && (m == http.MethodGet || m == http.MethodDelete) ||
		len(rest) == 2 && rest[0] != "" && rest[1] == "accept" && m == http.MethodPost
	if !routed {
		return cinder.noRoute(r)
	}
	if resp, ok := c.cinderScope(req, project); !ok {
		return resp
	}
	if len(rest) == 0 {
		return c.createTransfer(req, project, path)
	}
	tr, ok := c.find(Transfers, project, rest[0])
	if ok && len(rest) == 2 {
		return c.acceptTransfer(req, project, tr)
	}
	if !ok || !tr.visibleTo(project) {
		return cinder.fail(r, http.StatusNotFound, "Transfer "+rest[0]+" could not be found.")
	}
	if m == http.MethodGet {
		return reply(http.StatusOK, "get", map[string]any{"transfer": c.transferView(req, project, tr, false)})
	}
	c.cols[Transfers].remove(tr)
	volumeID, _ := tr.doc["volume_id"].(string)
	if vol := c.cols[Volumes].byID[volumeID]; vol != nil {
		vol.doc["status"] = "available"
	}
	return empty(http.StatusAccepted, "delete")
}

func (c *Cloud) createTransfer(req *request, project, path string) response {
	allowed := []string{"volume_id", "name"}
	if path == "volume-transfers" && c.volumeVersion(req.Request) >= transferWithSnapshots {
		allowed = append(allowed, "no_snapshots")
	}
	in, vol, resp, ok := c.volumeMember(req, project, "transfer", "volume_id", allowed)
	if !ok {
		return resp
	}
	if vol.doc["status"] != "available" {
		return cinder.fail(req.Request, http.StatusBadRequest, "Invalid volume: status must be available")
	}
	vol.doc["status"] = "awaiting-transfer"
	noSnapshots, _ := in["no_snapshots"].(bool)
	doc := c.newDoc(Transfers, project, NewUUID(), time.Now())
	doc["name"], doc["volume_id"], doc["no_snapshots"], doc["source_project_id"] = in["name"], vol.id, noSnapshots, project
	doc["auth_key"] = NewUUID()[:16]
	tr := newResource(Transfers, project, doc["id"].(string), doc)
	view := c.transferView(req, project, tr, true)
	return c.create(Transfers, project, doc, reply(http.StatusAccepted, "create", map[string]any{"transfer": view}))
}

// acceptTransfer moves the volume to the caller's project; the transfer is then
// gone.
func (c *Cloud) acceptTransfer(req *request, project string, tr *resource) response {
	r := req.Request
	body, ok := decodeObject(req.body)
	in, isObject := body["accept"].(map[string]any)
	if !ok || !isObject {
		return cinder.fail(r, http.StatusBadRequest, "Invalid input for field/attribute accept. 'accept' is a required property")
	}
	if key := fmt.Sprint(in["auth_key"]); key != tr.doc["auth_key"] {
		return cinder.fail(r, http.StatusBadRequest, "Invalid auth key: Attempt to transfer "+tr.id+" with invalid auth key.")
	}
	c.cols[Transfers].remove(tr)
	volumeID, _ := tr.doc["volume_id"].(string)
	if vol := c.cols[Volumes].byID[volumeID]; vol != nil {
		c.cols[Volumes].remove(vol)
		vol.project, vol.doc["status"], vol.doc["os-vol-tenant-attr:tenant_id"] = project, "available", project
		c.cols[Volumes].insert(vol)
	}
	return reply(http.StatusAccepted, "accept", map[string]any{"transfer": map[string]any{
		"id": tr.id, "name": tr.doc["name"], "volume_id": tr.doc["volume_id"],
		"links": cinderLinks(req, project, "os-volume-transfer", tr.id)}})
}

// transferView is the view builder's create or detail view; its links name
// os-volume-transfer whichever path was called.
func (c *Cloud) transferView(req *request, project string, tr *resource, created bool) map[string]any {
	v := c.volumeVersion(req.Request)
	view := map[string]any{"id": tr.id, "created_at": tr.doc["created_at"], "name": tr.doc["name"],
		"volume_id": tr.doc["volume_id"], "links": cinderLinks(req, project, "os-volume-transfer", tr.id)}
	if created {
		view["auth_key"] = tr.doc["auth_key"]
	}
	if v >= transferWithSnapshots {
		view["no_snapshots"] = tr.doc["no_snapshots"]
	}
	if v >= transferWithHistory {
		view["destination_project_id"], view["source_project_id"], view["accepted"] = nil, tr.doc["source_project_id"], false
	}
	return view
}
