package tuf

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/trustd/api"
	"github.com/signet-oss/signet/trustnames"
)

// Held delegations. TUF §4.4: the snapshot lists every delegated targets role,
// and a client that walks to a role the snapshot does not list fails instead of
// answering "not found" (go-tuf, python-tuf and tuf-js all do). trustd never signs
// a delegated targets role, so it cannot give a new delegation an empty first
// version itself. Instead:
//
//   - A version of targets or of an org role that delegates a role with no
//     published version is held: validated like any upload (version, expiry,
//     delegations, signatures), accepted (202, PublishResult.Held), named by the
//     head, served by GET /tuf/api/held/<role>, but in no snapshot.
//   - A role delegated only by a held version validates its uploads against that
//     held delegation (keys, threshold, paths). When its first version meets the
//     threshold (at once, or when the last signature arrives through staging),
//     and every other role the held version newly delegates has a complete first
//     version too, the held version and those first versions are published in one
//     commit, one snapshot (all or nothing: trustd cannot sign an org version
//     that delegates only some of them). A complete first version is kept in
//     staged/ until that commit, also the one completing the set: a crash
//     before the commit point leaves the whole set there. A first version that
//     itself delegates roles without metadata (a new org's first version) is
//     held in turn, and released with its parent: targets, the org and its
//     first repositories land in one snapshot.
//   - ReleaseReady (run by Run every interval) releases a held version whose set
//     became complete without a release: two replicas taking the last two first
//     versions at once, or a crash between keeping a first version and its
//     release, once its last first version was kept releaseGrace ago (the
//     publish that kept it may be committing the release itself).
//     Config.OnRelease records such a release (trustd's audit log).
//   - At most one version of a role is held: a later version that still delegates
//     unpublished roles replaces it; a later version that delegates none is
//     published at once and discards it (trustctl builds new versions on the held
//     one, so a pending delegation is carried along, or removed on purpose by
//     org undelegate).
//
// So every snapshot trustd signs lists every role its roles delegate. Data
// directories written before holding existed may still publish delegations of
// roles without metadata; clients decide those structurally (the snapshot does
// not list the role: not signed).

// heldVersion is the held version of a delegating role.
type heldVersion struct {
	md  *targetsMD
	raw []byte
	ref pendingRef
}

// Waiting is a role a held version delegates that has no published version yet.
type Waiting = api.Waiting

// unpublished lists the roles md delegates that have no published version in s.
func (s *state) unpublished(md *targetsMD) []string {
	var out []string
	if md.Signed.Delegations != nil {
		for _, d := range md.Signed.Delegations.Roles {
			if s.version(d.Name) == 0 {
				out = append(out, d.Name)
			}
		}
	}
	return out
}

// heldDelegator returns the org role whose held version delegates the repository
// role role, and that repository; "" when none does.
func (s *state) heldDelegator(role string) (orgRole, repo string) {
	for name, h := range s.held {
		if _, ok := trustnames.OrgOfRole(name); !ok {
			continue
		}
		if d := targetsDelegation(name, h.md, role); d != nil && len(d.paths) > 0 {
			repo, _ = trustnames.RepoOfPaths(d.paths)
			return name, repo
		}
	}
	return "", ""
}

// repoOf is the repository of repository role role, delegated by a published org
// version or a held one.
func (s *state) repoOf(role string) (string, bool) {
	if repo, ok := s.repos[role]; ok {
		return repo, true
	}
	if _, repo := s.heldDelegator(role); repo != "" {
		return repo, true
	}
	return "", false
}

// waitingFor describes roles for a PublishResult.
func (s *state) waitingFor(roles []string, parent *targetsMD) []Waiting {
	out := make([]Waiting, 0, len(roles))
	for _, role := range roles {
		w := Waiting{Role: role}
		if org, ok := trustnames.OrgOfRole(role); ok {
			w.Org = org
		} else if d := targetsDelegation("", parent, role); d != nil && len(d.paths) > 0 {
			w.Repository, _ = trustnames.RepoOfPaths(d.paths)
		}
		out = append(out, w)
	}
	return out
}

