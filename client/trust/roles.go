package trust

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/signer/agent"
)

// nextTargets returns a copy of md as the next version, unsigned, expiring at
// expires. A nil md starts a new role at version current+1 (a role that has
// never been published starts at 1).
func nextTargets(md *metadata.Metadata[metadata.TargetsType], current int64, expires time.Time) (*metadata.Metadata[metadata.TargetsType], error) {
	next := metadata.Targets(expires)
	if md != nil {
		b, err := md.ToBytes(false)
		if err != nil {
			return nil, err
		}
		if next, err = metadata.Targets().FromBytes(b); err != nil {
			return nil, err
		}
		next.Signed.Expires = expires
	}
	next.Signed.Version = current + 1
	next.ClearSignatures()
	return next, nil
}

// delegation returns the delegation named role in md, or nil.
func delegation(md *metadata.Metadata[metadata.TargetsType], role string) *metadata.DelegatedRole {
	if md == nil || md.Signed.Delegations == nil {
		return nil
	}
	for i := range md.Signed.Delegations.Roles {
		if md.Signed.Delegations.Roles[i].Name == role {
			return &md.Signed.Delegations.Roles[i]
		}
	}
	return nil
}

// setDelegation adds or replaces the delegation d in md with keys, and drops
// the keys no delegation uses any more.
func setDelegation(md *metadata.Metadata[metadata.TargetsType], d metadata.DelegatedRole, keys map[string]*metadata.Key) {
	if md.Signed.Delegations == nil {
		md.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	if md.Signed.Delegations.Keys == nil {
		md.Signed.Delegations.Keys = map[string]*metadata.Key{}
	}
	if cur := delegation(md, d.Name); cur != nil {
		*cur = d
	} else {
		md.Signed.Delegations.Roles = append(md.Signed.Delegations.Roles, d)
	}
	for id, k := range keys {
		md.Signed.Delegations.Keys[id] = k
	}
	pruneKeys(md)
}

// removeDelegation drops the delegation named role; false if there was none.
func removeDelegation(md *metadata.Metadata[metadata.TargetsType], role string) bool {
	if delegation(md, role) == nil {
		return false
	}
	md.Signed.Delegations.Roles = slices.DeleteFunc(md.Signed.Delegations.Roles, func(d metadata.DelegatedRole) bool { return d.Name == role })
	pruneKeys(md)
	return true
}

func pruneKeys(md *metadata.Metadata[metadata.TargetsType]) {
	used := map[string]bool{}
	for _, d := range md.Signed.Delegations.Roles {
		for _, id := range d.KeyIDs {
			used[id] = true
		}
	}
	for id := range md.Signed.Delegations.Keys {
		if !used[id] {
			delete(md.Signed.Delegations.Keys, id)
		}
	}
}

// sameDelegation reports whether a delegation already has exactly these keys and
// threshold.
func sameDelegation(d *metadata.DelegatedRole, ids []string, threshold int) bool {
	if d == nil || d.Threshold != threshold || len(d.KeyIDs) != len(ids) {
		return false
	}
	for _, id := range ids {
		if !slices.Contains(d.KeyIDs, id) {
			return false
		}
	}
	return true
}

// Outcome says what one publish did.
type Outcome struct {
	Role string `json:"role"`
	// Repository is the repository a repository's role covers: what people
	// know it by, rather than its hashed name.
	Repository string `json:"repository,omitempty"`
	Version    int64  `json:"version"`
	Published  bool   `json:"published"`
	Staged     bool   `json:"staged,omitempty"`
	Signatures int    `json:"signatures,omitempty"`
	Threshold  int    `json:"threshold,omitempty"`
	// Held: trustd accepted the version but publishes it only with the first
	// signed versions of Waiting (see client.Published).
	Held    bool             `json:"held,omitempty"`
	Waiting []client.Waiting `json:"waiting,omitempty"`
	// Released lists the role versions published with this one.
	Released []client.RoleVersion `json:"released,omitempty"`
	// Unchanged: the published version already says what this one would
	// have, so none was published (Version is the published one).
	Unchanged bool `json:"unchanged,omitempty"`
}

func (o Outcome) String() string {
	switch {
	case o.Staged:
		return fmt.Sprintf("%s v%d staged: %d of %d signatures", o.Name(), o.Version, o.Signatures, o.Threshold)
	case o.Held:
		return fmt.Sprintf("%s v%d held until %s %s its first signed version", o.Name(), o.Version, o.WaitingFor(), map[bool]string{true: "has", false: "have"}[len(o.Waiting) == 1])
	}
	if o.Unchanged {
		return fmt.Sprintf("%s v%d already published, unchanged", o.Name(), o.Version)
	}
	s := fmt.Sprintf("%s v%d published", o.Name(), o.Version)
	for _, r := range o.Released {
		name := r.Role
		if r.Repository != "" {
			name = r.Repository
		}
		s += fmt.Sprintf(", with %s v%d", name, r.Version)
	}
	return s
}

// Name is what the outcome's role covers as people name it: the repository
// of a repository's role, else the role's own name (targets, org-acme).
func (o Outcome) Name() string {
	if o.Repository != "" {
		return o.Repository
	}
	return o.Role
}

// WaitingFor names what a held version waits for.
func (o Outcome) WaitingFor() string {
	names := make([]string, 0, len(o.Waiting))
	for _, w := range o.Waiting {
		names = append(names, w.Name())
	}
	return strings.Join(names, ", ")
}

// editBase is the version of role a change builds on: the held version when
// trustd holds one (it carries delegations that wait for their first
// versions, which a change built on the published version would drop), else
// published, the published version.
func (s *Session) editBase(ctx context.Context, role string, published *metadata.Metadata[metadata.TargetsType]) (*metadata.Metadata[metadata.TargetsType], error) {
	raw, err := s.Trustd.HeldMetadata(ctx, role)
	if err != nil || raw == nil {
		return published, err
	}
	held, err := metadata.Targets().FromBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("the held %s: %w", role, err)
	}
	return held, nil
}

