package signed

import (
	"context"
	"encoding/hex"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

// Delegation is what the verified trust graph says of one repository now:
// the publisher keys delegated for it, by TUF key ID, and the digests its
// targets name.
type Delegation struct {
	Repo string
	// KeyIDs are the TUF key IDs the repository's org role delegates its role
	// to (sorted); empty when the repository is not delegated.
	KeyIDs []string
	// Digests are the manifest digests of the repository's current targets
	// (sorted, each once).
	Digests []digest.Digest
}

// Delegation refreshes the trust graph from the pinned root and returns repo's
// delegation. A repository no org delegates has no keys (not an error: a
// caller trusts nothing for it).
func (c *Client) Delegation(ctx context.Context, repo string) (*Delegation, error) {
	vc, err := c.verifier(ctx)
	if err != nil {
		return nil, err
	}
	// A walk towards one of repo's paths verifies its org role and its own.
	st, err := vc.Walk(ctx, trustnames.TargetPath(repo, "latest"))
	if err != nil {
		return nil, err
	}
	return delegationOf(st, repo), nil
}

func delegationOf(st *verify.State, repo string) *Delegation {
	out := &Delegation{Repo: repo}
	if keys, ok := st.RepoKeys(repo); ok {
		out.KeyIDs = keys.IDs()
	}
	if len(out.KeyIDs) == 0 {
		return out
	}
	if md := st.Roles[trustnames.RoleForRepo(repo)]; md != nil {
		seen := map[digest.Digest]bool{}
		for path, tf := range md.Signed.Targets {
			if r, _, _, ok := trustnames.SplitTarget(path); !ok || r != repo {
				continue
			}
			h, ok := tf.Hashes[digest.SHA256.String()]
			if !ok || len(h) != 32 {
				continue
			}
			if d := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h)); !seen[d] {
				seen[d] = true
				out.Digests = append(out.Digests, d)
			}
		}
		slices.Sort(out.Digests)
	}
	return out
}

// Repository opens repo of the client's registry for reading, with the
// credentials clients would use for the host.
func (c *Client) Repository(ctx context.Context, repo string) (*oci.Repository, error) {
	return c.repository(ctx, repo)
}
