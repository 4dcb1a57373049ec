package trust

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/trustnames"
)

// RotateOrgKey replaces the keys of org's role by the named keys (generated if the
// store lacks them). When the old keys are at hand, the org role is first re-signed
// by old and new keys, then targets switches the delegation: clients never see an
// org role that the current delegation does not vouch for. Without them (a lost or
// stolen key), targets switches first and the org role follows.
func (s *Session) RotateOrgKey(ctx context.Context, org string, keyNames []string, threshold int) (*OrgResult, error) {
	if len(keyNames) == 0 {
		return nil, fmt.Errorf("rotating the key of %s: name the new key with --key", org)
	}
	if threshold < 1 || threshold > len(keyNames) {
		return nil, fmt.Errorf("--threshold %d: must be between 1 and the number of keys (%d)", threshold, len(keyNames))
	}
	st, d, err := s.orgRoleState(ctx, probe(org))
	if err != nil {
		return nil, err
	}
	role := trustnames.RoleForOrg(org)
	cur := st.Roles[role]
	if d == nil || cur == nil {
		return nil, fmt.Errorf("organisation %s has no trusted org role: run `trustctl org create %s` first", org, org)
	}
	res := &OrgResult{Org: org, Key: keyNames[0], Published: []Outcome{}}
	newKeys := map[string]*metadata.Key{}
	var newIDs []string
	var signers []*signer.Key
	for _, name := range keyNames {
		_, generated, err := s.ensureKey(ctx, name)
		if err != nil {
			return nil, err
		}
		res.Generated = res.Generated || generated
		k, err := s.loadKey(ctx, name)
		if err != nil {
			return nil, err
		}
		newKeys[k.ID], newIDs, signers = k.TUF, append(newIDs, k.ID), append(signers, k)
	}
	if sameDelegation(d, newIDs, threshold) {
		return res, nil
	}
	oldKeys, err := s.keysByID(ctx, d.KeyIDs)
	if err != nil {
		return nil, err
	}
	held, err := s.editBase(ctx, role, nil)
	if err != nil {
		return nil, err
	}
	version := st.Version(role)
	resignOrg := func(withOld bool) error {
		next, err := nextTargets(cur, version, s.delegatedExpiry())
		if err != nil {
			return err
		}
		keys := slices.Clone(signers)
		if withOld {
			keys = append(keys, oldKeys...)
		}
		o, err := s.publishTargets(ctx, role, next, keys, nil)
		if err != nil {
			return err
		}
		version = o.Version
		res.Published = append(res.Published, o)
		return nil
	}
	oldSuffice := len(oldKeys) >= d.Threshold
	if oldSuffice {
		if err := resignOrg(true); err != nil {
			return nil, err
		}
	} else {
		s.printf("The old keys of %s are not in %s: switching the delegation first; %s is untrusted until it is re-signed, a moment later.\n", role, KeyDir(s.Home), role)
	}
	targets, err := nextTargets(st.Roles[metadata.TARGETS], st.Version(metadata.TARGETS), s.now())
	if err != nil {
		return nil, err
	}
	targets.Signed.Expires = keepLifetime(st.Roles[metadata.TARGETS], s.now())
	nd := *d
	nd.KeyIDs, nd.Threshold = newIDs, threshold
	setDelegation(targets, nd, newKeys)
	tkeys, err := s.signingKeys(ctx, metadata.TARGETS, st.Root.Signed.Roles[metadata.TARGETS])
	if err != nil {
		return nil, err
	}
	o, err := s.publishTargets(ctx, metadata.TARGETS, targets, tkeys, func(staged *metadata.Metadata[metadata.TargetsType]) bool {
		return sameContent(staged, targets)
	})
	if err != nil {
		return nil, err
	}
	res.Published = append(res.Published, o)
	if !oldSuffice && o.Published {
		if err := resignOrg(false); err != nil {
			return nil, err
		}
	}
	// The re-signed org role is built on the published version, so that it
	// takes effect at once (a held version would leave the org untrusted once
	// targets switched); that discarded a held version. Its delegations, which
	// wait for their repositories' first versions, are held again, signed by
	// the new keys.
	if held != nil && o.Published {
		next, err := nextTargets(held, version, s.delegatedExpiry())
		if err != nil {
			return nil, err
		}
		ho, err := s.publishTargets(ctx, role, next, signers, nil)
		if err != nil {
			return nil, fmt.Errorf("the org role is rotated, but holding its pending delegations again failed (run trustctl org delegate for them): %w", err)
		}
		res.Published = append(res.Published, ho)
	}
	return res, nil
}

