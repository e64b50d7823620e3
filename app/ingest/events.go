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
}

// events are the notifications that move mappings; everything else is ignored.
// The start events already say where the resource lives; the end events repeat it
// and cost nothing, as upserts are idempotent.
var events = map[string]event{
	"volume.create.start":        {store.OpCreate, "volumes", "volume_id", "tenant_id"},
	"volume.create.end":          {store.OpCreate, "volumes", "volume_id", "tenant_id"},
	"volume.delete.end":          {store.OpDelete, "volumes", "volume_id", "tenant_id"},
	"volume.transfer.accept.end": {store.OpMove, "volumes", "volume_id", "tenant_id"},
	"snapshot.create.start":      {store.OpCreate, "snapshots", "snapshot_id", "tenant_id"},
	"snapshot.create.end":        {store.OpCreate, "snapshots", "snapshot_id", "tenant_id"},
	"snapshot.delete.end":        {store.OpDelete, "snapshots", "snapshot_id", "tenant_id"},
	"image.create":               {store.OpCreate, "images", "id", "owner"},
	"image.delete":               {store.OpDelete, "images", "id", "owner"},
}

// opFor turns a notification from sp into a change; ok is false for the
// notifications that change nothing.
func opFor(n oslo.Notification, sp string) (op store.Op, ok bool, err error) {
	ev, known := events[n.EventType]
	if !known {
		return store.Op{}, false, nil
	}
	var payload map[string]any
	if err := json.Unmarshal(n.Payload, &payload); err != nil {
		return store.Op{}, false, fmt.Errorf("%w: payload of %s: %v", oslo.ErrUndecodable, n.EventType, err)
	}
	id, _ := payload[ev.idKey].(string)
	project, _ := payload[ev.projectKey].(string)
	if id == "" || (ev.kind != store.OpDelete && project == "") {
		return store.Op{}, false, fmt.Errorf("%w: %s without %s or %s", oslo.ErrUndecodable, n.EventType, ev.idKey, ev.projectKey)
	}
	return store.Op{Kind: ev.kind, Mapping: store.Mapping{ResourceType: ev.resourceType, ResourceID: id,
		ResourceSP: sp, ProjectID: project}}, true, nil
}

// eventLabel is the event type as a metric label: publishers choose event types,
// so any but the known ones is "other", and the label's values stay bounded.
func eventLabel(eventType string) string {
	if _, known := events[eventType]; known {
		return eventType
	}
	return "other"
}
