package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// update runs one walk of the trust graph (the caller holds workMu), step by
// step as the TUF client workflow reads (and go-tuf's updater.onlineRefresh):
// root, timestamp, snapshot, then the targets role and its delegations. Each
// step starts from the stored metadata, which this index verified before and
// which bounds rollback, then, when remote, asks trustd. probeRoot asks trustd
// for a newer root first. The view is replaced only when every top-level role
// verified; the fetched metadata is saved before it is served.
func (ix *Index) update(ctx context.Context, remote, probeRoot bool) error {
	w, err := ix.newWalk(ctx, remote)
	if err != nil {
		return err
	}
	if err := w.updateRoot(probeRoot); err != nil {
		return err
	}
	unchanged, err := w.updateTimestamp(probeRoot)
	if err != nil {
		return err
	}
	if unchanged && ix.view != nil && w.fresh["root.json"] == nil {
		ix.held.set(w.tm.Root, w.tm.Timestamp.Signed.Version)
		return nil
	}
	if err := w.updateSnapshot(); err != nil {
		return err
	}
	g, err := w.updateTargets()
	if err != nil {
		return err
	}
	if err := ix.publish(ctx, w.fresh, buildView(g, ix.cfg.Now()), g.problems); err != nil {
		return err
	}
	ix.held.set(w.tm.Root, w.tm.Timestamp.Signed.Version)
	return nil
}

// walk is one update's pass: the trusted set it builds, where it reads, and
// what it fetched from trustd (to be saved once the walk succeeds).
type walk struct {
	ctx    context.Context
	ix     *Index
	f      *fetcher
	remote bool
	tm     *trustedmetadata.TrustedMetadata
	fresh  map[string][]byte
}

// graph is what a walk verified below the snapshot, for buildView.
type graph struct {
	// snapshot is the snapshot's version; expires is when the earliest
	// top-level role (root, timestamp, snapshot, targets) expires.
	snapshot int64
	expires  time.Time
	// roles are the org and repository roles reached, in walk order.
	roles []reachedRole
	// problems are the delegated roles left out, and why.
	problems []error
}

// reachedRole is a delegated role the walk reached.
type reachedRole struct {
	// chain is the delegations that lead to it: the org's, then the repo's.
	chain []metadata.DelegatedRole
	// md is its verified metadata, nil for a repository role delegated but
	// never published.
	md *metadata.Metadata[metadata.TargetsType]
	// keys and threshold are a repository role's publisher keys (nil for an
	// org role); delegatorExpires is when the org role above it expires.
	keys             []*metadata.Key
	threshold        int
	delegatorExpires time.Time
}

// newWalk starts a walk from the pinned root, at the index's time.
func (ix *Index) newWalk(ctx context.Context, remote bool) (*walk, error) {
	tm, err := trustedmetadata.New(ix.cfg.Root)
	if err != nil {
		return nil, &Error{Kind: ErrInvalidMetadata, Err: err}
	}
	tm.RefTime = ix.cfg.Now().UTC()
	return &walk{
		ctx:    ctx,
		ix:     ix,
		f:      &fetcher{ctx: ctx, hc: ix.cfg.HTTPClient, token: ix.cfg.Token, origin: ix.origin},
		remote: remote,
		tm:     tm,
		fresh:  map[string][]byte{},
	}, nil
}

// stored returns the verified copy of name this index holds, or nil.
func (w *walk) stored(name string) []byte {
	if b, ok := w.ix.raw[name]; ok {
		return b
	}
	b, err := w.ix.cfg.Store.Load(w.ctx, name)
	if err != nil {
		return nil
	}
	return b
}

// fetch downloads name from trustd.
func (w *walk) fetch(name string) ([]byte, error) {
	return w.f.DownloadFile(w.ix.metaURL+name, w.ix.cfg.MaxLength, 0)
}

// updateRoot moves from the pinned root to the newest stored root, through the
// stored chain, then (probe) to trustd's newest, one version at a time; the
// root reached must not have expired.
func (w *walk) updateRoot(probe bool) error {
	if err := w.storedRoots(); err != nil {
		return err
	}
	if probe {
		if err := w.probeRoots(); err != nil {
			return err
		}
	}
	if w.tm.Root.Signed.IsExpired(w.tm.RefTime) {
		return &Error{Kind: ErrExpired, Err: errors.New("root.json is expired")}
	}
	return nil
}

