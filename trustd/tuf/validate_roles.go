package tuf

import (
	"fmt"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/trustnames"
)

// The rules of each kind of role, which validate applies after the version and
// expiry checks every role shares.

// validateRootVersion checks a new root: its shape, and its signatures by its own
// keys and, when there is one, the current root's.
func (s *state) validateRootVersion(u *upload, online map[string]string) (sigResult, error) {
	if err := validateRoot(u.root, online); err != nil {
		return sigResult{}, err
	}
	ds := []*delegation{rootDelegation(u.root, trustnames.RoleRoot)}
	if s != nil {
		ds = append(ds, rootDelegation(s.root, trustnames.RoleRoot))
		ds[1].by = fmt.Sprintf("root version %d", s.root.Signed.Version)
	}
	ds[0].by = fmt.Sprintf("root version %d (itself)", u.root.Signed.Version)
	return checkSignatures(u.role, u.root, ds...)
}

// validateTargetsVersion checks a new targets version: it lists no targets and
// delegates only org roles, each with exactly its namespace's paths.
func (s *state) validateTargetsVersion(u *upload) (sigResult, error) {
	if len(u.targets.Signed.Targets) > 0 {
		return sigResult{}, errInvalid("targets lists %d target(s): the top-level targets role only delegates organisations; sign targets in a repository's role", len(u.targets.Signed.Targets))
	}
	if err := validateDelegations(u.role, u.targets, func(d metadata.DelegatedRole) (string, error) {
		org, ok := trustnames.OrgOfRole(d.Name)
		if !ok || validateOrg(org) != nil {
			return "", fmt.Errorf("targets may delegate only to org-<org> roles, not %q", d.Name)
		}
		if !slices.Equal(d.Paths, trustnames.OrgPaths(org)) {
			return "", fmt.Errorf("the delegation to %s must have exactly the paths %q, not %q", d.Name, trustnames.OrgPaths(org), d.Paths)
		}
		return org, nil
	}); err != nil {
		return sigResult{}, err
	}
	res, err := checkSignatures(u.role, u.targets, rootDelegation(s.root, trustnames.RoleTargets))
	res.unpublished = s.unpublished(u.targets)
	return res, err
}

// validateOrgVersion checks a new org version against the targets delegation
// (the published one, or a held one): targets inside its namespace, and
// delegations to repository roles named and pathed as trustnames says.
func (s *state) validateOrgVersion(u *upload) (sigResult, error) {
	org, _ := trustnames.OrgOfRole(u.role)
	d := targetsDelegation("targets", s.targets, u.role)
	heldParent := ""
	if d == nil && s.held[trustnames.RoleTargets] != nil {
		d = targetsDelegation("the held targets version", s.held[trustnames.RoleTargets].md, u.role)
		heldParent = trustnames.RoleTargets
	}
	if d == nil {
		return sigResult{}, errNotFound("%s is not delegated by the current targets role: add the organisation's delegation to targets first (trustctl org create %s)", u.role, org)
	}
	if err := validateTargets(u.role, u.targets, org, func(repo string) error { return validateRepoIn(repo, org) }); err != nil {
		return sigResult{}, err
	}
	if err := validateDelegations(u.role, u.targets, func(d metadata.DelegatedRole) (string, error) {
		if len(d.Paths) != 2 {
			return "", fmt.Errorf("the delegation %s must have exactly the paths [\"<repo>:*\", \"<repo>@*\"], not %q", d.Name, d.Paths)
		}
		repo, ok := strings.CutSuffix(d.Paths[0], ":*")
		if !ok {
			return "", fmt.Errorf("the delegation %s: path %q is not \"<repo>:*\"", d.Name, d.Paths[0])
		}
		if err := validateRepoIn(repo, org); err != nil {
			return "", fmt.Errorf("the delegation %s leaves %s's namespace: %v", d.Name, u.role, err)
		}
		if !slices.Equal(d.Paths, trustnames.RepoPaths(repo)) {
			return "", fmt.Errorf("the delegation %s must have exactly the paths %q, not %q", d.Name, trustnames.RepoPaths(repo), d.Paths)
		}
		if want := trustnames.RoleForRepo(repo); d.Name != want {
			return "", fmt.Errorf("the delegation of %s must be named %s, not %s", repo, want, d.Name)
		}
		return repo, nil
	}); err != nil {
		return sigResult{}, err
	}
	res, err := checkSignatures(u.role, u.targets, d)
	res.heldParent, res.unpublished = heldParent, s.unpublished(u.targets)
	return res, err
}

// validateRepoVersion checks a new repository version against its org's
// delegation (published or held): targets of that repository only, and no
// further delegation.
func (s *state) validateRepoVersion(u *upload) (sigResult, error) {
	repo, ok := s.repos[u.role]
	heldParent := ""
	if !ok {
		if heldParent, repo = s.heldDelegator(u.role); heldParent == "" {
			return sigResult{}, errNotFound("%s is not delegated by any organisation's current role: the organisation delegates the repository first (trustctl org delegate ORG/REPO)", u.role)
		}
	}
	orgRole := trustnames.RoleForOrg(trustnames.OrgOfRepo(repo))
	d := targetsDelegation(orgRole, s.orgs[orgRole], u.role)
	if heldParent != "" {
		d = targetsDelegation("the held "+orgRole+" version", s.held[orgRole].md, u.role)
	}
	orgDelegated := targetsDelegation("targets", s.targets, orgRole) != nil ||
		heldParent != "" && s.held[trustnames.RoleTargets] != nil && targetsDelegation("targets", s.held[trustnames.RoleTargets].md, orgRole) != nil
	if d == nil || !orgDelegated {
		return sigResult{}, errNotFound("%s (%s) is not delegated by a current organisation role", u.role, repo)
	}
	if err := validateTargets(u.role, u.targets, "", func(r string) error {
		if r != repo {
			return fmt.Errorf("repository %q is outside %s's repository %q", r, u.role, repo)
		}
		return nil
	}); err != nil {
		return sigResult{}, err
	}
	if del := u.targets.Signed.Delegations; del != nil && (len(del.Roles) > 0 || del.SuccinctRoles != nil) {
		return sigResult{}, errInvalid("%s delegates further; a repository role holds targets only", u.role)
	}
	res, err := checkSignatures(u.role, u.targets, d)
	res.heldParent = heldParent
	return res, err
}
