package tuf

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/trustnames"
)

// headRecord is head.json, the commit point.
type headRecord struct {
	// Timestamp is the current timestamp.json, as served.
	Timestamp json.RawMessage `json:"timestamp"`
	// Root and Snapshot are the current versions of those roles.
	Root     int64 `json:"root"`
	Snapshot int64 `json:"snapshot"`
	// Changed lists the role versions this commit made, with the hash of their
	// pending file, until they are moved to meta/.
	Changed []pendingRef `json:"changed"`
	// Held names the held version of each delegating role that has one
	// (held.go): accepted, not published, in no snapshot.
	Held []pendingRef `json:"held,omitempty"`
}

// pendingRef names a pending file.
type pendingRef struct {
	Role    string `json:"role"`
	Version int64  `json:"version"`
	SHA256  string `json:"sha256"`
}

type (
	rootMD      = metadata.Metadata[metadata.RootType]
	targetsMD   = metadata.Metadata[metadata.TargetsType]
	snapshotMD  = metadata.Metadata[metadata.SnapshotType]
	timestampMD = metadata.Metadata[metadata.TimestampType]
)

// state is one committed state of the repository, never changed once published
// (a commit builds the next one as a fork).
type state struct {
	head    headRecord
	headVer string // the driver's version of head.json, for put-if-match

	root         *rootMD
	rootRaw      []byte
	targets      *targetsMD
	snapshot     *snapshotMD
	snapshotRaw  []byte
	timestamp    *timestampMD
	timestampRaw []byte

	// orgs holds the current org roles by role name.
	orgs map[string]*targetsMD
	// repos maps a repository role name to its repository, from the org roles'
	// current delegations.
	repos map[string]string
	// held holds, by role name, the held version of targets or an org role
	// (held.go), named by head.Held.
	held map[string]*heldVersion
}

// version is role's current version, 0 if it has none.
func (s *state) version(role string) int64 {
	if s == nil {
		return 0
	}
	switch role {
	case trustnames.RoleRoot:
		return s.root.Signed.Version
	case trustnames.RoleSnapshot:
		return s.snapshot.Signed.Version
	case trustnames.RoleTimestamp:
		return s.timestamp.Signed.Version
	}
	if m := s.snapshot.Signed.Meta[role+".json"]; m != nil {
		return m.Version
	}
	return 0
}

// fork returns a copy whose maps a commit may change.
func (s *state) fork() *state {
	n := *s
	n.orgs = maps.Clone(s.orgs)
	n.repos = maps.Clone(s.repos)
	n.held = maps.Clone(s.held)
	snap := *s.snapshot
	snap.Signed.Meta = maps.Clone(s.snapshot.Signed.Meta)
	n.snapshot = &snap
	return &n
}

// indexOrg records the repositories org role md delegates, replacing what its
// previous version delegated.
func (s *state) indexOrg(role string, prev, md *targetsMD) {
	if prev != nil && prev.Signed.Delegations != nil {
		for _, d := range prev.Signed.Delegations.Roles {
			delete(s.repos, d.Name)
		}
	}
	s.orgs[role] = md
	if md.Signed.Delegations != nil {
		for _, d := range md.Signed.Delegations.Roles {
			if repo, ok := trustnames.RepoOfPaths(d.Paths); ok {
				s.repos[d.Name] = repo
			}
		}
	}
}

func sha256Hex(b []byte) string { return hex.EncodeToString(sha256Sum(b)) }