// storedRoots walks the stored root chain. Stored roots were verified when they
// were saved; the chain is walked again from the pinned root so a tampered
// store cannot jump it.
func (w *walk) storedRoots() error {
	b := w.stored("root.json")
	if b == nil {
		return nil
	}
	r, err := metadata.Root().FromBytes(b)
	if err != nil {
		return nil
	}
	for v := w.tm.Root.Signed.Version + 1; v <= r.Signed.Version; v++ {
		rb := w.stored(fmt.Sprintf("%d.root.json", v))
		if rb == nil {
			break
		}
		if _, err := w.tm.UpdateRoot(rb); err != nil {
			return &Error{Kind: ErrInvalidMetadata, Err: fmt.Errorf("stored root v%d: %w", v, err)}
		}
	}
	return nil
}

// probeRoots asks trustd for the roots after the one held until it has none
// (a 404 or 403), as go-tuf's loadRoot does, and records when it asked.
func (w *walk) probeRoots() error {
	w.ix.lastRootProbe = w.ix.cfg.Now()
	for range 64 {
		next := w.tm.Root.Signed.Version + 1
		b, err := w.fetch(fmt.Sprintf("%d.root.json", next))
		var httpErr *metadata.ErrDownloadHTTP
		if errors.As(err, &httpErr) && (httpErr.StatusCode == 404 || httpErr.StatusCode == 403) {
			return nil
		}
		if err != nil {
			return &Error{Kind: classify(err, phaseRefresh), Err: err}
		}
		if _, err := w.tm.UpdateRoot(b); err != nil {
			return &Error{Kind: classify(err, phaseRefresh), Err: fmt.Errorf("root v%d: %w", next, err)}
		}
		w.fresh[fmt.Sprintf("%d.root.json", next)] = b
		w.fresh["root.json"] = b
	}
	return nil
}

// updateTimestamp loads the stored timestamp, then (remote) trustd's. It
// reports unchanged when trustd's is the version held: nothing was published
// since. A timestamp that does not verify with the held root, when the root
// was not just probed, is a rootSuspect: its keys may have rotated.
func (w *walk) updateTimestamp(probedRoot bool) (unchanged bool, err error) {
	if b := w.stored("timestamp.json"); b != nil {
		w.tm.UpdateTimestamp(b) // an expired stored one still bounds rollback
	}
	if w.remote {
		b, err := w.fetch("timestamp.json")
		if err != nil {
			return false, &Error{Kind: classify(err, phaseRefresh), Err: err}
		}
		if _, err := w.tm.UpdateTimestamp(b); err != nil {
			var equal *metadata.ErrEqualVersionNumber
			var unsigned *metadata.ErrUnsignedMetadata
			if errors.As(err, &unsigned) && !probedRoot {
				return false, &rootSuspect{&Error{Kind: classify(err, phaseRefresh), Err: fmt.Errorf("timestamp: %w", err)}}
			}
			if !errors.As(err, &equal) {
				return false, &Error{Kind: classify(err, phaseRefresh), Err: fmt.Errorf("timestamp: %w", err)}
			}
			unchanged = true
		} else {
			w.fresh["timestamp.json"] = b
		}
	}
	if w.tm.Timestamp == nil {
		return false, &Error{Kind: ErrUnreachable, Err: errors.New("no timestamp stored or fetched")}
	}
	return unchanged, nil
}

// updateSnapshot loads the stored snapshot (trusted: it was verified when
// saved), then trustd's when the timestamp names another version.
func (w *walk) updateSnapshot() error {
	want := w.tm.Timestamp.Signed.Meta["snapshot.json"].Version
	if b := w.stored("snapshot.json"); b != nil {
		w.tm.UpdateSnapshot(b, true)
	}
	if w.tm.Snapshot != nil && w.tm.Snapshot.Signed.Version == want {
		return nil
	}
	if !w.remote {
		return &Error{Kind: ErrUnreachable, Err: errors.New("the stored snapshot does not match the stored timestamp")}
	}
	b, err := w.fetch(fmt.Sprintf("%d.snapshot.json", want))
	if err != nil {
		return &Error{Kind: classify(err, phaseRefresh), Err: err}
	}
	if _, err := w.tm.UpdateSnapshot(b, false); err != nil {
		return &Error{Kind: classify(err, phaseRefresh), Err: fmt.Errorf("snapshot: %w", err)}
	}
	w.fresh["snapshot.json"] = b
	return nil
}

