package trust

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/trustnames"
)

// TagList is a repository's tags as its verified role signs them, and the tags
// of a version staged for more signatures: what `trustctl tags` shows.
type TagList struct {
	Repository string `json:"repository"`
	// Version and Expires are those of the repository's role as published
	// (0 and "" before its first version).
	Version int64  `json:"version"`
	Expires string `json:"expires,omitempty"`
	// Keys are the keys delegated for the repository (store names, else the
	// start of their IDs), of which Threshold must sign.
	Keys      []string    `json:"keys"`
	Threshold int         `json:"threshold"`
	Tags      []TagStatus `json:"tags"`
}

// TagStatus is one tag: signed (in the published version) or staged (in a
// version still short of the threshold).
type TagStatus struct {
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	Status string `json:"status"` // "signed" or "staged"
	// SignedBy names the delegated keys whose signatures the version carries.
	SignedBy   []string `json:"signedBy"`
	Signatures int      `json:"signatures"`
	Threshold  int      `json:"threshold"`
	Expires    string   `json:"expires"`
}

// Tags lists repo's tags from the verified trust graph, and those of a version
// trustd has staged for more signatures, with whose signatures each carries.
func (s *Session) Tags(ctx context.Context, repo string) (*TagList, error) {
	org, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	st, err := s.state(ctx, trustnames.TargetPath(repo, "latest"))
	if err != nil {
		return nil, err
	}
	role := trustnames.RoleForRepo(repo)
	d := delegation(st.Roles[trustnames.RoleForOrg(org)], role)
	if d == nil {
		return nil, fmt.Errorf("%s is not delegated to any publisher key: an owner of %s runs `trustctl org delegate %s --key KEY`", repo, org, repo)
	}
	// Keys are labelled by their names in the caller's store; a session
	// without one (the web UI's, on the server) labels them by ID.
	names := map[string]string{}
	if s.Keys != nil {
		if infos, err := s.Keys.List(ctx); err == nil {
			for _, k := range infos {
				names[k.ID] = k.Name
			}
		}
	}
	out := &TagList{Repository: repo, Threshold: d.Threshold, Tags: []TagStatus{}}
	for _, id := range d.KeyIDs {
		out.Keys = append(out.Keys, keyLabel(names, id))
	}
	signed := map[string]string{} // tag → digest, as published
	if cur := st.Roles[role]; cur != nil {
		out.Version, out.Expires = cur.Signed.Version, cur.Signed.Expires.UTC().Format(time.RFC3339)
		for _, t := range tagTargets(cur, repo, "signed", d, names) {
			signed[t.Tag] = t.Digest
			out.Tags = append(out.Tags, t)
		}
	}
	raw, err := s.Trustd.StagedMetadata(ctx, role)
	if err != nil {
		return nil, err
	}
	if raw != nil {
		staged, err := metadata.Targets().FromBytes(raw)
		if err != nil {
			return nil, fmt.Errorf("trustd's staged %s is unreadable: %w", role, err)
		}
		for _, t := range tagTargets(staged, repo, "staged", d, names) {
			if signed[t.Tag] != t.Digest {
				out.Tags = append(out.Tags, t)
			}
		}
	}
	slices.SortStableFunc(out.Tags, func(a, b TagStatus) int { return strings.Compare(a.Tag, b.Tag) })
	return out, nil
}

// tagTargets are the tag targets of md, with the delegated keys that signed it.
func tagTargets(md *metadata.Metadata[metadata.TargetsType], repo, status string, d *metadata.DelegatedRole, names map[string]string) []TagStatus {
	var by []string
	seen := map[string]bool{}
	for _, sig := range md.Signatures {
		if slices.Contains(d.KeyIDs, sig.KeyID) && !seen[sig.KeyID] {
			seen[sig.KeyID] = true
			by = append(by, keyLabel(names, sig.KeyID))
		}
	}
	slices.Sort(by)
	var out []TagStatus
	for path, tf := range md.Signed.Targets {
		r, tag, isDigest, ok := trustnames.SplitTarget(path)
		if !ok || isDigest || r != repo {
			continue
		}
		t := TagStatus{Tag: tag, Status: status, SignedBy: by, Signatures: len(by), Threshold: d.Threshold,
			Expires: md.Signed.Expires.UTC().Format(time.RFC3339)}
		if dg, ok := digestOf(tf); ok {
			t.Digest = dg.String()
		}
		out = append(out, t)
	}
	return out
}

// keyLabel is a key's name in the store, else the start of its ID.
func keyLabel(names map[string]string, id string) string {
	if n := names[id]; n != "" {
		return n
	}
	return id[:min(len(id), 16)]
}
