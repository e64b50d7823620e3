package fakecloud_test

import (
	"testing"

	"mixmatch/app/fakecloud"
)

const server = "5d0c6f3e-1b2a-4c3d-8e4f-0a1b2c3d4e5f"

// newVolume creates an available volume and returns its id.
func newVolume(t *testing.T, c *fakecloud.Cloud, headers ...string) string {
	t.Helper()
	a := call(t, c, "POST", "/v3/8a1e/volumes", `{"volume": {"size": 1}}`, headers...)
	var vol struct{ Volume struct{ ID string } }
	a.want(t, "volume create", 202)
	a.decode(t, &vol)
	return vol.Volume.ID
}

const v344 = "volume 3.44"

// Nova's attach and detach, as cinder/api/v3/attachments.py answers them.
func TestAttachmentsAsNovaUsesThem(t *testing.T) {
	c := newCloud(t, fakecloud.Options{Name: "east"})
	vol := newVolume(t, c)
	reserve := `{"attachment": {"volume_uuid": "` + vol + `", "instance_uuid": "` + server + `", "connector": null}}`
	call(t, c, "POST", "/v3/8a1e/attachments", reserve).want(t, "before 3.27", 404)
	call(t, c, "POST", "/v3/8a1e/attachments", `{"attachment": {"volume_uuid": "`+dashed+`"}}`, "OpenStack-API-Version", v344).
		want(t, "an unknown volume", 404, "Volume "+dashed+" could not be found.")
	call(t, c, "POST", "/v3/8a1e/attachments", `{"attachment": {"volume_uuid": "`+vol+`", "mode": "rw"}}`, "OpenStack-API-Version", v344).
		want(t, "mode before 3.54", 400, "('mode' was unexpected)")
	a := call(t, c, "POST", "/v3/8a1e/attachments", reserve, "OpenStack-API-Version", v344)
	var att struct {
		Attachment struct{ ID, Status, Instance string }
	}
	a.want(t, "reserve", 200, `"volume_id": "`+vol+`"`, `"cloud": "east"`)
	a.decode(t, &att)
	id := att.Attachment.ID
	if att.Attachment.Status != "reserved" || att.Attachment.Instance != server {
		t.Fatalf("reserved %s", a.body)
	}
	call(t, c, "GET", "/v3/8a1e/volumes/"+vol, "").want(t, "the volume reserved", 200, `"status": "reserved"`)
	call(t, c, "POST", "/v3/8a1e/attachments", `{"attachment": {"volume_uuid": "`+vol+`"}}`, "OpenStack-API-Version", v344).
		want(t, "a second reservation", 400, "status must be available or downloading to reserve, but the current status is reserved")
	call(t, c, "DELETE", "/v3/8a1e/volumes/"+vol, "").want(t, "delete a reserved volume", 400)
	call(t, c, "PUT", "/v3/8a1e/attachments/"+id, `{"attachment": {"connector": {"host": "compute1", "initiator": "iqn.x"}}}`,
		"OpenStack-API-Version", v344).want(t, "update", 200, `"status": "attaching"`, `"driver_volume_type": "iscsi"`)
	call(t, c, "POST", "/v3/8a1e/attachments/"+id+"/action", `{"os-complete": null}`, "OpenStack-API-Version", "volume 3.43").
		want(t, "os-complete before 3.44", 400, "There is no such action: os-complete")
	call(t, c, "POST", "/v3/8a1e/attachments/"+id+"/action", `{"os-complete": null}`, "OpenStack-API-Version", v344).
		want(t, "os-complete", 204)
	call(t, c, "GET", "/v3/8a1e/volumes/"+vol, "").want(t, "the volume attached", 200, `"status": "in-use"`, `"attachment_id": "`+id+`"`)

	// Bug #2004555: Nova holds the server, so only a service deletes its attachment.
	call(t, c, "DELETE", "/v3/8a1e/attachments/"+id, "", "OpenStack-API-Version", v344).
		want(t, "a user's detach", 409, "Detach volume from instance "+server+" using the Compute API")
	call(t, c, "DELETE", "/v3/8a1e/attachments/"+id, "", "OpenStack-API-Version", v344, "X-Service-Token", "nova").
		want(t, "Nova's detach", 200, `{"attachments": []}`)
	call(t, c, "GET", "/v3/8a1e/attachments/"+id, "", "OpenStack-API-Version", v344).
		want(t, "the attachment once deleted", 404, "Volume attachment could not be found with filter: attachment_id = "+id+".")
	call(t, c, "GET", "/v3/8a1e/volumes/"+vol, "").want(t, "the volume detached", 200, `"status": "available"`, `"attachments": []`)
}

