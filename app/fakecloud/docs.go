package fakecloud

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"time"
)

// newDoc is a resource as its service describes it right after creating it.
func (c *Cloud) newDoc(kind, project, id string, at time.Time) map[string]any {
	at = at.UTC()
	var owner any
	if project != "" {
		owner = project
	}
	var doc map[string]any
	switch kind {
	case Images:
		now := at.Format(time.RFC3339)
		doc = map[string]any{"id": id, "name": nil, "status": "queued", "visibility": "shared", "protected": false,
			"os_hidden": false, "owner": owner, "tags": []any{}, "created_at": now, "updated_at": now,
			"self": "/v2/images/" + id, "file": "/v2/images/" + id + "/file", "schema": "/v2/schemas/image",
			"disk_format": nil, "container_format": nil, "size": nil, "virtual_size": nil, "checksum": nil,
			"os_hash_algo": nil, "os_hash_value": nil, "min_disk": 0, "min_ram": 0}
	case Volumes:
		doc = map[string]any{"id": id, "name": nil, "description": nil, "status": "available", "size": 1,
			"availability_zone": "nova", "created_at": at.Format("2006-01-02T15:04:05.000000"), "updated_at": nil,
			"attachments": []any{}, "bootable": "false", "encrypted": false, "multiattach": false, "metadata": map[string]any{},
			"volume_type": "__DEFAULT__", "snapshot_id": nil, "source_volid": nil, "consistencygroup_id": nil,
			"replication_status": nil, "migration_status": nil, "user_id": nil, "os-vol-tenant-attr:tenant_id": owner}
	case Snapshots:
		doc = map[string]any{"id": id, "name": nil, "description": nil, "status": "available", "size": 1,
			"volume_id": nil, "created_at": at.Format("2006-01-02T15:04:05.000000"), "updated_at": nil,
			"metadata": map[string]any{}, "os-extended-snapshot-attributes:project_id": owner,
			"os-extended-snapshot-attributes:progress": "100%"}
	case Backups:
		now := at.Format("2006-01-02T15:04:05.000000")
		doc = map[string]any{"id": id, "name": nil, "description": nil, "status": "available", "size": 1,
			"object_count": 0, "availability_zone": "nova", "container": nil, "created_at": now, "updated_at": nil,
			"fail_reason": nil, "volume_id": nil, "is_incremental": false, "has_dependent_backups": false,
			"snapshot_id": nil, "data_timestamp": now}
	case Transfers:
		doc = map[string]any{"id": id, "name": nil, "volume_id": nil, "created_at": at.Format("2006-01-02T15:04:05.000000"),
			"no_snapshots": false, "source_project_id": owner, "auth_key": ""}
	case Attachments:
		doc = map[string]any{"id": id, "status": "reserved", "instance": nil, "volume_id": nil, "attached_at": "",
			"detached_at": "", "attach_mode": "null", "connection_info": map[string]any{}}
	case Networks:
		now := at.Format(time.RFC3339)
		doc = map[string]any{"id": id, "name": "", "description": "", "status": "ACTIVE", "admin_state_up": true,
			"shared": false, "tenant_id": project, "project_id": project, "subnets": []any{}, "mtu": 1500,
			"router:external": false, "port_security_enabled": true, "availability_zone_hints": []any{},
			"availability_zones": []any{}, "ipv4_address_scope": nil, "ipv6_address_scope": nil, "tags": []any{},
			"created_at": now, "updated_at": now, "revision_number": 1}
	}
	if c.opts.Name != "" {
		doc["cloud"] = c.opts.Name
	}
	return doc
}

// setImageData is what Glance records of uploaded data.
func setImageData(r *resource, data []byte) {
	md := md5.Sum(data)
	sha := sha512.Sum512(data)
	r.data = data
	r.doc["status"], r.doc["size"], r.doc["virtual_size"] = "active", len(data), nil
	r.doc["checksum"], r.doc["os_hash_algo"], r.doc["os_hash_value"] = hex.EncodeToString(md[:]), "sha512", hex.EncodeToString(sha[:])
}

// NewUUID is a random version-4 UUID with dashes, as the services write ids.
func NewUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return Dashed(hex.EncodeToString(b))
}

// Dashed is a 32-digit hex id in the dashed form the services write ids in; any
// other string as it is.
func Dashed(h string) string {
	if len(h) != 32 {
		return h
	}
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func clone(doc map[string]any) map[string]any {
	out := make(map[string]any, len(doc))
	for k, v := range doc {
		out[k] = v
	}
	return out
}
