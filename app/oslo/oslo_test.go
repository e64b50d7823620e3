package oslo

import (
	"errors"
	"testing"
)

func TestDecode(t *testing.T) {
	v2 := []byte(`{"oslo.version": "2.0", "oslo.message": "{\"message_id\": \"5f0c-1\", \"publisher_id\": \"volume.node1@lvm#lvm\", \"event_type\": \"volume.create.start\", \"priority\": \"INFO\", \"payload\": {\"volume_id\": \"0e4d\", \"tenant_id\": \"8a1e\"}, \"timestamp\": \"2026-01-02 03:04:05.123456\", \"_unique_id\": \"9b2f\"}"}`)
	n, err := Decode(v2)
	if err != nil || n.EventType != "volume.create.start" || n.MessageID != "5f0c-1" || string(n.Payload) != `{"volume_id": "0e4d", "tenant_id": "8a1e"}` {
		t.Fatalf("2.0: %+v %v", n, err)
	}
	v1 := []byte(`{"message_id": "m2", "publisher_id": "image.localhost", "event_type": "image.create", "priority": "INFO", "payload": {"id": "i1", "owner": "p1"}}`)
	if n, err := Decode(v1); err != nil || n.EventType != "image.create" {
		t.Fatalf("1.0: %+v %v", n, err)
	}
	if n, err := Decode(Envelope(Notification{MessageID: "m3", EventType: "image.delete", Payload: []byte(`{"id":"x"}`)})); err != nil || n.MessageID != "m3" {
		t.Fatalf("round trip: %+v %v", n, err)
	}
	for _, bad := range []string{`nope`, `[]`, `{"oslo.version": "2.0", "oslo.message": 5}`, `{"oslo.version": "3.0", "oslo.message": "{}"}`, `{"payload": {}}`} {
		if _, err := Decode([]byte(bad)); !errors.Is(err, ErrUndecodable) {
			t.Errorf("Decode(%s) = %v", bad, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"oslo.version": "2.0", "oslo.message": "{\"event_type\": \"image.create\"}"}`))
	f.Add([]byte(`{"event_type": "volume.delete.end", "payload": {"volume_id": "v"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := Decode(b)
		if err == nil && n.EventType == "" {
			t.Fatal("decoded a notification without event_type")
		}
	})
}
