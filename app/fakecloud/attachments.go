package fakecloud

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Microversions of Cinder's attachments API (cinder/api/microversions.py).
const (
	newAttach           = 27 // the attachments API
	newAttachCompletion = 44 // os-complete
	attachModeArg       = 54 // "mode" in a create
)

// attachments is /v3/{project_id}/attachments... as cinder/api/v3/attachments.py
// answers it: create (a reservation, 200), show, update with a connector, the
// os-complete action (204) and delete (200 with the volume's other attachments).
// An attachment belongs to its volume's project.
func (c *Cloud) attachments(req *request, project string, rest []string) response {
	r, m := req.Request, req.Method
	routed := len(rest) == 0 && m == http.MethodPost ||
		len(rest) == 1 && rest[0] != "" && (m == http.MethodGet || m == http.MethodPut || m == http.MethodDelete) ||
		len(rest) == 2 && rest[0] != "" && rest[1] == "action" && m == http.MethodPost
	if !routed {
		return cinder.noRoute(r)
	}
	if resp, ok := c.cinderScope(req, project); !ok {
		return resp
	}
	// A method below its microversion is "not implemented": a bare 404.
	if c.volumeVersion(r) < newAttach {
		return cinder.fail(r, http.StatusNotFound, "The resource could not be found.")
	}
	if len(rest) == 0 {
		return c.createAttachment(req, project)
	}
	att, ok := c.cinderFind(Attachments, project, rest[0])
	if !ok {
		return cinder.fail(r, http.StatusNotFound, "Volume attachment could not be found with filter: attachment_id = "+rest[0]+".")
	}
	volumeID, _ := att.doc["volume_id"].(string)
	vol := c.cols[Volumes].byID[volumeID]
	if vol == nil {
		// Held virtually: a volume of its own, never stored.
		vol = newResource(Volumes, project, volumeID, c.newDoc(Volumes, project, volumeID, time.Now()))
	}
	switch {
	case len(rest) == 2:
		return c.attachmentAction(req, att, vol)
	case m == http.MethodGet:
		return reply(http.StatusOK, "get", map[string]any{"attachment": clone(att.doc)})
	case m == http.MethodPut:
		return c.updateAttachment(req, att, vol)
	}
	return c.deleteAttachment(req, att, vol)
}

func (c *Cloud) createAttachment(req *request, project string) response {
	r := req.Request
	fail := func(msg string) response { return cinder.fail(r, http.StatusBadRequest, msg) }
	allowed := []string{"instance_uuid", "connector", "volume_uuid"}
	if c.volumeVersion(r) >= attachModeArg {
		allowed = append(allowed, "mode")
	}
	in, vol, resp, ok := c.volumeMember(req, project, "attachment", "volume_uuid", allowed, "instance_uuid")
	if !ok {
		return resp
	}
	instance, _ := in["instance_uuid"].(string)
	// _attachment_reserve: a volume that is not multiattach is reserved once,
	// except again for the server that holds it (a migration).
	status, _ := vol.doc["status"].(string)
	if status != "available" && status != "downloading" && !c.heldBy(vol.id, instance) {
		return fail(fmt.Sprintf("Invalid volume: Volume %s status must be available or downloading to reserve, but the current status is %s.", vol.id, status))
	}
	vol.doc["status"] = "reserved"
	var server any
	if instance != "" {
		server = instance
	}
	mode := "null"
	if v, ok := in["mode"].(string); ok {
		mode = v
	}
	doc := c.newDoc(Attachments, project, NewUUID(), time.Now())
	doc["instance"], doc["volume_id"], doc["attach_mode"] = server, vol.id, mode
	if connector, ok := in["connector"].(map[string]any); ok && len(connector) > 0 {
		connect(doc, vol)
	}
	return c.create(Attachments, project, doc, reply(http.StatusOK, "create", map[string]any{"attachment": clone(doc)}))
}

// heldBy reports whether a server already holds an attachment of a volume.
func (c *Cloud) heldBy(volumeID, server string) bool {
	if server == "" {
		return false
	}
	for _, a := range c.cols[Attachments].sorted {
		if a.doc["volume_id"] == volumeID && a.doc["instance"] == server {
			return true
		}
	}
	return false
}