// hold commits u, a delegating role's version that delegates roles without
// metadata, as that role's held version.
// Its changes are recorded when it is released, as the changes of that publish.
func (r *Repo) hold(ctx context.Context, s *state, u *upload, res sigResult) (PublishResult, error) {
	raw, err := u.bytes()
	if err != nil {
		return PublishResult{}, err
	}
	sum := sha256Hex(raw)
	if _, err := r.st.d.PutContent(ctx, heldPath(u.role, u.version(), sum), raw); err != nil {
		return PublishResult{}, fmt.Errorf("writing the held %s version %d: %w", u.role, u.version(), err)
	}
	req := &request{entries: []entry{{u: u, raw: raw, sum: sum}}, hold: true, done: make(chan error, 1)}
	r.enqueue(req)
	if err := <-req.done; err != nil {
		return PublishResult{}, err
	}
	r.clearStaged(ctx, u.role, u.version())
	return PublishResult{Published: api.Published{Version: u.version(), Held: true, Waiting: s.waitingFor(res.unpublished, u.targets)}}, nil
}

// release handles u, a complete first version of a role that only a held version
// of its parent delegates (and that delegates no role without metadata itself).
// The held version may itself be the first version of a role delegated only by a
// held version (targets → a new org → its first repositories): release climbs to
// the held version whose own delegation is published, and publishes it with the
// first versions of every role it and the held versions below it newly delegate,
// once all are complete, in one commit. Until then u waits in staged/ and the
// answer says what it waits for.
func (r *Repo) release(ctx context.Context, s *state, u *upload, res sigResult) (PublishResult, error) {
	top, err := s.heldTop(res.heldParent, r.cfg.Now(), r.online)
	if err != nil {
		return PublishResult{}, err
	}
	repo, _ := s.repoOf(u.role)
	group, heldSums, missing := r.gather(ctx, s, top, u)
	// u is kept in staged/ even when it completes the set: the others are
	// there already, so a crash before the commit point leaves the whole set
	// for ReleaseReady, not a set short of its last first version.
	if err := r.keepComplete(ctx, u); err != nil {
		return PublishResult{}, err
	}
	if len(missing) > 0 {
		return PublishResult{Published: api.Published{Version: u.version(), Held: true, Waiting: missing,
			Signatures: res.have, Threshold: res.need}, Repository: repo}, nil
	}
	published, err := r.releaseGroup(ctx, s, group, heldSums, u)
	if err != nil {
		return PublishResult{}, err
	}
	published.Repository = repo
	return published, nil
}

// releaseGroup commits group (gather's) and returns the publish of by, one of
// its versions: the changes of every version released, top-down (what became
// trusted), and the other versions as Released.
func (r *Repo) releaseGroup(ctx context.Context, s *state, group []*upload, heldSums map[string]string, by *upload) (PublishResult, error) {
	res := PublishResult{Published: api.Published{Version: by.version()}}
	for _, g := range group {
		c, err := r.changesOf(ctx, s, g)
		if err != nil {
			return PublishResult{}, err
		}
		res.Changes = append(res.Changes, c...)
		if g != by {
			repo, _ := s.repoOf(g.role)
			res.Released = append(res.Released, Released{Role: g.role, Version: g.version(), Repository: repo})
		}
	}
	if err := r.commitGroup(ctx, s, group, heldSums); err != nil {
		return PublishResult{}, err
	}
	return res, nil
}

