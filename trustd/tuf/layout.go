package tuf

import (
	"strconv"
)

// The TUF repository's objects on the storage driver, in one place:
//
//	/trustd/v1/tuf/
//	├── keys/
//	│   ├── snapshot.pem                     online snapshot key, PKCS#8 PEM (put-if-absent)
//	│   └── timestamp.pem                    online timestamp key, PKCS#8 PEM (put-if-absent)
//	├── head.json                            THE commit point: the current timestamp,
//	│                                        the current root, snapshot and the roles
//	│                                        the last commit changed (put-if-match)
//	├── pending/<role>/<N>.<sha256>.json     a role version written before its commit;
//	│                                        named by content, so a killed or losing
//	│                                        publish never blocks the next one
//	├── meta/<role>/<N>.json                 every committed version of every role
//	│                                        (root, targets, snapshot, org-*, repo-*),
//	│                                        moved here from pending/ after its commit
//	├── held/<role>/<N>.<sha256>.json        a version of targets or an org role that
//	│                                        delegates a role with no metadata yet,
//	│                                        accepted but not published; the head
//	│                                        names the one held version of each role
//	└── staged/<role>/<N>.<sha256>.json      a role version collecting signatures until
//	                                         its threshold is met (sha256 of "signed"),
//	                                         or a complete first version waiting for
//	                                         the other roles its held parent delegates
//
// head.json is a file next to five directories, every other object sits at depth
// three with a name ending in .json or .pem, so no object path is a prefix of
// another.
//
// Crash safety. A publish writes pending files, then swaps head.json with
// put-if-match against the head it started from: that one conditional write is the
// commit point. Before it, nothing a reader sees has changed; after it, the head
// names every version it committed, so a commit whose pending files were not yet
// moved to meta/ is still served (from pending/, by the hash in the head) and is
// moved by the next commit or the next start. Every commit first finishes the moves
// of the head it replaces, so only the last commit's moves can ever be outstanding.
// Two replicas committing at once both put-if-match the same head: one wins, the
// other reloads and validates its batch again against the winner's state.
const (
	rootDir          = "/trustd/v1/tuf"
	snapshotKeyPath  = rootDir + "/keys/snapshot.pem"
	timestampKeyPath = rootDir + "/keys/timestamp.pem"
	headPath         = rootDir + "/head.json"
	pendingDir       = rootDir + "/pending"
	metaDir          = rootDir + "/meta"
	stagedDir        = rootDir + "/staged"
	heldDir          = rootDir + "/held"
)

// pendingPath is where version n of role with content hash sum waits for its commit.
func pendingPath(role string, n int64, sum string) string {
	return pendingDir + "/" + role + "/" + strconv.FormatInt(n, 10) + "." + sum + ".json"
}

// metaPath is where committed version n of role lives.
func metaPath(role string, n int64) string {
	return metaDir + "/" + role + "/" + strconv.FormatInt(n, 10) + ".json"
}

// stagedRoleDir holds the staged versions of role.
func stagedRoleDir(role string) string { return stagedDir + "/" + role }

// stagedPath is where version n of role, whose signed part hashes to sum, collects
// signatures.
func stagedPath(role string, n int64, sum string) string {
	return stagedRoleDir(role) + "/" + strconv.FormatInt(n, 10) + "." + sum + ".json"
}

// heldPath is where version n of role, held until the roles it newly delegates
// have their first versions, is kept; sum is the sha256 of the whole file.
func heldPath(role string, n int64, sum string) string {
	return heldDir + "/" + role + "/" + strconv.FormatInt(n, 10) + "." + sum + ".json"
}
