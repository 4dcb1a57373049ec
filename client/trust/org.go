package trust

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/reference"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

// OrgResult says what an organisation command changed.
type OrgResult struct {
	Org string `json:"name"`
	// Created is true when trustd's organisation record was new.
	Created bool `json:"created"`
	// Key is the org key's name in the store, when this command used one.
	Key       string    `json:"key,omitempty"`
	Generated bool      `json:"keyGenerated,omitempty"`
	Published []Outcome `json:"published"`
	// NoTrustRoot is set when trustd has no trust root yet: only the
	// organisation record was made.
	NoTrustRoot bool `json:"noTrustRoot,omitempty"`
}

// probe is a target path inside org's namespace: walking towards it loads
// targets and the org role.
func probe(org string) string { return org + "/-:-" }

// orgRoleState returns the verified state and the delegation of org's role by
// targets (nil if targets does not delegate it).
func (s *Session) orgRoleState(ctx context.Context, path string) (*verify.State, *metadata.DelegatedRole, error) {
	st, err := s.state(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	org, _, _ := strings.Cut(path, "/")
	return st, delegation(st.Roles[metadata.TARGETS], trustnames.RoleForOrg(org)), nil
}

// CreateOrg creates org at trustd (if new) and makes both sides of its trust:
// targets delegates org's namespace to the org key (generated if the store lacks
// it), and the org role v1 is published. Idempotent: what exists is left alone.
// keyName names the org key in the store (a key in a token, say); "" means
// org-<org>, or dev-org-<org> under a development root.
func (s *Session) CreateOrg(ctx context.Context, org, keyName string, threshold int) (*OrgResult, error) {
	created, err := s.Trustd.CreateOrg(ctx, org)
	if err != nil {
		return nil, err
	}
	res := &OrgResult{Org: org, Created: created, Published: []Outcome{}}
	if _, err := PinnedRoot(s.Home, s.Registry); err != nil {
		if _, found, ferr := fetchRoot(ctx, s.HTTP, s.Trustd.Base); ferr == nil && !found {
			res.NoTrustRoot = true
			return res, nil
		}
		return nil, err
	}
	st, d, err := s.orgRoleState(ctx, probe(org))
	if err != nil {
		return nil, err
	}
	role := trustnames.RoleForOrg(org)
	// A targets version that delegates org but waits for the org role's first
	// version (an org create cut short) is built on, not dropped.
	base, err := s.editBase(ctx, metadata.TARGETS, st.Roles[metadata.TARGETS])
	if err != nil {
		return nil, err
	}
	if d == nil {
		d = delegation(base, role)
	}
	if d == nil {
		// The keys that sign targets first: an org key made for a change that
		// cannot be signed would be left behind, delegated nowhere.
		targetsKeys, err := s.signingKeys(ctx, metadata.TARGETS, st.Root.Signed.Roles[metadata.TARGETS])
		if err != nil {
			return nil, err
		}
		if keyName == "" {
			keyName = role // the org key is named after its role
			if s.developmentRoot(ctx, st) {
				keyName = signer.DevelopmentPrefix + keyName
			}
		}
		info, generated, err := s.ensureKey(ctx, keyName)
		if err != nil {
			return nil, err
		}
		res.Key, res.Generated = keyName, generated
		tk, id, err := keyFromPEM(keyName, info.PublicPEM)
		if err != nil {
			return nil, err
		}
		if threshold < 1 {
			threshold = 1
		}
		if threshold > 1 {
			return nil, fmt.Errorf("--threshold %d: org create makes one org key; add more with `trustctl org rotate-key`", threshold)
		}
		targets, err := nextTargets(base, st.Version(metadata.TARGETS), s.now().Add(DefaultRootExpiry))
		if err != nil {
			return nil, err
		}
		// Keep the targets role's lifetime as the operators chose it.
		targets.Signed.Expires = keepLifetime(st.Roles[metadata.TARGETS], s.now())
		setDelegation(targets, metadata.DelegatedRole{
			Name: role, KeyIDs: []string{id}, Threshold: threshold, Terminating: true, Paths: trustnames.OrgPaths(org),
		}, map[string]*metadata.Key{id: tk})
		o, err := s.publishTargets(ctx, metadata.TARGETS, targets, targetsKeys, func(staged *metadata.Metadata[metadata.TargetsType]) bool {
			return sameDelegation(delegation(staged, role), []string{id}, threshold)
		})
		if err != nil {
			return nil, err
		}
		res.Published = append(res.Published, o)
		if o.Staged {
			return res, nil // the org role can follow once targets is published
		}
		// trustd holds this targets version until the org role's first
		// version, published next: both land in one snapshot.
		d = delegation(targets, role)
	}
	if st.Version(role) == 0 {
		keys, err := s.keysByID(ctx, d.KeyIDs)
		if err != nil {
			return nil, err
		}
		if res.Key == "" && len(keys) > 0 {
			res.Key = keys[0].Name
		}
		md, err := nextTargets(nil, 0, s.delegatedExpiry())
		if err != nil {
			return nil, err
		}
		o, err := s.publishTargets(ctx, role, md, keys, func(*metadata.Metadata[metadata.TargetsType]) bool { return true })
		if err != nil {
			return nil, err
		}
		res.Published = append(res.Published, o)
	}
	return res, nil
}

// developmentRoot reports whether the targets role's keys are development keys
// in this store: then org keys are development keys too.
func (s *Session) developmentRoot(ctx context.Context, st *verify.State) bool {
	infos, err := s.Keys.List(ctx)
	if err != nil {
		return false
	}
	for _, info := range infos {
		if info.Development && slices.Contains(st.Root.Signed.Roles[metadata.TARGETS].KeyIDs, info.ID) {
			return true
		}
	}
	return false
}

// keepLifetime is the expiry of a new version of the targets role, whose
// lifetime the operators chose at init: the current expiry while it is more than
// 30 days away, else a year from now.
func keepLifetime(md *metadata.Metadata[metadata.TargetsType], now time.Time) time.Time {
	if md != nil && md.Signed.Expires.After(now.Add(30*24*time.Hour)) {
		return md.Signed.Expires
	}
	return now.Add(DefaultRootExpiry)
}

// DelegateResult says what a delegation command changed.
type DelegateResult struct {
	Repository string   `json:"repository"`
	Role       string   `json:"role"`
	Keys       []string `json:"keys"`
	Threshold  int      `json:"threshold"`
	Changed    bool     `json:"changed"`
	Outcome    *Outcome `json:"published,omitempty"`
	// First is the empty first version of the repository's role published
	// with the delegated keys this store holds, which lets a held org version
	// take effect at once.
	First *Outcome `json:"firstVersion,omitempty"`
}

// splitRepo checks a repository name in an organisation's namespace and returns
// the org.
func splitRepo(repo string) (string, error) {
	if err := reference.ValidateEnforcedName(repo); err != nil {
		return "", fmt.Errorf("%w: a signed repository is ORG/NAME with %d to %d components", err, reference.MinRepoDepth, reference.MaxRepoDepth)
	}
	return trustnames.OrgOfRepo(repo), nil
}

// Delegate has repo's org delegate it to the given publisher keys (store names or
// PEM files) with threshold, replacing any earlier key set: a key left out is
// revoked, and what it signed stops being trusted at clients' next refresh.
func (s *Session) Delegate(ctx context.Context, repo string, keyNames []string, threshold int) (*DelegateResult, error) {
	org, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	if len(keyNames) == 0 {
		return nil, fmt.Errorf("delegating %s: name at least one publisher key with --key", repo)
	}
	if threshold < 1 || threshold > len(keyNames) {
		return nil, fmt.Errorf("--threshold %d: must be between 1 and the number of keys (%d)", threshold, len(keyNames))
	}
	keys := map[string]*metadata.Key{}
	var ids []string
	for _, name := range keyNames {
		k, id, err := s.publicKey(ctx, name)
		if err != nil {
			return nil, err
		}
		if keys[id] != nil {
			return nil, fmt.Errorf("--key %s: the same key is named twice", name)
		}
		keys[id] = k
		ids = append(ids, id)
	}
	role := trustnames.RoleForRepo(repo)
	res := &DelegateResult{Repository: repo, Role: role, Keys: keyNames, Threshold: threshold}
	err = s.editOrgRole(ctx, org, repo, res, func(md *metadata.Metadata[metadata.TargetsType]) bool {
		if sameDelegation(delegation(md, role), ids, threshold) {
			return false
		}
		setDelegation(md, metadata.DelegatedRole{
			Name: role, KeyIDs: ids, Threshold: threshold, Terminating: true, Paths: trustnames.RepoPaths(repo),
		}, keys)
		return true
	})
	if err != nil || res.Outcome == nil || !res.Outcome.Held || !slices.ContainsFunc(res.Outcome.Waiting, func(w client.Waiting) bool { return w.Role == role }) {
		return res, err
	}
	return res, s.firstVersion(ctx, repo, keyNames, threshold, res)
}

// firstVersion publishes an empty first version of repo's role, signed with the
// delegated keys this store holds, when they meet threshold: trustd holds the
// org role's version that delegates repo until the repository's role has a
// first version, and with one the delegation takes effect at once. With fewer
// keys here, the publishers' first push (or sign) does it.
func (s *Session) firstVersion(ctx context.Context, repo string, keyNames []string, threshold int, res *DelegateResult) error {
	var keys []*signer.Key
	for _, name := range keyNames {
		if _, err := s.Keys.Public(ctx, name); err != nil {
			continue // a publisher's exported public key: the publisher signs
		}
		if k, err := s.loadKey(ctx, name); err == nil {
			keys = append(keys, k)
		}
	}
	if len(keys) < threshold {
		return nil
	}
	md, err := nextTargets(nil, 0, s.delegatedExpiry())
	if err != nil {
		return err
	}
	o, err := s.publish(ctx, res.Role, md, keys[:threshold], true)
	if err != nil {
		return fmt.Errorf("%s v%d is held until %s has a first version; publishing an empty one with the delegated keys here failed: %w", trustnames.RoleForOrg(trustnames.OrgOfRepo(repo)), res.Outcome.Version, repo, err)
	}
	o.Repository = repo
	res.First = &o
	if o.Published {
		res.Outcome.Held, res.Outcome.Published, res.Outcome.Waiting = false, true, nil
	} else if o.Held {
		res.Outcome.Waiting = o.Waiting // the repository is ready; the others are not
	}
	return nil
}

// Undelegate removes repo's delegation from its org role: nothing signed for repo
// is trusted any more.
func (s *Session) Undelegate(ctx context.Context, repo string) (*DelegateResult, error) {
	org, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	role := trustnames.RoleForRepo(repo)
	res := &DelegateResult{Repository: repo, Role: role}
	return res, s.editOrgRole(ctx, org, repo, res, func(md *metadata.Metadata[metadata.TargetsType]) bool {
		return removeDelegation(md, role)
	})
}

// editOrgRole publishes the next version of org's role after edit changed it
// (edit returns false when there is nothing to change).
func (s *Session) editOrgRole(ctx context.Context, org, repo string, res *DelegateResult, edit func(*metadata.Metadata[metadata.TargetsType]) bool) error {
	o, err := s.editOrg(ctx, org, repo+":-", func(md *metadata.Metadata[metadata.TargetsType]) (bool, error) { return edit(md), nil })
	if err != nil || o == nil {
		return err
	}
	res.Changed, res.Outcome = true, o
	return nil
}

// editOrg publishes the next version of org's role, walking the trust graph
// towards probePath, after edit changed it; it returns nil when edit changed
// nothing.
func (s *Session) editOrg(ctx context.Context, org, probePath string, edit func(*metadata.Metadata[metadata.TargetsType]) (bool, error)) (*Outcome, error) {
	st, d, err := s.orgRoleState(ctx, probePath)
	if err != nil {
		return nil, err
	}
	role := trustnames.RoleForOrg(org)
	cur := st.Roles[role]
	if d == nil || cur == nil {
		return nil, fmt.Errorf("organisation %s has no trusted org role: run `trustctl org create %s` first", org, org)
	}
	// Built on the held version when there is one, so that a delegation that
	// waits for its repository's first version is kept (or, by undelegate,
	// removed on purpose: then the new version is published at once).
	base, err := s.editBase(ctx, role, cur)
	if err != nil {
		return nil, err
	}
	next, err := nextTargets(base, st.Version(role), s.delegatedExpiry())
	if err != nil {
		return nil, err
	}
	if changed, err := edit(next); err != nil || !changed {
		return nil, err
	}
	keys, err := s.keysByID(ctx, d.KeyIDs)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s is signed with %s's org key (TUF key ID %s), which is not in %s: run this where that key is (`trustctl org create %s` named it %s), or import it there with `trustctl keys import`",
			role, org, shortIDs(d.KeyIDs), KeyDir(s.Home), org, role)
	}
	o, err := s.publishTargets(ctx, role, next, keys, func(staged *metadata.Metadata[metadata.TargetsType]) bool {
		return sameContent(staged, next)
	})
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// shortIDs names key IDs by their starts.
func shortIDs(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id
		if len(id) > 16 {
			out[i] = id[:16]
		}
	}
	return strings.Join(out, " or ")
}