// connect is what the volume manager's attachment_update records: the backend's
// connection_info, and the volume and attachment attaching.
func connect(doc map[string]any, vol *resource) {
	doc["connection_info"] = map[string]any{"driver_volume_type": "iscsi", "data": map[string]any{
		"target_iqn": "iqn.2010-10.org.openstack:volume-" + vol.id, "target_lun": 1, "volume_id": vol.id}}
	doc["status"] = "attaching"
	vol.doc["status"] = "attaching"
}

func (c *Cloud) updateAttachment(req *request, att, vol *resource) response {
	r := req.Request
	body, ok := decodeObject(req.body)
	in, isObject := body["attachment"].(map[string]any)
	if !ok || !isObject {
		return cinder.fail(r, http.StatusBadRequest, "Invalid input for field/attribute attachment. 'attachment' is a required property")
	}
	if msg := unexpected("attachment", in, []string{"connector"}); msg != "" {
		return cinder.fail(r, http.StatusBadRequest, msg)
	}
	if connector, ok := in["connector"].(map[string]any); !ok || len(connector) == 0 {
		return cinder.fail(r, http.StatusBadRequest, "Invalid input for field/attribute connector. 'connector' is a required property")
	}
	doc := clone(att.doc)
	connect(doc, vol)
	att.doc = doc
	return reply(http.StatusOK, "update", map[string]any{"attachment": clone(doc)})
}

// attachmentAction is the action route; os-complete is its only action.
func (c *Cloud) attachmentAction(req *request, att, vol *resource) response {
	r := req.Request
	body, ok := decodeObject(req.body)
	if !ok || len(body) != 1 {
		return cinder.fail(r, http.StatusBadRequest, "Malformed request body")
	}
	if _, complete := body["os-complete"]; !complete || c.volumeVersion(r) < newAttachCompletion {
		for name := range body {
			return cinder.fail(r, http.StatusBadRequest, "There is no such action: "+name)
		}
	}
	doc := clone(att.doc)
	doc["status"] = "attached"
	doc["attached_at"] = time.Now().UTC().Format("2006-01-02T15:04:05.000000")
	att.doc = doc
	vol.doc["status"] = "in-use"
	c.showAttachments(vol)
	return empty(http.StatusNoContent, "update")
}

// deleteAttachment is attachment_delete, with attachment_deletion_allowed (Bug
// #2004555): an attachment connected to a server is deleted only for a service
// (a service token with the service role), or when the cloud's own Nova does not
// hold the server.
func (c *Cloud) deleteAttachment(req *request, att, vol *resource) response {
	server, _ := att.doc["instance"].(string)
	info, _ := att.doc["connection_info"].(map[string]any)
	service := slices.Contains(req.serviceRoles, "service")
	if !service && server != "" && len(info) > 0 && (c.opts.NovaKnows == nil || c.opts.NovaKnows(server)) {
		return cinder.fail(req.Request, http.StatusConflict, "Detach volume from instance "+server+" using the Compute API")
	}
	c.cols[Attachments].remove(att)
	var others []any
	for _, a := range c.cols[Attachments].sorted {
		if a.doc["volume_id"] == vol.id {
			others = append(others, map[string]any{"id": a.id, "status": a.doc["status"], "instance": a.doc["instance"],
				"volume_id": vol.id})
		}
	}
	if len(others) == 0 {
		vol.doc["status"] = "available"
		others = []any{}
	}
	c.showAttachments(vol)
	return reply(http.StatusOK, "delete", map[string]any{"attachments": others})
}

// showAttachments is the volume's "attachments" as its view shows them: the
// attached ones.
func (c *Cloud) showAttachments(vol *resource) {
	shown := []any{}
	for _, a := range c.cols[Attachments].sorted {
		if a.doc["volume_id"] != vol.id || a.doc["status"] != "attached" {
			continue
		}
		shown = append(shown, map[string]any{"id": vol.id, "attachment_id": a.id, "volume_id": vol.id,
			"server_id": a.doc["instance"], "host_name": nil, "device": nil, "attached_at": a.doc["attached_at"]})
	}
	vol.doc["attachments"] = shown
}