// heldTop climbs from the held version of role to the held version whose own
// delegation is published: the one a release publishes first.
func (s *state) heldTop(role string, now time.Time, online map[string]string) (string, error) {
	for {
		h := s.held[role]
		if h == nil {
			return "", errConflict("the held version of %s changed; publish again", role)
		}
		res, err := s.validate(&upload{role: role, kind: kindOf(role), targets: h.md}, now, online)
		if err != nil {
			return "", fmt.Errorf("the held version of %s no longer validates: %w", role, err)
		}
		if res.heldParent == "" {
			return role, nil
		}
		role = res.heldParent
	}
}

// gather lists, top-down, what a release of the held version of top publishes:
// that version, and for every role it newly delegates a complete first version
// (u, a held first version with what it delegates in turn, or one kept in
// staged/). missing lists the roles that have none yet. heldSums maps the held
// versions in the group to the sha256 of their held file.
func (r *Repo) gather(ctx context.Context, s *state, top string, u *upload) (group []*upload, heldSums map[string]string, missing []Waiting) {
	group = []*upload{{role: top, kind: kindOf(top), targets: s.held[top].md}}
	heldSums = map[string]string{top: s.held[top].ref.SHA256}
	var collect func(parent string, md *targetsMD)
	collect = func(parent string, md *targetsMD) {
		for _, role := range s.unpublished(md) {
			switch h := s.held[role]; {
			case u != nil && role == u.role:
				group = append(group, u)
			case h != nil && h.md.Signed.Version == 1:
				group = append(group, &upload{role: role, kind: kindOf(role), targets: h.md})
				heldSums[role] = h.ref.SHA256
				collect(role, h.md)
			default:
				if other := r.completeStaged(ctx, s, role, parent); other != nil {
					group = append(group, other)
				} else {
					missing = append(missing, s.waitingFor([]string{role}, md)...)
				}
			}
		}
	}
	collect(top, s.held[top].md)
	return group, heldSums, missing
}

// commitGroup writes the pending files of group and commits it as one request.
func (r *Repo) commitGroup(ctx context.Context, s *state, group []*upload, heldSums map[string]string) error {
	req := &request{done: make(chan error, 1)}
	for _, g := range group {
		var raw []byte
		var err error
		if _, held := heldSums[g.role]; held {
			raw = s.held[g.role].raw
		} else if raw, err = g.bytes(); err != nil {
			return err
		}
		sum := sha256Hex(raw)
		if _, err := r.st.d.PutContent(ctx, pendingPath(g.role, g.version(), sum), raw); err != nil {
			return fmt.Errorf("writing %s version %d: %w", g.role, g.version(), err)
		}
		req.entries = append(req.entries, entry{u: g, raw: raw, sum: sum, heldSum: heldSums[g.role]})
	}
	r.enqueue(req)
	if err := <-req.done; err != nil {
		return err
	}
	for _, g := range group {
		r.clearStaged(ctx, g.role, g.version())
	}
	return nil
}

// ReleaseReady publishes every held version whose new roles all have complete
// first versions, as a publish completing the set would have, and tells
// cfg.OnRelease of each release. It catches a set completed by two uploads at
// once on two replicas (each saw the other's first version missing) and a
// release a crash interrupted. A set with a first version kept less than
// releaseGrace ago waits for the next call. It reports how many held versions
// it released.
func (r *Repo) ReleaseReady(ctx context.Context) (int, error) {
	r.releaseMu.Lock()
	defer r.releaseMu.Unlock()
	s := r.fresh(ctx)
	if s == nil {
		return 0, nil
	}
	n := 0
	for _, role := range sortedKeys(s.held) {
		top, err := s.heldTop(role, r.cfg.Now(), r.online)
		if err != nil || top != role {
			continue
		}
		group, heldSums, missing := r.gather(ctx, s, top, nil)
		if len(missing) > 0 || r.keptRecently(ctx, group, heldSums) {
			continue
		}
		res, err := r.releaseGroup(ctx, s, group, heldSums, group[0])
		if err != nil {
			return n, fmt.Errorf("releasing the held %s version %d: %w", top, group[0].version(), err)
		}
		n++
		s = r.current()
		if r.cfg.OnRelease != nil {
			if err := r.cfg.OnRelease(ctx, top, res); err != nil {
				return n, fmt.Errorf("recording the release of %s version %d: %w", top, res.Version, err)
			}
		}
	}
	return n, nil
}

