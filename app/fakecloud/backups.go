package fakecloud

import (
	"fmt"
	"net/http"
	"time"
)

// backups is /v3/{project_id}/backups... as cinder/api/contrib/backups.py answers
// it: create (202, the summary view), show and delete (202). The backup service's
// work is done at once: a backup is available as soon as it is made.
func (c *Cloud) backups(req *request, project string, rest []string) response {
	r, m := req.Request, req.Method
	routed := len(rest) == 0 && m == http.MethodPost ||
		len(rest) == 1 && rest[0] != "" && (m == http.MethodGet || m == http.MethodDelete)
	if !routed {
		return cinder.noRoute(r)
	}
	if resp, ok := c.cinderScope(req, project); !ok {
		return resp
	}
	if len(rest) == 0 {
		return c.createBackup(req, project)
	}
	b, ok := c.cinderFind(Backups, project, rest[0])
	if !ok {
		return cinder.fail(r, http.StatusNotFound, notFoundMessage(Backups, rest[0]))
	}
	if m == http.MethodGet {
		doc := clone(b.doc)
		doc["links"] = cinderLinks(req, project, Backups, b.id)
		return reply(http.StatusOK, "get", map[string]any{"backup": doc})
	}
	c.cols[Backups].remove(b)
	return empty(http.StatusAccepted, "delete")
}

func (c *Cloud) createBackup(req *request, project string) response {
	r := req.Request
	fail := func(msg string) response { return cinder.fail(r, http.StatusBadRequest, msg) }
	// The schemas of 3.0, 3.43 and 3.51.
	allowed := []string{"volume_id", "container", "description", "incremental", "force", "name", "snapshot_id"}
	if v := c.volumeVersion(r); v >= 51 {
		allowed = append(allowed, "metadata", "availability_zone")
	} else if v >= 43 {
		allowed = append(allowed, "metadata")
	}
	in, vol, resp, ok := c.volumeMember(req, project, "backup", "volume_id", allowed, "snapshot_id")
	if !ok {
		return resp
	}
	doc := c.newDoc(Backups, project, NewUUID(), time.Now())
	setCinderNames(doc, in)
	doc["volume_id"], doc["size"] = vol.id, vol.doc["size"]
	if snapshotID, given := in["snapshot_id"].(string); given {
		snap, found := c.cinderFind(Snapshots, project, snapshotID)
		if !found {
			return cinder.fail(r, http.StatusNotFound, notFoundMessage(Snapshots, snapshotID))
		}
		if snap.doc["volume_id"] != vol.id {
			return fail(fmt.Sprintf("Invalid volume: Volume %s does not match with snapshot.volume_id %v.", vol.id, snap.doc["volume_id"]))
		}
		doc["snapshot_id"] = snap.id
	} else {
		switch force, _ := in["force"].(bool); {
		case vol.doc["status"] != "available" && vol.doc["status"] != "in-use":
			return fail(fmt.Sprintf(`Invalid volume: Volume to be backed up must be available or in-use, but the current status is "%v".`, vol.doc["status"]))
		case vol.doc["status"] == "in-use" && !force:
			return fail("Invalid volume: Backing up an in-use volume must use the force flag.")
		}
	}
	id := doc["id"].(string)
	return c.create(Backups, project, doc, reply(http.StatusAccepted, "create", map[string]any{"backup": map[string]any{
		"id": id, "name": doc["name"], "links": cinderLinks(req, project, Backups, id)}}))
}
