package ingest

import (
	"testing"

	"mixmatch/app/services"
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
