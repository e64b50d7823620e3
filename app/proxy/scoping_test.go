package proxy_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"mixmatch/app/apierr"
	"mixmatch/app/config"
	"mixmatch/app/fakecloud"
	"mixmatch/app/k2k"
	"mixmatch/app/keystone"
	"mixmatch/app/store"
)

// strictTokens scopes as the K2K exchanger does: only to the user's projects at
// the SP (a 403 for any other), and not to those the SP refuses.
type strictTokens struct {
	tokens
	projects []string        // the user's, at every remote SP
	refuse   map[string]bool // listed, yet the SP will not scope to them
}

func (s strictTokens) Token(_ context.Context, sp *config.SP, _ *keystone.Token, _ string, project string) (k2k.Scoped, error) {
	if project == "" {
		project = s.projects[0]
	}
	if !slices.Contains(s.projects, project) || s.refuse[project] {
		return k2k.Scoped{}, apierr.New(http.StatusForbidden, "the user has no role in project %s at service provider %s", project, sp.Name)
	}
	return k2k.Scoped{Token: "k2k-" + sp.Name + "-" + project, ProjectID: project}, nil
}

func (s strictTokens) Projects(context.Context, *config.SP, *keystone.Token, string) ([]keystone.Project, error) {
	var out []keystone.Project
	for _, p := range s.projects {
		out = append(out, keystone.Project{ID: p, Enabled: true})
	}
	return out, nil
}

// strictSetup maps imageID to remote1 in its owner's project, where the user has
// no role, and has remote1 honour the tokens strictTokens hands out.
func strictSetup(t *testing.T, tk strictTokens, options ...option) *setup {
	s := newSetup(t, append([]option{withSPs("default", "remote1"), withTokens(tk), withTokenCheck("remote1", func(token string) (string, bool) {
		project, ok := strings.CutPrefix(token, "k2k-remote1-")
		return project, ok
	})}, options...)...)
	s.store.Upsert(context.Background(), store.Mapping{ResourceType: "images", ResourceID: imageID, ResourceSP: "remote1", ProjectID: "0e"})
	s.backends["remote1"].Add(fakecloud.Images, "0e", imageID, map[string]any{"visibility": "public"})
	return s
}

func lastToken(s *setup, sp string) string {
	got := s.backends[sp].Received()
	if len(got) == 0 {
		return ""
	}
	return got[len(got)-1].Token
}

// The mapping's project is the image's owner; a user who sees a public image there
// reads it in a project of their own.
func TestAnImageTheUserDoesNotOwnIsReadInTheirOwnProject(t *testing.T) {
	s := strictSetup(t, strictTokens{projects: []string{"aa", "bb"}})
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil)
	if rec.Code != 200 || lastToken(s, "remote1") != "k2k-remote1-aa" {
		t.Fatalf("%d %s with %q", rec.Code, rec.Body, lastToken(s, "remote1"))
	}
	// MM-PROJECT-ID says which of their projects.
	rec = s.do(t, "GET", "/image/v2/images/"+imageID, nil, "MM-PROJECT-ID", "bb")
	if rec.Code != 200 || lastToken(s, "remote1") != "k2k-remote1-bb" {
		t.Fatalf("MM-PROJECT-ID bb: %d %s with %q", rec.Code, rec.Body, lastToken(s, "remote1"))
	}
	// A project the SP refuses is passed over.
	s = strictSetup(t, strictTokens{projects: []string{"aa", "bb"}, refuse: map[string]bool{"aa": true}})
	if rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil); rec.Code != 200 || lastToken(s, "remote1") != "k2k-remote1-bb" {
		t.Fatalf("aa refused: %d %s with %q", rec.Code, rec.Body, lastToken(s, "remote1"))
	}
}

func TestNoProjectOfTheUsersScopesIsTheOwnersRefusal(t *testing.T) {
	s := strictSetup(t, strictTokens{projects: []string{"aa", "bb"}, refuse: map[string]bool{"aa": true, "bb": true}})
	rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil, "MM-PROJECT-ID", "cc")
	wantJSONError(t, "every project refused", rec, 403)
	if !strings.Contains(rec.Body.String(), "project 0e at service provider remote1") || len(s.backends["remote1"].Received()) != 0 {
		t.Fatalf("%s; remote1 got %d calls", rec.Body, len(s.backends["remote1"].Received()))
	}
	// As many of the user's projects are tried as a broadcast would ask.
	s = strictSetup(t, strictTokens{projects: []string{"aa", "bb"}, refuse: map[string]bool{"aa": true}},
		withOption("max_projects_per_sp", "1"))
	wantJSONError(t, "past max_projects_per_sp", s.do(t, "GET", "/image/v2/images/"+imageID, nil), 403)
}

// A Cinder path names the project the token is scoped to: the mapping's when the
// user has a role there, else the user's own.
func TestAMappedVolumesPathNamesTheProjectThatScoped(t *testing.T) {
	for _, tc := range []struct {
		projects []string
		want     string
	}{{[]string{"aa", "feed"}, "feed"}, {[]string{"aa"}, "aa"}} {
		s := strictSetup(t, strictTokens{projects: tc.projects})
		s.store.Upsert(context.Background(), store.Mapping{ResourceType: "volumes", ResourceID: imageID, ResourceSP: "remote1", ProjectID: "feed"})
		s.do(t, "GET", "/volume/v3/8a1e/volumes/"+imageID, nil)
		got := s.backends["remote1"].Received()
		if len(got) != 1 || got[0].Path != "/v3/"+tc.want+"/volumes/"+imageID || got[0].Token != "k2k-remote1-"+tc.want {
			t.Fatalf("user in %v: remote1 got %+v", tc.projects, got)
		}
	}
}

// Nova downloads the image it boots from with the user's token: a public image
// another project owns at a remote cloud streams through mixmatch, read in a
// project of the user's own.
func TestNovaDownloadsAnotherProjectsPublicImage(t *testing.T) {
	s := strictSetup(t, strictTokens{projects: []string{"aa"}})
	data := strings.Repeat("boot me ", 512)
	s.backends["remote1"].PutData(imageID, []byte(data))
	rec := s.do(t, "GET", "/image/v2/images/"+imageID+"/file", nil)
	if rec.Code != 200 || rec.Body.String() != data || rec.Header().Get("Content-MD5") == "" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	if got := s.backends["remote1"].Received(); len(got) != 1 || got[0].Path != "/v2/images/"+imageID+"/file" || got[0].Token != "k2k-remote1-aa" {
		t.Fatalf("remote1 got %+v", got)
	}
}
