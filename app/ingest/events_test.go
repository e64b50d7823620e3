package ingest

import (
	"reflect"
	"testing"

	"mixmatch/app/oslo"
	"mixmatch/app/services"
	"mixmatch/app/store"
)

// A notification must write a resource_type the proxy looks up; any other would
// fill the table with rows nothing reads.
func TestEventsWriteMappedTypes(t *testing.T) {
	for name, ev := range events {
		if !services.IsMapped(ev.resourceType) {
			t.Errorf("%s writes resource type %q, which is not mapped", name, ev.resourceType)
		}
	}
}

// Payloads as Cinder 21 builds them: _usage_from_backup for backup.*, and
// _usage_from_volume (with the volume's attachments, rows as oslo's serializer
// renders them) for volume.attach.end.
const (
	backupPayload = `{"tenant_id": "p1", "user_id": "u1", "availability_zone": "nova",
		"backup_id": "9c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f", "host": "node1", "display_name": "b",
		"created_at": "2026-01-02T03:04:05", "status": "creating", "volume_id": "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
		"size": 1, "service_metadata": null, "service": "cinder.backup.drivers.swift.SwiftBackupDriver",
		"fail_reason": null, "parent_id": null, "num_dependent_backups": 0, "snapshot_id": null}`
	attachPayload = `{"tenant_id": "p1", "host": "node1@lvm#lvm", "user_id": "u1", "availability_zone": "nova",
		"volume_id": "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "volume_type": "t1", "display_name": "v",
		"launched_at": "2026-01-02T03:04:05", "created_at": "2026-01-02T03:04:05", "status": "in-use",
		"snapshot_id": null, "size": 1, "replication_status": null, "replication_extended_status": null,
		"replication_driver_data": null, "metadata": [],
		"volume_attachment": [
			{"id": "a1b2c3d4-0000-4000-8000-000000000001", "volume_id": "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
			 "instance_uuid": "5d0c6f3e-1b2a-4c3d-8e4f-0a1b2c3d4e5f", "attached_host": "compute1", "mountpoint": "/dev/vdb",
			 "attach_time": "2026-01-02T03:04:05", "detach_time": null, "attach_status": "attached", "attach_mode": "rw",
			 "connection_info": "{}", "connector": "{}", "deleted": false, "created_at": "2026-01-02T03:04:05"},
			{"id": "a1b2c3d4-0000-4000-8000-000000000002", "volume_id": "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
			 "instance_uuid": "6e1d7f4f-2c3b-4d4e-9f5a-1b2c3d4e5f6a", "attach_status": "reserved"}]}`
)

func TestCinderBackupsAndAttachments(t *testing.T) {
	for _, tc := range []struct {
		event, payload string
		want           []store.Op
	}{
		{"backup.create.start", backupPayload, []store.Op{{Kind: store.OpCreate, Mapping: store.Mapping{ResourceType: "backups",
			ResourceID: "9c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f", ResourceSP: "remote1", ProjectID: "p1"}}}},
		{"backup.create.end", backupPayload, []store.Op{{Kind: store.OpCreate, Mapping: store.Mapping{ResourceType: "backups",
			ResourceID: "9c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f", ResourceSP: "remote1", ProjectID: "p1"}}}},
		{"backup.delete.end", backupPayload, []store.Op{{Kind: store.OpDelete, Mapping: store.Mapping{ResourceType: "backups",
			ResourceID: "9c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f", ResourceSP: "remote1", ProjectID: "p1"}}}},
		{"volume.attach.end", attachPayload, []store.Op{
			{Kind: store.OpCreate, Mapping: store.Mapping{ResourceType: "attachments", ResourceID: "a1b2c3d4-0000-4000-8000-000000000001",
				ResourceSP: "remote1", ProjectID: "p1"}},
			{Kind: store.OpCreate, Mapping: store.Mapping{ResourceType: "attachments", ResourceID: "a1b2c3d4-0000-4000-8000-000000000002",
				ResourceSP: "remote1", ProjectID: "p1"}}}},
		// A volume whose attachments could not be read, and transfers, whose
		// events carry the volume only.
		{"volume.attach.end", `{"tenant_id": "p1", "volume_id": "v"}`, nil},
		{"volume.transfer.create.end", attachPayload, nil},
	} {
		ops, ok, err := opsFor(oslo.Notification{EventType: tc.event, Payload: []byte(tc.payload)}, "remote1")
		if err != nil || ok != (tc.want != nil) || !reflect.DeepEqual(ops, tc.want) {
			t.Errorf("%s: %+v, %v, %v; want %+v", tc.event, ops, ok, err, tc.want)
		}
	}
	if _, _, err := opsFor(oslo.Notification{EventType: "volume.attach.end", Payload: []byte(`{"volume_attachment": []}`)}, "remote1"); err == nil {
		t.Error("an attach without its project was taken")
	}
}
