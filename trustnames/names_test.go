package trustnames_test

import (
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/trustnames"
)

func TestRoleNames(t *testing.T) {
	for _, tc := range []struct{ why, got, want string }{
		{"an org role is org- and the org", trustnames.RoleForOrg("acme"), "org-acme"},
		{"a repo role is repo- and 32 hex of sha256 of the name", trustnames.RoleForRepo("acme/app"), "repo-5f89da0438fa1b1767532b58bd38cda2"},
		{"a tag target uses a colon", trustnames.TargetPath("acme/app", "v1"), "acme/app:v1"},
		{"a digest target uses an at sign", trustnames.TargetPath("acme/app", "sha256:abcd"), "acme/app@sha256:abcd"},
		{"a digest given with its at sign is not doubled", trustnames.TargetPath("acme/app", "@sha256:abcd"), "acme/app@sha256:abcd"},
		{"a tag given with its colon is not doubled", trustnames.TargetPath("acme/app", ":v1"), "acme/app:v1"},
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
	org := &metadata.DelegatedRole{Name: trustnames.RoleForOrg("acme"), Paths: trustnames.OrgPaths("acme")}
	repo := &metadata.DelegatedRole{Name: trustnames.RoleForRepo("acme/team/app"), Paths: trustnames.RepoPaths("acme/team/app")}
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

// The signer and trustd once had a TargetPath each, and only the signer's dropped
// a separator given with the tag or digest: trustd's made "acme/app@:v1" of ":v1"
// (a digest target of a tag) and "acme/app@@sha256:..." of "@sha256:...". The
// one TargetPath drops it, and trustd's parser reads back what the signer wrote.
func TestTargetPathReadsBack(t *testing.T) {
	const d = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	for _, tc := range []struct {
		in, path, ref string
		isDigest      bool
	}{
		{"v1", "acme/app:v1", "v1", false},
		{":v1", "acme/app:v1", "v1", false},
		{"@v1", "acme/app:v1", "v1", false},
		{d, "acme/app@" + d, d, true},
		{"@" + d, "acme/app@" + d, d, true},
		{":" + d, "acme/app@" + d, d, true},
	} {
		path := trustnames.TargetPath("acme/app", tc.in)
		if path != tc.path {
			t.Errorf("TargetPath(acme/app, %q) = %q, want %q", tc.in, path, tc.path)
		}
		repo, ref, isDigest, ok := trustnames.SplitTarget(path)
		if !ok || repo != "acme/app" || ref != tc.ref || isDigest != tc.isDigest {
			t.Errorf("SplitTarget(%q) = %q, %q, digest %v, ok %v; want acme/app, %q, digest %v", path, repo, ref, isDigest, ok, tc.ref, tc.isDigest)
		}
	}
}

func TestSplitTargetRefusesWhatIsNoTarget(t *testing.T) {
	for _, p := range []string{"", "acme/app", ":v1", "acme:5000/app"} {
		if repo, ref, _, ok := trustnames.SplitTarget(p); ok {
			t.Errorf("SplitTarget(%q) = %q, %q: want no target", p, repo, ref)
		}
	}
}

func TestRoleNamesReadBack(t *testing.T) {
	if org, ok := trustnames.OrgOfRole(trustnames.RoleForOrg("acme-corp")); !ok || org != "acme-corp" {
		t.Errorf("OrgOfRole(RoleForOrg(acme-corp)) = %q, %v", org, ok)
	}
	if _, ok := trustnames.OrgOfRole(trustnames.RoleForRepo("acme/app")); ok {
		t.Error("a repository's role reads as an org role")
	}
	if !trustnames.IsRepoRole(trustnames.RoleForRepo("acme/team/app")) {
		t.Error("RoleForRepo makes a name IsRepoRole refuses")
	}
	for _, role := range []string{"repo-", "repo-5F89DA0438FA1B1767532B58BD38CDA2", trustnames.RoleForOrg("acme"), trustnames.RoleTargets} {
		if trustnames.IsRepoRole(role) {
			t.Errorf("IsRepoRole(%q) = true", role)
		}
	}
	if repo, ok := trustnames.RepoOfPaths(trustnames.RepoPaths("acme/team/app")); !ok || repo != "acme/team/app" {
		t.Errorf("RepoOfPaths(RepoPaths(acme/team/app)) = %q, %v", repo, ok)
	}
	if _, ok := trustnames.RepoOfPaths(nil); ok {
		t.Error("RepoOfPaths(nil) names a repository")
	}
	if got := trustnames.OrgOfRepo("acme/team/app"); got != "acme" {
		t.Errorf("OrgOfRepo(acme/team/app) = %q", got)
	}
}