// updateTargets loads the targets role, which must verify, then every org role
// it delegates to and their repository roles, which may fail one by one: the
// graph stands without them (a revoked publisher's role, an expired one).
func (w *walk) updateTargets() (*graph, error) {
	targets, err := w.loadRole(metadata.TARGETS, metadata.ROOT)
	if err != nil {
		return nil, &Error{Kind: classify(err, phaseRefresh), Err: err}
	}
	tm := w.tm
	g := &graph{
		snapshot: tm.Snapshot.Signed.Version,
		expires:  earliest(tm.Root.Signed.Expires, tm.Timestamp.Signed.Expires, tm.Snapshot.Signed.Expires, targets.Signed.Expires),
	}
	if targets.Signed.Delegations != nil {
		for _, org := range targets.Signed.Delegations.Roles {
			w.updateOrg(g, org)
		}
	}
	return g, nil
}

// updateOrg adds an org role and the repository roles it delegates to to g. A
// repository role the snapshot does not list was delegated but never signed:
// it has no targets, but its keys are known.
func (w *walk) updateOrg(g *graph, org metadata.DelegatedRole) {
	orgMD, err := w.loadRole(org.Name, metadata.TARGETS)
	if err != nil {
		g.problems = append(g.problems, err)
		return
	}
	g.roles = append(g.roles, reachedRole{chain: []metadata.DelegatedRole{org}, md: orgMD, delegatorExpires: orgMD.Signed.Expires})
	if orgMD.Signed.Delegations == nil {
		return
	}
	for _, repo := range orgMD.Signed.Delegations.Roles {
		r := reachedRole{
			chain:            []metadata.DelegatedRole{org, repo},
			keys:             delegatedKeys(orgMD.Signed.Delegations, repo),
			threshold:        repo.Threshold,
			delegatorExpires: orgMD.Signed.Expires,
		}
		if _, published := w.tm.Snapshot.Signed.Meta[repo.Name+".json"]; published {
			if r.md, err = w.loadRole(repo.Name, org.Name); err != nil {
				g.problems = append(g.problems, err)
				continue
			}
		}
		g.roles = append(g.roles, r)
	}
}

// delegatedKeys returns the keys of delegations that role is delegated to
// (never nil, so a repository role always has its keys known, if none).
func delegatedKeys(d *metadata.Delegations, role metadata.DelegatedRole) []*metadata.Key {
	keys := make([]*metadata.Key, 0, len(role.KeyIDs))
	for _, id := range role.KeyIDs {
		if k, ok := d.Keys[id]; ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// loadRole verifies role, delegated by delegator, at the version the snapshot
// names: from the store when it holds that version, else from trustd.
func (w *walk) loadRole(role, delegator string) (*metadata.Metadata[metadata.TargetsType], error) {
	meta, ok := w.tm.Snapshot.Signed.Meta[role+".json"]
	if !ok {
		return nil, fmt.Errorf("%w: the snapshot does not list %s", ErrNotSigned, role)
	}
	if b := w.stored(role + ".json"); b != nil {
		if md, err := metadata.Targets().FromBytes(b); err == nil && md.Signed.Version == meta.Version {
			if md, err := w.tm.UpdateDelegatedTargets(b, role, delegator); err == nil {
				return md, nil
			}
		}
	}
	if !w.remote {
		return nil, fmt.Errorf("%w: %s v%d is not stored", ErrUnreachable, role, meta.Version)
	}
	b, err := w.fetch(fmt.Sprintf("%d.%s.json", meta.Version, role))
	if err != nil {
		return nil, err
	}
	md, err := w.tm.UpdateDelegatedTargets(b, role, delegator)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	w.fresh[role+".json"] = b
	return md, nil
}

// publish saves what the walk fetched, then serves v; problems are the
// delegated roles v stands without, which are not the refresh's failure.
func (ix *Index) publish(ctx context.Context, fresh map[string][]byte, v *indexView, problems []error) error {
	for name, b := range fresh {
		if err := ix.cfg.Store.Save(ctx, name, b); err != nil {
			return fmt.Errorf("verify: saving %s: %w", name, err)
		}
		ix.raw[name] = b
	}
	ix.mu.Lock()
	ix.view = v
	ix.problems = problems
	ix.mu.Unlock()
	return nil
}
