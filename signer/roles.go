package signer

import (
	"crypto/sha256"
	"encoding/hex"
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

// RoleNameForOrg is the role targets delegates org's namespace to: "org-<org>". org
// is one lower-case path component (validated by trustd, not here).
func RoleNameForOrg(org string) string { return OrgRolePrefix + org }

// RoleNameForRepo is the role an org delegates repo to: "repo-" and the first 32 hex
// digits of sha256(repo), so any repository name makes a short role name without '/'
// (go-tuf would escape it in URLs).
func RoleNameForRepo(repo string) string {
	sum := sha256.Sum256([]byte(repo))
	return RepoRolePrefix + hex.EncodeToString(sum[:])[:32]
}

// OrgPaths are the path patterns of org's delegation: one per repository depth
// allowed (reference.MinRepoDepth to MaxRepoDepth components), because go-tuf's '*' never crosses a '/' and a
// pattern matches only paths with as many segments. "acme/*" does not match
// "acme-corp/app".
func OrgPaths(org string) []string { return reference.OrgPathPatterns(org) }

// RepoPaths are the path patterns of repo's delegation: its tags and its digests.
func RepoPaths(repo string) []string {
	return []string{repo + ":*", repo + "@*"}
}

// TargetPath is the target path of a tag ("<repo>:<tag>") or a manifest digest
// ("<repo>@<digest>"): a digest always holds ':' ("sha256:..."), a tag never does.
// A leading ':' or '@' on tagOrDigest is accepted and normalised.
func TargetPath(repo, tagOrDigest string) string {
	s := strings.TrimLeft(tagOrDigest, ":@")
	if strings.Contains(s, ":") {
		return repo + "@" + s
	}
	return repo + ":" + s
}