func sha256Sum(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

// store reads and writes the repository's objects on the driver.
type store struct {
	d driver.Driver
}

// readCommitted returns committed version n of role under head h. A version
// the head made (h.Changed) is read from its pending file first, the one named
// by its hash, and from meta/ only when it was moved there meanwhile: meta/ may
// hold other bytes for that version number until the move, such as those of a
// version a restore discarded (a backup copies meta/ files committed after the
// head it restores). Any other version is read from meta/.
func (st store) readCommitted(ctx context.Context, h *headRecord, role string, n int64) ([]byte, error) {
	if h != nil {
		for _, c := range h.Changed {
			if c.Role == role && c.Version == n {
				data, _, err := st.d.GetContent(ctx, pendingPath(role, n, c.SHA256))
				if !errors.Is(err, driver.ErrNotFound) {
					return data, err
				}
				break // moved meanwhile
			}
		}
	}
	data, _, err := st.d.GetContent(ctx, metaPath(role, n))
	return data, err
}

// finishMoves moves the pending files of head h to meta/. It is idempotent: a file
// already moved is skipped.
func (st store) finishMoves(ctx context.Context, h *headRecord) error {
	for _, c := range h.Changed {
		err := st.d.Move(ctx, pendingPath(c.Role, c.Version, c.SHA256), metaPath(c.Role, c.Version))
		if errors.Is(err, driver.ErrNotFound) {
			if _, serr := st.d.Stat(ctx, metaPath(c.Role, c.Version)); serr == nil {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("moving %s version %d to meta/: %w", c.Role, c.Version, err)
		}
	}
	return nil
}

// load reads the committed state named by head.json; nil, nil when the repository
// is not initialised. prev, when not nil, is reused for org roles whose version
// did not change.
func (st store) load(ctx context.Context, prev *state) (*state, error) {
	data, ver, err := st.d.GetContent(ctx, headPath)
	if errors.Is(err, driver.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.headVer == ver {
		return prev, nil
	}
	s := &state{headVer: ver, orgs: map[string]*targetsMD{}, repos: map[string]string{}, held: map[string]*heldVersion{}}
	if err := json.Unmarshal(data, &s.head); err != nil {
		return nil, fmt.Errorf("%s: %w", headPath, err)
	}
	h := &s.head
	if s.timestamp, err = (&timestampMD{}).FromBytes(h.Timestamp); err != nil {
		return nil, fmt.Errorf("the timestamp in %s: %w", headPath, err)
	}
	s.timestampRaw = h.Timestamp
	if s.rootRaw, err = st.readCommitted(ctx, h, trustnames.RoleRoot, h.Root); err != nil {
		return nil, fmt.Errorf("root version %d: %w", h.Root, err)
	}
	if s.root, err = (&rootMD{}).FromBytes(s.rootRaw); err != nil {
		return nil, fmt.Errorf("root version %d: %w", h.Root, err)
	}
	if s.snapshotRaw, err = st.readCommitted(ctx, h, trustnames.RoleSnapshot, h.Snapshot); err != nil {
		return nil, fmt.Errorf("snapshot version %d: %w", h.Snapshot, err)
	}
	if s.snapshot, err = (&snapshotMD{}).FromBytes(s.snapshotRaw); err != nil {
		return nil, fmt.Errorf("snapshot version %d: %w", h.Snapshot, err)
	}
	tv := s.version(trustnames.RoleTargets)
	raw, err := st.readCommitted(ctx, h, trustnames.RoleTargets, tv)
	if err != nil {
		return nil, fmt.Errorf("targets version %d: %w", tv, err)
	}
	if s.targets, err = (&targetsMD{}).FromBytes(raw); err != nil {
		return nil, fmt.Errorf("targets version %d: %w", tv, err)
	}
	for name, m := range s.snapshot.Signed.Meta {
		role := strings.TrimSuffix(name, ".json")
		if _, ok := trustnames.OrgOfRole(role); !ok {
			continue
		}
		if prev != nil && prev.version(role) == m.Version && prev.orgs[role] != nil {
			s.indexOrg(role, nil, prev.orgs[role])
			continue
		}
		raw, err := st.readCommitted(ctx, h, role, m.Version)
		if err != nil {
			return nil, fmt.Errorf("%s version %d: %w", role, m.Version, err)
		}
		md, err := (&targetsMD{}).FromBytes(raw)
		if err != nil {
			return nil, fmt.Errorf("%s version %d: %w", role, m.Version, err)
		}
		s.indexOrg(role, nil, md)
	}
	for _, ref := range h.Held {
		if prev != nil && prev.held[ref.Role] != nil && prev.held[ref.Role].ref == ref {
			s.held[ref.Role] = prev.held[ref.Role]
			continue
		}
		raw, _, err := st.d.GetContent(ctx, heldPath(ref.Role, ref.Version, ref.SHA256))
		if err != nil {
			return nil, fmt.Errorf("the held %s version %d: %w", ref.Role, ref.Version, err)
		}
		md, err := (&targetsMD{}).FromBytes(raw)
		if err != nil {
			return nil, fmt.Errorf("the held %s version %d: %w", ref.Role, ref.Version, err)
		}
		s.held[ref.Role] = &heldVersion{md: md, raw: raw, ref: ref}
	}
	return s, nil
}
