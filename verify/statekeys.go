package verify

import "github.com/signet-oss/signet/trustnames"

// RepoKeys returns the publisher keys the trust graph this walk verified
// delegates repo to: the keys its organisation's role lists for the
// repository's role, which is what a signed referrer of one of repo's images
// must be signed with. ok is false when the walk reached no such delegation
// (the repository is not delegated, or the walk went elsewhere): then no
// referrer of repo verifies.
//
// The org role is the one go-tuf verified on the way to the walked target, so
// the keys are as current and as fresh as the target itself; they are the same
// keys the registry's gate checks referrers with (Index.Lookup's Keys).
func (s *State) RepoKeys(repo string) (Keys, bool) {
	org := s.Roles[trustnames.RoleForOrg(trustnames.OrgOfRepo(repo))]
	if org == nil || org.Signed.Delegations == nil {
		return Keys{}, false
	}
	role := trustnames.RoleForRepo(repo)
	for _, d := range org.Signed.Delegations.Roles {
		if d.Name == role {
			return NewKeys(delegatedKeys(org.Signed.Delegations, d)...), true
		}
	}
	return Keys{}, false
}
