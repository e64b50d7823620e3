package services

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
)

// resource_mapping rows and operators' SQL name these types; a rename or removal
// in the table would orphan them.
func TestMappedTypesAreTheStoredOnes(t *testing.T) {
	want := []string{"images", "volumes", "snapshots", "backups", "transfers", "attachments", "networks", "subnets", "ports"}
	if got := MappedTypes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("MappedTypes() = %v, want %v", got, want)
	}
	for _, typ := range want {
		if !IsMapped(typ) {
			t.Errorf("IsMapped(%q) = false", typ)
		}
	}
	for _, typ := range []string{"types", "os-volume-transfer", "volume-transfers", "image", ""} {
		if IsMapped(typ) {
			t.Errorf("IsMapped(%q) = true", typ)
		}
	}
}

func TestEveryServiceIsConfigurable(t *testing.T) {
	version := regexp.MustCompile(`^v[0-9]+(\.[0-9]+)?$`)
	seen := map[string]string{}
	unique := func(what, v, service string) {
		if v == "" {
			t.Errorf("%s: no %s", service, what)
		} else if other, dup := seen[v]; dup {
			t.Errorf("%s %q of %s is also %s's", what, v, service, other)
		}
		seen[v] = service
	}
	for _, s := range All() {
		unique("name", s.Name, s.Name)
		unique("endpoint key", s.EndpointKey, s.Name)
		unique("versions key", s.VersionsKey, s.Name)
		if s.CodeName == "" || s.Port <= 0 || len(s.APIVersions) == 0 {
			t.Errorf("%s: code name %q, port %d, versions %v", s.Name, s.CodeName, s.Port, s.APIVersions)
		}
		for _, v := range s.APIVersions {
			if !version.MatchString(v) {
				t.Errorf("%s: version %q is not vN or vN.M", s.Name, v)
			}
		}
		if s.DefaultLimit < 1 || s.DefaultLimit > s.MaxLimit {
			t.Errorf("%s: default limit %d, max %d", s.Name, s.DefaultLimit, s.MaxLimit)
		}
		if s.RootStatus != 200 && s.RootStatus != 300 {
			t.Errorf("%s: root status %d", s.Name, s.RootStatus)
		}
	}
}

func TestCollectionsAreConsistent(t *testing.T) {
	mappedIn := map[string]string{}
	for _, s := range All() {
		types := map[string]bool{}
		for _, c := range s.Collections {
			where := s.Name + "/" + c.Type
			if c.Type == "" || types[c.Type] {
				t.Errorf("%s: empty or repeated type", where)
			}
			types[c.Type] = true
			if c.Key == c.Type {
				t.Errorf("%s: key %q is the plural", where, c.Key)
			}
			if c.Mapped && !c.PerCloud {
				t.Errorf("%s: mapped but not a per-cloud resource", where)
			}
			if (c.Mapped || c.Aggregate || c.RouteByName || len(c.Refs) > 0) && c.Key == "" {
				t.Errorf("%s: has members but no singular key", where)
			}
			if c.Aggregate && c.ListKey == "" {
				t.Errorf("%s: aggregates but has no list key", where)
			}
			if c.Mapped {
				// Rows carry no service: the type alone must say which.
				if other, dup := mappedIn[c.Row()]; dup && other != s.Name {
					t.Errorf("%s: mapped type also in %s", where, other)
				}
				mappedIn[c.Row()] = s.Name
			}
			if c.MappedAs != "" && !c.Mapped {
				t.Errorf("%s: rows named %q but not mapped", where, c.MappedAs)
			}
		}
	}
	for _, s := range All() {
		for _, c := range s.Collections {
			for _, r := range c.Refs {
				// A parent is searched for in the service of its child.
				if _, ok := s.ByRow(r.Type); r.Field == "" || !ok {
					t.Errorf("%s/%s: reference %+v names no mapped type of %s", s.Name, c.Type, r, s.Name)
				}
			}
		}
	}
}

