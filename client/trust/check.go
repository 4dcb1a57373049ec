package trust

import (
	"context"
	"fmt"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

// CheckPublisher checks what a signed push needs before it uploads a byte:
// that keyName unlocks (asking for its passphrase now rather than after the
// upload), that ref's org exists, that ref's repository is delegated, and that
// the key is one of the keys delegated for it. Sign checks the same again
// with the key this loaded, so the passphrase is asked once.
func (s *Session) CheckPublisher(ctx context.Context, ref Ref, keyName string) error {
	key, err := s.loadKey(ctx, keyName)
	if err != nil {
		return err
	}
	_, err = s.delegationFor(ctx, ref, key, keyName)
	return err
}

// delegationFor refreshes the trust graph towards ref's target and checks
// that key (named keyName) is delegated for ref's repository, counting a
// delegation trustd holds until the repository's first version. Its errors
// say what is missing and who can fix it: the org, the delegation, or the key.
func (s *Session) delegationFor(ctx context.Context, ref Ref, key *signer.Key, keyName string) (*verify.State, error) {
	st, err := s.state(ctx, ref.TargetPath())
	if err != nil {
		return nil, err
	}
	org, _ := splitRepo(ref.Repo)
	orgRole, role := trustnames.RoleForOrg(org), trustnames.RoleForRepo(ref.Repo)
	d := delegation(st.Roles[orgRole], role)
	if d == nil && st.Version(role) == 0 {
		// A delegation trustd holds until this repository's first version:
		// this version is the one that makes it take effect.
		held, err := s.editBase(ctx, orgRole, nil)
		if err != nil {
			return nil, err
		}
		d = delegation(held, role)
	}
	if d == nil {
		if !s.orgExists(ctx, st, org) {
			return nil, fmt.Errorf("organisation %s does not exist on %s: an admin creates it (`trustctl org create %s`), then an owner delegates %s (`trustctl org delegate %s --key KEY`)",
				org, s.Registry, org, ref.Repo, ref.Repo)
		}
		return nil, fmt.Errorf("%s is not delegated to any publisher key: an owner of %s runs `trustctl org delegate %s --key KEY`", ref.Repo, org, ref.Repo)
	}
	if !slices.Contains(d.KeyIDs, key.ID) {
		return nil, fmt.Errorf("key %s (%s) is not delegated for %s, whose keys are %s: push with one of them, or an owner of %s delegates %s to %s too (`trustctl org delegate %s --key KEY ...`, naming every key to keep)",
			keyName, short(key.ID), ref.Repo, shortAll(d.KeyIDs), org, ref.Repo, keyName, ref.Repo)
	}
	return st, nil
}

// orgExists reports whether the top-level targets role delegates org's
// namespace, published or held by trustd until the org's first version. When
// the held version cannot be read it answers true: the caller then names the
// missing delegation, which is true of a missing org too.
func (s *Session) orgExists(ctx context.Context, st *verify.State, org string) bool {
	orgRole := trustnames.RoleForOrg(org)
	if delegation(st.Roles[metadata.TARGETS], orgRole) != nil {
		return true
	}
	held, err := s.editBase(ctx, metadata.TARGETS, nil)
	return err != nil || delegation(held, orgRole) != nil
}
