// Package trustnames holds the names of the trust graph (DESIGN.md §2): the
// top-level roles, the delegated roles "org-<org>" and "repo-<hash>", the path
// patterns of their delegations, and the target paths of tags and digests. The
// signer writes them, trustd validates them, the registry's index reads them
// and the CLI shows them: all from here, so they cannot drift apart. The
// grammar of organisation names and the bounds of repository depths are the
// reference package's.
//
// This package is a leaf: it imports reference and the standard library only.
package trustnames

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"

	"github.com/signet-oss/signet/reference"
)

// The top-level TUF roles.
const (
	RoleRoot      = "root"
	RoleTargets   = "targets"
	RoleSnapshot  = "snapshot"
	RoleTimestamp = "timestamp"
)

// Prefixes of the delegated roles' names.
const (
	OrgRolePrefix  = "org-"
	RepoRolePrefix = "repo-"
)

// repoRoleRegexp is the grammar of RoleForRepo's names.
var repoRoleRegexp = regexp.MustCompile(`^repo-[0-9a-f]{32}$`)

// RoleForOrg is the role the top-level targets role delegates org's namespace
// to: "org-<org>". org is an organisation name (reference.ValidateOrgName,
// checked by trustd, not here).
func RoleForOrg(org string) string { return OrgRolePrefix + org }

// OrgOfRole is the organisation of an org role's name, and whether role is
// named like one (the organisation name itself is not validated).
func OrgOfRole(role string) (org string, ok bool) {
	return strings.CutPrefix(role, OrgRolePrefix)
}

// RoleForRepo is the role an org delegates repo to: "repo-" and the first 32
// hex digits of sha256(repo), so any repository name makes a short role name
// without '/' (go-tuf would escape it in URLs).
func RoleForRepo(repo string) string {
	sum := sha256.Sum256([]byte(repo))
	return RepoRolePrefix + hex.EncodeToString(sum[:16])
}

// IsRepoRole reports whether role is named like a repository's role.
func IsRepoRole(role string) bool { return repoRoleRegexp.MatchString(role) }

// OrgPaths are the path patterns of the delegation of org's namespace: one per
// repository depth allowed (reference.MinRepoDepth to MaxRepoDepth
// components), because go-tuf's '*' never crosses a '/' and a pattern matches
// only paths with as many segments. "acme/*" does not match "acme-corp/app".
func OrgPaths(org string) []string { return reference.OrgPathPatterns(org) }

// RepoPaths are the path patterns of the delegation of repo: its tags and its
// digests.
func RepoPaths(repo string) []string { return []string{repo + ":*", repo + "@*"} }

// RepoOfPaths is the repository a repository's delegation covers, read from its
// paths (RepoPaths: "<repo>:*" first); ok is false if there are none. The paths
// are not checked to be RepoPaths: trustd refuses any other delegation.
func RepoOfPaths(paths []string) (repo string, ok bool) {
	if len(paths) == 0 {
		return "", false
	}
	repo, _, _ = strings.Cut(paths[0], ":")
	return repo, true
}

// TargetPath is the target path of a tag ("<repo>:<tag>") or a manifest digest
// ("<repo>@<digest>"): a digest always holds ':' ("sha256:..."), a tag never
// does. A leading ':' or '@' on tagOrDigest is the separator given with it and
// is dropped, never doubled: no tag or digest starts with either, so this
// changes no valid reference, and SplitTarget reads the path back.
func TargetPath(repo, tagOrDigest string) string {
	s := strings.TrimLeft(tagOrDigest, ":@")
	if strings.Contains(s, ":") {
		return repo + "@" + s
	}
	return repo + ":" + s
}

// SplitTarget splits a target path into its repository and its tag or digest;
// ok is false if p is neither "<repo>:<tag>" nor "<repo>@<digest>" in shape (the
// parts themselves are not validated). Digest targets are recognised first: a
// tag never holds '@', a repository name holds neither '@' nor ':'.
func SplitTarget(p string) (repo, ref string, isDigest, ok bool) {
	if i := strings.LastIndexByte(p, '@'); i > 0 {
		return p[:i], p[i+1:], true, true
	}
	slash := strings.LastIndexByte(p, '/')
	if i := strings.LastIndexByte(p, ':'); i > slash && i > 0 {
		return p[:i], p[i+1:], false, true
	}
	return "", "", false, false
}

// OrgOfRepo is the organisation whose namespace holds repo: its first
// component.
func OrgOfRepo(repo string) string {
	org, _, _ := strings.Cut(repo, "/")
	return org
}
