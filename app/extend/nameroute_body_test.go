package extend

import (
	"encoding/json"
	"reflect"
	"testing"
)

// Name routing changes the name and nothing else. Cinder's schema allows nothing but
// "volume" (and scheduler hints) at the top of a create, whatever the microversion,
// so any other change makes every "openstack volume create NAME@SP" a 400. Fails
// today: the volume's fields are merged into the top level, and the original object
// is nested in the new one. The load test, against the strict fake cloud, fails on
// it too.
func TestNameRoutingChangesOnlyTheName(t *testing.T) {
	h, got := router(t)
	post(h, "/volume/v3/8a1e/volumes", `{"volume": {"name": "data@remote1", "size": 10}}`)
	var body, want any
	json.Unmarshal([]byte(`{"volume": {"name": "data", "size": 10}}`), &want)
	if err := json.Unmarshal([]byte(got.body), &body); err != nil || !reflect.DeepEqual(body, want) || got.sp != "remote1" {
		t.Fatalf("sent to %q: %s", got.sp, got.body)
	}
}
