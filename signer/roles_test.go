package signer_test

import (
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/signer"
)

func TestRoleNames(t *testing.T) {
	for _, tc := range []struct{ why, got, want string }{
		{"an org role is org- and the org", signer.RoleNameForOrg("acme"), "org-acme"},
		{"a repo role is repo- and 32 hex of sha256 of the name", signer.RoleNameForRepo("acme/app"), "repo-5f89da0438fa1b1767532b58bd38cda2"},
		{"a tag target uses a colon", signer.TargetPath("acme/app", "v1"), "acme/app:v1"},
		{"a digest target uses an at sign", signer.TargetPath("acme/app", "sha256:abcd"), "acme/app@sha256:abcd"},
		{"a digest given with its at sign is not doubled", signer.TargetPath("acme/app", "@sha256:abcd"), "acme/app@sha256:abcd"},
		{"a tag given with its colon is not doubled", signer.TargetPath("acme/app", ":v1"), "acme/app:v1"},
	} {
		t.Run(tc.why, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

// The patterns are checked through go-tuf's own matcher, the one the updater uses.
func TestDelegationPaths(t *testing.T) {
	org := &metadata.DelegatedRole{Name: signer.RoleNameForOrg("acme"), Paths: signer.OrgPaths("acme")}
	repo := &metadata.DelegatedRole{Name: signer.RoleNameForRepo("acme/team/app"), Paths: signer.RepoPaths("acme/team/app")}
	for _, tc := range []struct {
		why  string
		role *metadata.DelegatedRole
		path string
		want bool
	}{
		{"an org covers its 2-component repositories", org, "acme/app:v1", true},
		{"an org covers its 3-component repositories", org, "acme/team/app:v1", true},
		{"an org covers its 4-component repositories", org, "acme/a/b/c@sha256:00", true},
		{"an org does not cover 5-component repositories", org, "acme/a/b/c/d:v1", false},
		{"acme does not cover acme-corp", org, "acme-corp/app:v1", false},
		{"acme does not cover a bare acme target", org, "acme:v1", false},
		{"a repository covers its tags", repo, "acme/team/app:v1", true},
		{"a repository covers its digests", repo, "acme/team/app@sha256:00", true},
		{"a repository does not cover a sibling with a longer name", repo, "acme/team/app2:v1", false},
		{"a repository does not cover a repository below it", repo, "acme/team/app/x:v1", false},
		{"a repository does not cover its parent", repo, "acme/team:v1", false},
	} {
		t.Run(tc.why, func(t *testing.T) {
			got, err := tc.role.IsDelegatedPath(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("%s covers %q = %v, want %v", tc.role.Name, tc.path, got, tc.want)
			}
		})
	}
}
