package tuf

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/trustnames"
)

// What a publish changed, for the audit log: trustd records every published role
// version with the targets, keys and delegations it added, moved or removed, as
// found by comparing it with the version it replaces.

// Change is one thing a published role version changed. Action is one of the
// audit package's actions (target.publish, key.rotate, delegation.add, ...).
type Change struct {
	Action string
	// Role is the role whose keys or delegation changed (the delegated role for
	// delegation changes), or the published role for target changes.
	Role       string
	Org        string
	Repository string
	Tag        string
	Digest     string
	KeyIDs     []string
	Detail     string
}

// OnPublish is told of every accepted publish (and of the repository's
// initialisation, as role root version 1) before the caller gets its answer; an
// error fails the request with 500, so what a caller was told succeeded is
// recorded. It runs after the commit: a failure leaves the publish in place.
type OnPublish func(r *http.Request, c Caller, role string, res PublishResult) error

// changesOf lists what u changes against s, the state it was validated against.
func (r *Repo) changesOf(ctx context.Context, s *state, u *upload) ([]Change, error) {
	switch u.kind {
	case kindRoot:
		return rootChanges(s.root, u.root), nil
	case kindTargets:
		return delegationChanges(s.targets, u.targets), nil
	case kindOrg:
		// An org role may sign targets of its repositories itself, besides
		// delegating them.
		prev := s.orgs[u.role]
		return append(delegationChanges(prev, u.targets), targetChanges(u.role, prev, u.targets)...), nil
	}
	var prev *targetsMD
	if n := s.version(u.role); n > 0 {
		raw, err := r.st.readCommitted(ctx, &s.head, u.role, n)
		if err != nil {
			return nil, fmt.Errorf("reading %s version %d to compare: %w", u.role, n, err)
		}
		if prev, err = (&targetsMD{}).FromBytes(raw); err != nil {
			return nil, fmt.Errorf("%s version %d: %w", u.role, n, err)
		}
	}
	return targetChanges(u.role, prev, u.targets), nil
}

// initChanges lists what the first root and targets set up.
func initChanges(s *state) []Change {
	out := []Change{{Action: audit.ActionTrustInit, Role: trustnames.RoleRoot, KeyIDs: s.root.Signed.Roles[trustnames.RoleRoot].KeyIDs}}
	return append(out, append(rootChanges(nil, s.root), delegationChanges(nil, s.targets)...)...)
}

// rootChanges lists the top-level roles whose keys or threshold next changes.
func rootChanges(prev, next *rootMD) []Change {
	var out []Change
	for _, name := range sortedKeys(next.Signed.Roles) {
		role := next.Signed.Roles[name]
		var before []string
		threshold := 0
		if prev != nil {
			if pr := prev.Signed.Roles[name]; pr != nil {
				before, threshold = pr.KeyIDs, pr.Threshold
			}
		}
		out = append(out, keyChanges(name, before, role.KeyIDs, threshold, role.Threshold)...)
	}
	return out
}

// delegationChanges lists the delegations next adds, removes or edits, and the
// key changes of those it keeps.
func delegationChanges(prev, next *targetsMD) []Change {
	before, after := delegations(prev), delegations(next)
	var out []Change
	for _, name := range sortedKeys(after) {
		d := after[name]
		p, had := before[name]
		c := delegatedChange(d)
		switch {
		case !had:
			c.Action, c.KeyIDs = audit.ActionDelegationAdd, slices.Clone(d.KeyIDs)
			c.Detail = fmt.Sprintf("paths %s, threshold %d", strings.Join(d.Paths, " "), d.Threshold)
			out = append(out, c)
			continue
		case !slices.Equal(p.Paths, d.Paths):
			c.Action = audit.ActionDelegationEdit
			c.Detail = fmt.Sprintf("paths %s (were %s)", strings.Join(d.Paths, " "), strings.Join(p.Paths, " "))
			out = append(out, c)
		}
		for _, kc := range keyChanges(name, p.KeyIDs, d.KeyIDs, p.Threshold, d.Threshold) {
			kc.Org, kc.Repository = c.Org, c.Repository
			out = append(out, kc)
		}
	}
	for _, name := range sortedKeys(before) {
		if _, kept := after[name]; !kept {
			c := delegatedChange(before[name])
			c.Action, c.KeyIDs = audit.ActionDelegationDel, slices.Clone(before[name].KeyIDs)
			out = append(out, c)
		}
	}
	return out
}