// A create answer wrapped under the table's key, or bare where the table says so,
// gives back its id; messages name the member by the same key.
func TestSingularKeysRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		service, typ, key string
		bare              bool
	}{
		{"image", "images", "image", true},
		{"volume", "volumes", "volume", false},
		{"volume", "snapshots", "snapshot", false},
		{"volume", "backups", "backup", false},
		{"volume", "os-volume-transfer", "transfer", false},
		{"volume", "volume-transfers", "transfer", false},
		{"volume", "attachments", "attachment", false},
		{"volume", "qos-specs", "qos_specs", false},
		{"volume", "types", "volume_type", false},
		{"network", "networks", "network", false},
		{"network", "security-groups", "security_group", false},
	} {
		c, ok := Lookup(tc.service, tc.typ)
		if !ok || c.Key != tc.key || c.Bare != tc.bare || Noun(tc.service, tc.typ) != tc.key {
			t.Errorf("Lookup(%q, %q) = %+v, %v; want key %q, bare %v", tc.service, tc.typ, c, ok, tc.key, tc.bare)
			continue
		}
		member := map[string]any{"id": "x1", "name": "n"}
		var answer any = member
		if !tc.bare {
			answer = map[string]any{tc.key: member}
		}
		raw, _ := json.Marshal(answer)
		var body map[string]json.RawMessage
		json.Unmarshal(raw, &body)
		if id := string(c.Member(body)["id"]); id != `"x1"` {
			t.Errorf("%s/%s: member of %s has id %s", tc.service, tc.typ, raw, id)
		}
	}
}

// An image property named "image" is not a wrapper; Glance v1's wrapper is.
func TestMemberOfAnImage(t *testing.T) {
	c, _ := Lookup("image", "images")
	for answer, want := range map[string]string{
		`{"id": "v2", "image": {"id": "property"}}`: `"v2"`,
		`{"image": {"id": "v1"}}`:                   `"v1"`,
	} {
		var body map[string]json.RawMessage
		json.Unmarshal([]byte(answer), &body)
		if id := string(c.Member(body)["id"]); id != want {
			t.Errorf("member of %s has id %s, want %s", answer, id, want)
		}
	}
}

// What the table does not know is named as the path names it.
func TestUnknownTypesAreNamedAsGiven(t *testing.T) {
	if got := Noun("volume", "workers"); got != "workers" {
		t.Errorf("Noun(volume, workers) = %q", got)
	}
	if got := Noun("compute", "servers"); got != "servers" {
		t.Errorf("Noun(compute, servers) = %q", got)
	}
	if got := Prefixes(); got != "/image, /volume and /network" {
		t.Errorf("Prefixes() = %q", got)
	}
}

// Every lookup reads the table itself, so an entry is all a new service or
// resource type needs.
func TestAddingAnEntrySuffices(t *testing.T) {
	saved := table
	t.Cleanup(func() { table = saved })
	table = append(append([]*Service{}, saved...), &Service{Name: "share", Collections: []Collection{
		{Type: "shares", Key: "share", ListKey: "shares", PerCloud: true, Mapped: true},
	}})
	if s, ok := Get("share"); !ok || s.Name != "share" {
		t.Fatalf("Get(share) = %v, %v", s, ok)
	}
	if c, ok := Lookup("share", "shares"); !ok || c.Key != "share" {
		t.Fatalf("Lookup(share, shares) = %v, %v", c, ok)
	}
	names := Names()
	if names[len(names)-1] != "share" || !IsMapped("shares") || Noun("share", "shares") != "share" ||
		Prefixes() != "/image, /volume, /network and /share" {
		t.Fatalf("names %v, mapped %v", names, MappedTypes())
	}
}

// The proxy searches other clouds only for a user's own resources: a definition
// every cloud has its own of is the local cloud's.
func TestDefinitionsAreNotPerCloud(t *testing.T) {
	for _, tc := range [][2]string{{"volume", "types"}, {"volume", "qos-specs"}, {"volume", "messages"}, {"volume", "limits"},
		{"image", "tasks"}, {"image", "schemas"}, {"image", "info"}, {"image", "metadefs"}} {
		if c, ok := Lookup(tc[0], tc[1]); !ok || c.PerCloud {
			t.Errorf("%s %s: known %v, per cloud", tc[0], tc[1], ok)
		}
	}
}

// A transfer created under one path and accepted under the other is one row.
func TestTransfersAreOneRowUnderBothPaths(t *testing.T) {
	for _, typ := range []string{"os-volume-transfer", "volume-transfers"} {
		if got := RowType("volume", typ); got != "transfers" {
			t.Errorf("RowType(volume, %s) = %q", typ, got)
		}
	}
	if got := RowType("volume", "volumes"); got != "volumes" {
		t.Errorf("RowType(volume, volumes) = %q", got)
	}
	if got := RowType("volume", "workers"); got != "workers" {
		t.Errorf("RowType(volume, workers) = %q", got)
	}
	svc, _ := Get("volume")
	if c, ok := svc.ByRow("transfers"); !ok || c.Type != "os-volume-transfer" {
		t.Errorf("ByRow(transfers) = %+v", c)
	}
}