// publishTargets signs md with keys and publishes it as role. When trustd holds a
// staged version of the same number that cosign accepts (it carries the change
// this command makes), the keys' signatures are added to it instead, so that
// co-signers sign the same bytes and trustd counts their signatures together.
func (s *Session) publishTargets(ctx context.Context, role string, md *metadata.Metadata[metadata.TargetsType], keys []*signer.Key, cosign func(staged *metadata.Metadata[metadata.TargetsType]) bool) (Outcome, error) {
	if len(keys) == 0 {
		return Outcome{}, fmt.Errorf("publishing %s: none of the keys it must be signed with is in %s", role, KeyDir(s.Home))
	}
	if cosign != nil {
		raw, err := s.Trustd.StagedMetadata(ctx, role)
		if err != nil {
			return Outcome{}, err
		}
		if raw != nil {
			staged, err := metadata.Targets().FromBytes(raw)
			if err == nil && staged.Signed.Version == md.Signed.Version && cosign(staged) {
				s.printf("Co-signing the staged %s v%d (%d signatures so far).\n", role, staged.Signed.Version, len(staged.Signatures))
				md = staged
				return s.publish(ctx, role, md, keys, false)
			}
		}
	}
	return s.publish(ctx, role, md, keys, true)
}

func (s *Session) publish(ctx context.Context, role string, md *metadata.Metadata[metadata.TargetsType], keys []*signer.Key, replace bool) (Outcome, error) {
	for _, k := range keys {
		agent.SigningFor(k, fmt.Sprintf("%s v%d", role, md.Signed.Version))
	}
	if err := signer.SignMetadata(md, replace, keys...); err != nil {
		return Outcome{}, err
	}
	b, err := md.ToBytes(false)
	if err != nil {
		return Outcome{}, err
	}
	o, err := outcome(role, md.Signed.Version)(s.Trustd.PublishMetadata(ctx, role, b))
	if err == nil && o.Published {
		// Only a hint for the registry: without it a push waits for the
		// registry's next refresh, so a failure to read it is no failure.
		s.Timestamp, _ = s.Trustd.Timestamp(ctx)
	}
	return o, err
}

func outcome(role string, version int64) func(*client.Published, error) (Outcome, error) {
	return func(p *client.Published, err error) (Outcome, error) {
		if err != nil {
			return Outcome{}, err
		}
		o := Outcome{Role: role, Version: version, Published: !p.Staged && !p.Held, Staged: p.Staged, Signatures: p.Signatures, Threshold: p.Threshold,
			Held: p.Held, Waiting: p.Waiting, Released: p.Released}
		if p.Version != 0 {
			o.Version = p.Version
		}
		return o, nil
	}
}

// sameContent reports whether two versions of a role carry the same targets and
// delegations (their expiry may differ): a staged version a co-signer may sign
// in place of the one it built.
func sameContent(a, b *metadata.Metadata[metadata.TargetsType]) bool {
	ja, err1 := json.Marshal([]any{a.Signed.Targets, a.Signed.Delegations})
	jb, err2 := json.Marshal([]any{b.Signed.Targets, b.Signed.Delegations})
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