// keystonemiddleware refuses a call whose service token is invalid; a valid one
// without the service role is a user's call to Cinder.
func TestServiceTokensAreChecked(t *testing.T) {
	c := newCloud(t, fakecloud.Options{ServiceTokens: func(tok string) ([]string, bool) {
		roles, ok := map[string][]string{"nova": {"service"}, "other": {"member"}}[tok]
		return roles, ok
	}})
	vol := newVolume(t, c)
	call(t, c, "GET", "/v3/8a1e/volumes/"+vol, "", "X-Service-Token", "forged").want(t, "an invalid service token", 401)
	a := call(t, c, "POST", "/v3/8a1e/attachments", `{"attachment": {"volume_uuid": "`+vol+`", "instance_uuid": "`+server+
		`", "connector": {"host": "compute1"}}}`, "OpenStack-API-Version", v344)
	var att struct{ Attachment struct{ ID string } }
	a.want(t, "reserve and connect", 200)
	a.decode(t, &att)
	path := "/v3/8a1e/attachments/" + att.Attachment.ID
	call(t, c, "DELETE", path, "", "OpenStack-API-Version", v344, "X-Service-Token", "other").want(t, "without the service role", 409)
	call(t, c, "DELETE", path, "", "OpenStack-API-Version", v344, "X-Service-Token", "nova").want(t, "with it", 200)
}

// A cloud whose Nova does not hold the server (another cloud's) lets anyone
// delete the attachment.
func TestAnotherCloudsServerIsDetachedByAnyone(t *testing.T) {
	c := newCloud(t, fakecloud.Options{NovaKnows: func(string) bool { return false }})
	vol := newVolume(t, c)
	a := call(t, c, "POST", "/v3/8a1e/attachments", `{"attachment": {"volume_uuid": "`+vol+`", "instance_uuid": "`+server+
		`", "connector": {"host": "compute1"}}}`, "OpenStack-API-Version", v344)
	var att struct{ Attachment struct{ ID string } }
	a.decode(t, &att)
	call(t, c, "DELETE", "/v3/8a1e/attachments/"+att.Attachment.ID, "", "OpenStack-API-Version", v344).want(t, "detach", 200)
}

func TestBackups(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	vol, other := newVolume(t, c), newVolume(t, c)
	a := call(t, c, "POST", "/v3/8a1e/snapshots", `{"snapshot": {"volume_id": "`+other+`"}}`)
	var snap struct{ Snapshot struct{ ID string } }
	a.decode(t, &snap)
	call(t, c, "POST", "/v3/8a1e/backups", `{"backup": {"volume_id": "`+dashed+`"}}`).want(t, "of no volume", 404, "Volume "+dashed+" could not be found.")
	call(t, c, "POST", "/v3/8a1e/backups", `{"backup": {"volume_id": "`+vol+`", "snapshot_id": "`+snap.Snapshot.ID+`"}}`).
		want(t, "another volume's snapshot", 400, "does not match with snapshot.volume_id")
	call(t, c, "POST", "/v3/8a1e/backups", `{"backup": {"volume_id": "`+vol+`", "metadata": {}}}`).
		want(t, "metadata before 3.43", 400, "('metadata' was unexpected)")
	a = call(t, c, "POST", "/v3/8a1e/backups", `{"backup": {"volume_id": "`+vol+`", "name": "b"}}`)
	var b struct {
		Backup struct {
			ID, Name string
			Links    []struct{ Href string }
		}
	}
	a.want(t, "create", 202)
	a.decode(t, &b)
	if b.Backup.Name != "b" || len(b.Backup.Links) != 2 || b.Backup.Links[0].Href != c.URL()+"/v3/8a1e/backups/"+b.Backup.ID {
		t.Fatalf("created %s", a.body)
	}
	call(t, c, "GET", "/v3/8a1e/backups/"+b.Backup.ID, "").want(t, "show", 200, `"volume_id": "`+vol+`"`)
	call(t, c, "POST", "/v3/8a1e/volumes", `{"volume": {"backup_id": "`+b.Backup.ID+`"}}`).want(t, "a volume from it", 202)
	call(t, c, "POST", "/v3/8a1e/volumes", `{"volume": {"backup_id": "`+dashed+`"}}`).
		want(t, "a volume from no backup", 404, "Backup "+dashed+" could not be found.")
	call(t, c, "DELETE", "/v3/8a1e/backups/"+b.Backup.ID, "").want(t, "delete", 202)
	call(t, c, "GET", "/v3/8a1e/backups/"+b.Backup.ID, "").want(t, "once deleted", 404)
}