// delegatedChange is a Change naming delegated role d and what it covers.
func delegatedChange(d metadata.DelegatedRole) Change {
	c := Change{Role: d.Name}
	kind, _ := classify(d.Name)
	switch {
	case kind == kindOrg:
		c.Org, _ = trustnames.OrgOfRole(d.Name)
	case kind == kindRepo && len(d.Paths) > 0:
		c.Repository, _ = trustnames.RepoOfPaths(d.Paths)
		c.Org = trustnames.OrgOfRepo(c.Repository)
	}
	return c
}

func delegations(md *targetsMD) map[string]metadata.DelegatedRole {
	out := map[string]metadata.DelegatedRole{}
	if md != nil && md.Signed.Delegations != nil {
		for _, d := range md.Signed.Delegations.Roles {
			out[d.Name] = d
		}
	}
	return out
}

// keyChanges compares role's key IDs and threshold: keys added (key.add),
// removed (key.remove), both (key.rotate), or only the threshold changed
// (key.rotate too, with the keys unchanged).
func keyChanges(role string, before, after []string, tBefore, tAfter int) []Change {
	added := diff(after, before)
	removed := diff(before, after)
	if len(before) == 0 && len(removed) == 0 {
		return nil // a role new here: its delegation or the init records its keys
	}
	c := Change{Role: role}
	switch {
	case len(added) > 0 && len(removed) > 0:
		c.Action, c.KeyIDs = audit.ActionKeyRotate, added
		c.Detail = "replaced " + strings.Join(removed, " ")
	case len(added) > 0:
		c.Action, c.KeyIDs = audit.ActionKeyAdd, added
	case len(removed) > 0:
		c.Action, c.KeyIDs = audit.ActionKeyRemove, removed
	case tBefore != tAfter:
		c.Action, c.KeyIDs = audit.ActionKeyRotate, slices.Clone(after)
	default:
		return nil
	}
	if tBefore != tAfter {
		c.Detail = strings.TrimPrefix(c.Detail+fmt.Sprintf("; threshold %d (was %d)", tAfter, tBefore), "; ")
	}
	return []Change{c}
}

// diff returns the members of a that are not in b, in a's order.
func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// targetChanges lists the targets of role role (a repository's or an org's) that
// next adds, moves to another digest, or removes.
func targetChanges(role string, prev, next *targetsMD) []Change {
	var before map[string]*metadata.TargetFiles
	if prev != nil {
		before = prev.Signed.Targets
	}
	change := func(action, p string, t *metadata.TargetFiles) Change {
		repo, ref, isDigest, _ := trustnames.SplitTarget(p)
		c := Change{Action: action, Role: role, Repository: repo, Org: trustnames.OrgOfRepo(repo)}
		if isDigest {
			c.Digest = ref
		} else {
			c.Tag = ref
			if h := t.Hashes["sha256"]; len(h) > 0 {
				c.Digest = "sha256:" + h.String()
			}
		}
		return c
	}
	var out []Change
	for _, p := range sortedKeys(next.Signed.Targets) {
		t := next.Signed.Targets[p]
		if old := before[p]; old != nil && old.Equal(*t) {
			continue
		}
		out = append(out, change(audit.ActionTargetPublish, p, t))
	}
	for _, p := range sortedKeys(before) {
		if _, kept := next.Signed.Targets[p]; !kept {
			out = append(out, change(audit.ActionTargetRemove, p, before[p]))
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