// RootRotation changes the keys of a top-level role (root or targets) in a new
// root version.
type RootRotation struct {
	// Role is "root" or "targets".
	Role string
	// Add and Remove name keys (store names or PEM files for Add).
	Add, Remove []string
	// Threshold is the role's new threshold; 0 keeps it.
	Threshold int
}

// RotateRoot publishes root v+1 with the role's keys changed, signed by the
// old root keys and the new ones, each threshold met (trustd checks both). For
// the targets role, targets is first re-signed by old and new targets keys, so
// that it verifies under both roots.
func (s *Session) RotateRoot(ctx context.Context, r RootRotation) ([]Outcome, error) {
	if r.Role != metadata.ROOT && r.Role != metadata.TARGETS {
		return nil, fmt.Errorf("role %q: rotate the keys of root or targets (snapshot and timestamp keys are trustd's)", r.Role)
	}
	st, err := s.state(ctx, probe("-"))
	if err != nil {
		return nil, err
	}
	b, err := st.Root.ToBytes(false)
	if err != nil {
		return nil, err
	}
	next, err := metadata.Root().FromBytes(b)
	if err != nil {
		return nil, err
	}
	oldIDs := slices.Clone(next.Signed.Roles[r.Role].KeyIDs)
	oldThreshold := next.Signed.Roles[r.Role].Threshold
	for _, name := range r.Add {
		k, _, err := s.publicKey(ctx, name)
		if err != nil {
			return nil, err
		}
		if err := next.Signed.AddKey(k, r.Role); err != nil {
			return nil, err
		}
	}
	for _, name := range r.Remove {
		_, id, err := s.publicKey(ctx, name)
		if err != nil {
			return nil, err
		}
		if err := next.Signed.RevokeKey(id, r.Role); err != nil {
			return nil, fmt.Errorf("--remove-key %s: %w", name, err)
		}
	}
	if r.Threshold > 0 {
		next.Signed.Roles[r.Role].Threshold = r.Threshold
	}
	newIDs := next.Signed.Roles[r.Role].KeyIDs
	if n, k := len(newIDs), next.Signed.Roles[r.Role].Threshold; k < 1 || k > n {
		return nil, fmt.Errorf("%s would have %d keys and threshold %d: the threshold must be between 1 and the number of keys", r.Role, n, k)
	}
	next.Signed.Version++
	if next.Signed.Expires.Before(s.now().Add(30 * 24 * time.Hour)) {
		next.Signed.Expires = s.now().Add(DefaultRootExpiry)
	}
	var out []Outcome
	if r.Role == metadata.TARGETS {
		keys, err := s.keysByID(ctx, append(slices.Clone(oldIDs), newIDs...))
		if err != nil {
			return nil, err
		}
		if n := countIn(keys, newIDs); n < next.Signed.Roles[r.Role].Threshold {
			return nil, fmt.Errorf("only %d of the new targets keys are in %s, the threshold is %d", n, KeyDir(s.Home), next.Signed.Roles[r.Role].Threshold)
		}
		if n := countIn(keys, oldIDs); n < oldThreshold {
			return nil, fmt.Errorf("only %d of the current targets keys are in %s, the threshold is %d", n, KeyDir(s.Home), oldThreshold)
		}
		targets, err := nextTargets(st.Roles[metadata.TARGETS], st.Version(metadata.TARGETS), s.now())
		if err != nil {
			return nil, err
		}
		targets.Signed.Expires = keepLifetime(st.Roles[metadata.TARGETS], s.now())
		o, err := s.publishTargets(ctx, metadata.TARGETS, targets, keys, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	rootIDs := append(slices.Clone(st.Root.Signed.Roles[metadata.ROOT].KeyIDs), next.Signed.Roles[metadata.ROOT].KeyIDs...)
	keys, err := s.keysByID(ctx, rootIDs)
	if err != nil {
		return nil, err
	}
	if err := signer.SignMetadata(next, true, keys...); err != nil {
		return nil, err
	}
	nb, err := next.ToBytes(true)
	if err != nil {
		return nil, err
	}
	o, err := outcome(metadata.ROOT, next.Signed.Version)(s.Trustd.PublishMetadata(ctx, metadata.ROOT, nb))
	if err != nil {
		return nil, err
	}
	return append(out, o), nil
}

func countIn(keys []*signer.Key, ids []string) int {
	n := 0
	for _, k := range keys {
		if slices.Contains(ids, k.ID) {
			n++
		}
	}
	return n
}