// A transfer offered in one project and accepted in another, under either path.
func TestTransfers(t *testing.T) {
	tokens := map[string]string{"tok-a": "aaaa", "tok-b": "bbbb"}
	c := newCloud(t, fakecloud.Options{Tokens: func(tok string) (string, bool) { p, ok := tokens[tok]; return p, ok }})
	for _, path := range []string{"os-volume-transfer", "volume-transfers"} {
		a := call(t, c, "POST", "/v3/aaaa/volumes", `{"volume": {"size": 1}}`, "X-Auth-Token", "tok-a")
		var vol struct{ Volume struct{ ID string } }
		a.decode(t, &vol)
		call(t, c, "POST", "/v3/aaaa/"+path, `{"transfer": {"volume_id": "`+dashed+`"}}`, "X-Auth-Token", "tok-a").want(t, path+" of no volume", 404)
		a = call(t, c, "POST", "/v3/aaaa/"+path, `{"transfer": {"volume_id": "`+vol.Volume.ID+`", "name": "t"}}`, "X-Auth-Token", "tok-a")
		var tr struct {
			Transfer struct {
				ID      string
				AuthKey string `json:"auth_key"`
			}
		}
		a.want(t, path+" create", 202, "/os-volume-transfer/")
		a.decode(t, &tr)
		call(t, c, "POST", "/v3/aaaa/"+path, `{"transfer": {"volume_id": "`+vol.Volume.ID+`"}}`, "X-Auth-Token", "tok-a").
			want(t, path+" twice", 400, "Invalid volume: status must be available")
		call(t, c, "GET", "/v3/aaaa/"+path+"/"+tr.Transfer.ID, "", "X-Auth-Token", "tok-a").want(t, path+" show", 200)
		call(t, c, "GET", "/v3/bbbb/"+path+"/"+tr.Transfer.ID, "", "X-Auth-Token", "tok-b").want(t, path+" another project's", 404)
		accept := "/v3/bbbb/" + path + "/" + tr.Transfer.ID + "/accept"
		call(t, c, "POST", accept, `{"accept": {"auth_key": "wrong"}}`, "X-Auth-Token", "tok-b").want(t, path+" wrong key", 400, "invalid auth key")
		call(t, c, "POST", accept, `{"accept": {"auth_key": "`+tr.Transfer.AuthKey+`"}}`, "X-Auth-Token", "tok-b").
			want(t, path+" accept", 202, `"volume_id": "`+vol.Volume.ID+`"`)
		call(t, c, "GET", "/v3/bbbb/volumes/"+vol.Volume.ID, "", "X-Auth-Token", "tok-b").want(t, path+" the volume moved", 200, `"status": "available"`)
		call(t, c, "GET", "/v3/aaaa/volumes/"+vol.Volume.ID, "", "X-Auth-Token", "tok-a").want(t, path+" the giver's no more", 404)
	}
}

// Cinder's root offers its microversion range, and it refuses any other.
func TestVolumeMicroversions(t *testing.T) {
	c := newCloud(t, fakecloud.Options{})
	c.SetRoot("volume")
	c.SetVolumeVersions("3.1", "3.50")
	var doc struct {
		Versions []struct {
			Version    string
			MinVersion string `json:"min_version"`
		}
	}
	call(t, c, "GET", "/", "").decode(t, &doc)
	if doc.Versions[0].Version != "3.50" || doc.Versions[0].MinVersion != "3.1" {
		t.Fatalf("root %+v", doc)
	}
	vol := newVolume(t, c)
	for _, v := range []string{"volume 3.51", "volume 3.0", "volume 2.0"} {
		call(t, c, "GET", "/v3/8a1e/volumes/"+vol, "", "OpenStack-API-Version", v).
			want(t, v, 406, "is not supported by the API. Minimum is 3.1 and maximum is 3.50.")
	}
	for _, v := range []string{"volume 3.50", "volume latest", ""} {
		call(t, c, "GET", "/v3/8a1e/volumes/"+vol, "", "OpenStack-API-Version", v).want(t, v, 200)
	}
}
