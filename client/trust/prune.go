package trust

import (
	"context"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/trustnames"
)

// Prune removes the target "<repo>@<digest>" from the repository's role and
// publishes the next version, signed with the named key: the explicit pruning
// of a digest that a moved tag kept pullable (DESIGN.md §2). A digest that is
// not a target is nothing to do (Outcome.Published false, no error).
func (s *Session) Prune(ctx context.Context, repo string, d digest.Digest, keyName string) (Outcome, error) {
	key, err := s.loadKey(ctx, keyName)
	if err != nil {
		return Outcome{}, err
	}
	path := trustnames.TargetPath(repo, d.String())
	st, err := s.state(ctx, path)
	if err != nil {
		return Outcome{}, err
	}
	role := trustnames.RoleForRepo(repo)
	current := st.Roles[role]
	if current == nil || current.Signed.Targets[path] == nil {
		return Outcome{Role: role, Repository: repo, Version: st.Version(role)}, nil
	}
	next, err := nextTargets(current, st.Version(role), s.delegatedExpiry())
	if err != nil {
		return Outcome{}, err
	}
	delete(next.Signed.Targets, path)
	o, err := s.publishTargets(ctx, role, next, []*signer.Key{key}, func(staged *metadata.Metadata[metadata.TargetsType]) bool {
		return staged.Signed.Targets[path] == nil && sameContent(staged, next)
	})
	o.Repository = repo
	return o, err
}
