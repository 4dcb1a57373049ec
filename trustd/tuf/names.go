package tuf

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/signet-oss/signet/reference"
)

// Role names and the path patterns of delegations (DESIGN.md §2): the top-level
// targets role delegates "org-<org>" with OrgPaths, an org role delegates
// "repo-<first 32 hex of sha256(repository)>" with RepoPaths. No other delegated
// role name is accepted.

// Top-level role names.
const (
	RoleRoot      = "root"
	RoleTargets   = "targets"
	RoleSnapshot  = "snapshot"
	RoleTimestamp = "timestamp"
)

// The grammar of org names and the depths of repository names are the reference
// package's (ValidateOrgName, ValidateEnforcedName), shared with the registry.
const (
	orgPrefix  = "org-"
	repoPrefix = "repo-"
)

var repoRoleRegexp = regexp.MustCompile(`^repo-[0-9a-f]{32}$`)

// RoleForOrg is the role an org's namespace is delegated to.
func RoleForOrg(org string) string { return orgPrefix + org }

// RoleForRepo is the role a repository is delegated to.
func RoleForRepo(repo string) string {
	sum := sha256.Sum256([]byte(repo))
	return repoPrefix + hex.EncodeToString(sum[:16])
}

// OrgPaths are the exact paths of the delegation of org's namespace: one pattern per
// depth, since go-tuf's "*" never crosses "/".
func OrgPaths(org string) []string { return reference.OrgPathPatterns(org) }

// RepoPaths are the exact paths of the delegation of a repository.
func RepoPaths(repo string) []string { return []string{repo + ":*", repo + "@*"} }

// TargetPath is the target of a tag ("v1") or a digest ("sha256:...") in repo.
func TargetPath(repo, tagOrDigest string) string {
	if strings.Contains(tagOrDigest, ":") {
		return repo + "@" + tagOrDigest
	}
	return repo + ":" + tagOrDigest
}

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
	case RoleRoot:
		return kindRoot, nil
	case RoleTargets:
		return kindTargets, nil
	case RoleSnapshot, RoleTimestamp:
		return kindOnline, nil
	}
	if org, ok := strings.CutPrefix(role, orgPrefix); ok {
		if err := validateOrg(org); err != nil {
			return kindInvalid, fmt.Errorf("role %q: %w", role, err)
		}
		return kindOrg, nil
	}
	if repoRoleRegexp.MatchString(role) {
		return kindRepo, nil
	}
	return kindInvalid, fmt.Errorf("role %q is not a role name of this repository: root, targets, org-<org> or repo-<32 hex of sha256(repository)>", role)
}

func validateOrg(org string) error { return reference.ValidateOrgName(org) }

// orgOfRole is the org of an org role name.
func orgOfRole(role string) string { return strings.TrimPrefix(role, orgPrefix) }

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

// splitTarget splits a target path into its repository and its tag or digest.
// Digest targets ("repo@sha256:...") are recognised first: a tag never holds '@'.
func splitTarget(p string) (repo, ref string, isDigest bool, ok bool) {
	if i := strings.LastIndexByte(p, '@'); i > 0 {
		return p[:i], p[i+1:], true, true
	}
	slash := strings.LastIndexByte(p, '/')
	if i := strings.LastIndexByte(p, ':'); i > slash && i > 0 {
		return p[:i], p[i+1:], false, true
	}
	return "", "", false, false
}

// orgOfRepo is a repository name's first component.
func orgOfRepo(repo string) string {
	org, _, _ := strings.Cut(repo, "/")
	return org
}
