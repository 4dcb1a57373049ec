package tuf

import (
	"fmt"
	"strings"

	"github.com/signet-oss/signet/reference"
	"github.com/signet-oss/signet/trustnames"
)

// Role names and the path patterns of delegations are the trustnames package's
// (DESIGN.md §2): the top-level targets role delegates "org-<org>" with
// trustnames.OrgPaths, an org role delegates "repo-<first 32 hex of
// sha256(repository)>" with trustnames.RepoPaths. No other delegated role name is
// accepted. The grammar of org names and the depths of repository names are the
// reference package's (ValidateOrgName, ValidateEnforcedName), shared with the
// registry.

// roleKind classifies a role name.
type roleKind int

const (
	kindInvalid roleKind = iota
	kindRoot
	kindTargets
	kindOnline // snapshot, timestamp: signed by trustd only
	kindOrg
	kindRepo
)

// classify checks a role name's grammar and says what kind of role it is.
func classify(role string) (roleKind, error) {
	switch role {
	case trustnames.RoleRoot:
		return kindRoot, nil
	case trustnames.RoleTargets:
		return kindTargets, nil
	case trustnames.RoleSnapshot, trustnames.RoleTimestamp:
		return kindOnline, nil
	}
	if org, ok := trustnames.OrgOfRole(role); ok {
		if err := validateOrg(org); err != nil {
			return kindInvalid, fmt.Errorf("role %q: %w", role, err)
		}
		return kindOrg, nil
	}
	if trustnames.IsRepoRole(role) {
		return kindRepo, nil
	}
	return kindInvalid, fmt.Errorf("role %q is not a role name of this repository: root, targets, org-<org> or repo-<32 hex of sha256(repository)>", role)
}

func validateOrg(org string) error { return reference.ValidateOrgName(org) }

// validateRepoIn checks that repo is a repository name an org can delegate (2 to 4
// components) inside org's namespace.
func validateRepoIn(repo, org string) error {
	if err := reference.ValidateEnforcedName(repo); err != nil {
		return err
	}
	if !strings.HasPrefix(repo, org+"/") {
		return fmt.Errorf("repository %q is outside organisation %q's namespace %s/", repo, org, org)
	}
	return nil
}
