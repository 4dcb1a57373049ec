package verify_test

import (
	"slices"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

func TestRepoKeysAreTheKeysTheOrgRoleDelegatesTheRepositoryTo(t *testing.T) {
	var keys []*signer.Key
	for _, name := range []string{"alice", "bob", "carol"} {
		k, err := signer.NewKey(name, "")
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	alice, bob, carol := keys[0], keys[1], keys[2]
	org := metadata.Targets(time.Now().Add(time.Hour))
	org.Signed.Delegations = &metadata.Delegations{
		Keys: map[string]*metadata.Key{alice.ID: alice.TUF, bob.ID: bob.TUF, carol.ID: carol.TUF},
		Roles: []metadata.DelegatedRole{
			{Name: trustnames.RoleForRepo("acme/app"), KeyIDs: []string{alice.ID, bob.ID}, Threshold: 1, Paths: trustnames.RepoPaths("acme/app")},
			{Name: trustnames.RoleForRepo("acme/web"), KeyIDs: []string{carol.ID}, Threshold: 1, Paths: trustnames.RepoPaths("acme/web")},
		},
	}
	st := &verify.State{Roles: map[string]*metadata.Metadata[metadata.TargetsType]{trustnames.RoleForOrg("acme"): org}}

	for _, tc := range []struct {
		name, repo string
		want       []string
	}{
		{"a repository gets its own delegation's keys", "acme/app", []string{alice.ID, bob.ID}},
		{"a sibling gets only its own", "acme/web", []string{carol.ID}},
		{"an undelegated repository of the org gets none", "acme/other", nil},
		{"a repository of an org the walk did not reach gets none", "other/app", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := st.RepoKeys(tc.repo)
			if ok != (tc.want != nil) {
				t.Fatalf("RepoKeys(%s) ok = %v, want %v", tc.repo, ok, tc.want != nil)
			}
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if ids := got.IDs(); !slices.Equal(ids, want) {
				t.Errorf("RepoKeys(%s) = %v, want %v", tc.repo, ids, want)
			}
		})
	}
}
