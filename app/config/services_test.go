package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"mixmatch/app/services"
)

// Each service of the table gets its options from the table alone: an endpoint in
// every [sp_*], announced versions in [DEFAULT] that an operator may override, and
// a required endpoint once enabled.
func TestEveryServiceHasItsOptions(t *testing.T) {
	defaults, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	var file strings.Builder
	file.WriteString("[DEFAULT]\n")
	for i, svc := range services.All() {
		fmt.Fprintf(&file, "%s = v9.%d\n", svc.VersionsKey, i)
	}
	file.WriteString("[sp_default]\nenabled_services = " + strings.Join(services.Names(), ", ") + "\n")
	for i, svc := range services.All() {
		fmt.Fprintf(&file, "%s = http://cloud:%d/\n", svc.EndpointKey, i)
	}
	c, err := Load(strings.NewReader(file.String()), "m.conf")
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := c.SP(LocalSP)
	for i, svc := range services.All() {
		if got, want := sp.Endpoint(svc.Name), fmt.Sprintf("http://cloud:%d", i); got != want {
			t.Errorf("%s: endpoint %q, want %q", svc.Name, got, want)
		}
		if got, want := c.APIVersions[svc.Name], []string{fmt.Sprintf("v9.%d", i)}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: versions %v, want %v", svc.Name, got, want)
		}
		if !reflect.DeepEqual(defaults.APIVersions[svc.Name], svc.APIVersions) {
			t.Errorf("%s: default versions %v, want %v", svc.Name, defaults.APIVersions[svc.Name], svc.APIVersions)
		}

		_, err := Load(strings.NewReader("[sp_default]\nenabled_services = "+svc.Name+"\n"), "m.conf")
		if err == nil || !strings.Contains(err.Error(), "[sp_default] "+svc.EndpointKey+": is required") {
			t.Errorf("%s enabled without %s: %v", svc.Name, svc.EndpointKey, err)
		}
	}
}