// releaseGrace is how long ReleaseReady leaves a complete set alone after one
// of its first versions was kept in staged/: the publish that kept it may be
// committing the release itself (a commit takes moments; this leaves room for
// a slow store, the commit's retries and clocks apart). Released under it by
// another replica, that publish would be answered 409 for a version that was
// published.
const releaseGrace = 30 * time.Second

// keptRecently says whether a first version of group, in staged/, was kept
// less than releaseGrace ago, or is gone: a release may be under way.
func (r *Repo) keptRecently(ctx context.Context, group []*upload, heldSums map[string]string) bool {
	now := r.cfg.Now()
	for _, g := range group {
		if _, held := heldSums[g.role]; held {
			continue
		}
		sum, err := g.signedSum()
		if err != nil {
			return true
		}
		fi, err := r.st.d.Stat(ctx, stagedPath(g.role, g.version(), sum))
		if err != nil || now.Sub(fi.ModTime) < releaseGrace {
			return true
		}
	}
	return false
}

// Released is a role version published together with the one uploaded: the held
// version of its parent, and complete first versions of its siblings.
type Released = api.RoleVersion

// kindOf classifies a role name known to be valid.
func kindOf(role string) roleKind {
	k, _ := classify(role)
	return k
}

// completeStaged returns the staged first version of role whose signatures meet
// its threshold under the held version of parent, or nil.
func (r *Repo) completeStaged(ctx context.Context, s *state, role, parent string) *upload {
	us, _, err := r.stagedCopies(ctx, role, 1)
	if err != nil {
		return nil // not complete as far as can be seen: ReleaseReady looks again
	}
	for _, u := range us {
		if res, err := s.validate(u, r.cfg.Now(), r.online); err == nil && res.met && res.heldParent == parent {
			return u
		}
	}
	return nil
}

// keepComplete writes u, a complete first version, to staged/, merged with the
// signatures a staged copy of the same content already has.
func (r *Repo) keepComplete(ctx context.Context, u *upload) error {
	sum, err := u.signedSum()
	if err != nil {
		return err
	}
	p := stagedPath(u.role, u.version(), sum)
	for range maxCommitAttempts {
		data, ver, err := r.st.d.GetContent(ctx, p)
		cond := driver.Condition{IfAbsent: true}
		merged := u
		switch {
		case err == nil:
			cond = driver.Condition{IfMatch: ver}
			if prev, perr := parseUpload(u.role, data); perr == nil {
				merged = mergeSignatures(prev, u)
			}
		case !errors.Is(err, driver.ErrNotFound):
			return err
		}
		raw, err := merged.bytes()
		if err != nil {
			return err
		}
		_, err = r.st.d.PutContentIf(ctx, p, raw, cond)
		if errors.Is(err, driver.ErrPreconditionFailed) {
			continue
		}
		return err
	}
	return errConflict("%s version %d: too many signers at once; send it again", u.role, u.version())
}

// heldFor returns the held version of role, or a not-found error.
func (r *Repo) heldFor(s *state, role string) ([]byte, error) {
	h := s.held[role]
	if h == nil {
		return nil, errNotFound("no version of %s is held", role)
	}
	return h.raw, nil
}

// heldRefs lists the held versions of s for its head, in a stable order.
func (s *state) heldRefs() []pendingRef {
	out := make([]pendingRef, 0, len(s.held))
	for _, h := range s.held {
		out = append(out, h.ref)
	}
	slices.SortFunc(out, func(a, b pendingRef) int { return strings.Compare(a.Role, b.Role) })
	if len(out) == 0 {
		return nil
	}
	return out
}
