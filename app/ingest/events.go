package ingest

import (
	"encoding/json"
	"fmt"

	"mixmatch/app/oslo"
	"mixmatch/app/store"
)

// event says what a notification type does: the op, the resource type, and the
// payload keys of the id and the project (Cinder says tenant_id, Glance owner).
type event struct {
	kind              store.OpKind
	resourceType      string
	idKey, projectKey string
	// listKey, when set, names a list in the payload whose members' "id"s are the
	// resources, in place of idKey: a volume's attachments.
	listKey string
}

// events are the notifications that move mappings; everything else is ignored.
// The start events already say where the resource lives; the end events repeat it
// and cost nothing, as upserts are idempotent.
var events = map[string]event{
	"volume.create.start":        {store.OpCreate, "volumes", "volume_id", "tenant_id", ""},
	"volume.create.end":          {store.OpCreate, "volumes", "volume_id", "tenant_id", ""},
	"volume.delete.end":          {store.OpDelete, "volumes", "volume_id", "tenant_id", ""},
	"volume.transfer.accept.end": {store.OpMove, "volumes", "volume_id", "tenant_id", ""},
	"snapshot.create.start":      {store.OpCreate, "snapshots", "snapshot_id", "tenant_id", ""},
	"snapshot.create.end":        {store.OpCreate, "snapshots", "snapshot_id", "tenant_id", ""},
	"snapshot.delete.end":        {store.OpDelete, "snapshots", "snapshot_id", "tenant_id", ""},
	"image.create":               {store.OpCreate, "images", "id", "owner", ""},
	"image.delete":               {store.OpDelete, "images", "id", "owner", ""},
	// Cinder's backup manager (_usage_from_backup).
	"backup.create.start": {store.OpCreate, "backups", "backup_id", "tenant_id", ""},
	"backup.create.end":   {store.OpCreate, "backups", "backup_id", "tenant_id", ""},
	"backup.delete.end":   {store.OpDelete, "backups", "backup_id", "tenant_id", ""},
	// os-complete (and the legacy attach) reports the volume, with the attachments
	// it has then; a detach reports those left, not the one deleted, so attachments
	// are forgotten only through mixmatch's DELETE. Transfers are not learned here:
	// Cinder's volume.transfer.* carry the volume, never the transfer's id.
	"volume.attach.end": {store.OpCreate, "attachments", "", "tenant_id", "volume_attachment"},
}

// opsFor turns a notification from sp into changes; ok is false for the
// notifications that change nothing.
func opsFor(n oslo.Notification, sp string) (ops []store.Op, ok bool, err error) {
	ev, known := events[n.EventType]
	if !known {
		return nil, false, nil
	}
	var payload map[string]any
	if err := json.Unmarshal(n.Payload, &payload); err != nil {
		return nil, false, fmt.Errorf("%w: payload of %s: %v", oslo.ErrUndecodable, n.EventType, err)
	}
	project, _ := payload[ev.projectKey].(string)
	op := func(id string) store.Op {
		return store.Op{Kind: ev.kind, Mapping: store.Mapping{ResourceType: ev.resourceType, ResourceID: id,
			ResourceSP: sp, ProjectID: project}}
	}
	if ev.listKey != "" {
		if project == "" {
			return nil, false, fmt.Errorf("%w: %s without %s", oslo.ErrUndecodable, n.EventType, ev.projectKey)
		}
		// A payload without the list (the volume was gone when it was built) says
		// nothing.
		members, _ := payload[ev.listKey].([]any)
		for _, m := range members {
			member, _ := m.(map[string]any)
			if id, _ := member["id"].(string); id != "" {
				ops = append(ops, op(id))
			}
		}
		return ops, len(ops) > 0, nil
	}
	id, _ := payload[ev.idKey].(string)
	if id == "" || (ev.kind != store.OpDelete && project == "") {
		return nil, false, fmt.Errorf("%w: %s without %s or %s", oslo.ErrUndecodable, n.EventType, ev.idKey, ev.projectKey)
	}
	return []store.Op{op(id)}, true, nil
}

// eventLabel is the event type as a metric label: publishers choose event types,
// so any but the known ones is "other", and the label's values stay bounded.
func eventLabel(eventType string) string {
	if _, known := events[eventType]; known {
		return eventType
	}
	return "other"
}
