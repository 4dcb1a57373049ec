package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/signet-oss/signet/trustnames"
)

// Index is a long-lived, verified view of the whole trust graph: every current
// target of every repository, for the registry's admission gate. Unlike Client,
// which walks towards one target per call, an Index keeps go-tuf's trusted
// metadata between refreshes, persists it through a MetadataStore (so a restarted
// or new replica can never be rolled back to older metadata than it has seen),
// and answers lookups from memory.
//
// Invariants:
//   - Lookups never block on the network; they read the last verified view.
//   - Refreshes are single-flight and start at most once per MinInterval, and a
//     caller always gets a refresh that started after it asked: a flood of
//     misses costs at most two refreshes a second, and a target published just
//     before a push is seen by that push.
//   - A view is served until its top-level metadata (root, timestamp, snapshot,
//     targets) expires, even while trustd is unreachable; after that every lookup
//     fails with ErrExpired (fail closed). A delegated role that expired drops
//     only its own targets.
//   - Every indexed target lies inside the paths of each delegation on its chain
//     (targets → org-<org> → repo-<hash>), checked here, not assumed.
type Index struct {
	cfg     IndexConfig
	metaURL string
	origin  string

	mu   sync.RWMutex
	view *indexView
	err  error // the last refresh's error, nil after a success
	// lastSuccess is when a refresh from trustd last succeeded (zero before).
	lastSuccess time.Time
	// problems are the delegated roles the view left out, and why.
	problems []error

	refreshMu sync.Mutex
	workMu    sync.Mutex // held by the one refresh or load at work; guards raw
	// lastStart is when the last finished refresh started; inflight is closed
	// when the running one (started at inflightStart) ends.
	lastStart, inflightStart time.Time
	inflight                 chan struct{}
	refreshes                int64
	// lastRootProbe is when trustd was last asked for a newer root (guarded
	// by workMu).
	lastRootProbe time.Time
	// raw holds the verified bytes of every metadata file of the view.
	raw map[string][]byte
}

// MetadataStore keeps the verified metadata between processes. Load returns
// an error matching ErrNotStored when name was never saved.
type MetadataStore interface {
	Load(ctx context.Context, name string) ([]byte, error)
	Save(ctx context.Context, name string, data []byte) error
}

// ErrNotStored is what a MetadataStore's Load returns for a name never saved.
var ErrNotStored = errors.New("verify: metadata not stored")

// IndexConfig configures an Index.
type IndexConfig struct {
	// TrustdURL is trustd's base URL; metadata is under <TrustdURL>/tuf/.
	TrustdURL string
	// Root is the pinned root.json.
	Root []byte
	// Store keeps the verified metadata (required).
	Store MetadataStore
	// HTTPClient, Token and Now as in Config.
	HTTPClient *http.Client
	Token      func(ctx context.Context) (string, error)
	Now        func() time.Time
	// MinInterval is the shortest time between two refreshes (default 1s).
	MinInterval time.Duration
	// MaxLength bounds every metadata download (default DefaultSnapshotMaxLength).
	MaxLength int64
	// RootCheckInterval is how often a refresh first asks trustd for a newer
	// root (default 5 minutes). In between, a refresh where nothing changed is
	// one request (the timestamp); a timestamp that no longer verifies with the
	// held root (its keys rotated) makes the refresh ask at once.
	RootCheckInterval time.Duration
}

// RepoTargets is what the trust graph says of one repository.
type RepoTargets struct {
	// Tags maps a tag to its target (<repo>:<tag>).
	Tags map[string]*Target
	// Digests maps a digest to its target (<repo>@<digest>).
	Digests map[digest.Digest]*Target
	// Covered holds every manifest digest a current target or its closure
	// vouches for.
	Covered map[digest.Digest]bool
	// Keys are the publisher keys the repository's role is delegated to, and
	// Threshold how many must agree.
	Keys      []*metadata.Key
	Threshold int

	// expires is when the earliest delegated role these targets come through
	// (org-<org>, repo-<hash>) expires: the view may outlive it.
	expires time.Time
}

// indexView is one immutable verified view.
type indexView struct {
	repos   map[string]*RepoTargets
	expires time.Time
	// snapshot is the snapshot version the view was built from.
	snapshot int64
	built    time.Time
}

// NewIndex checks cfg; Load then Refresh make it useful.
func NewIndex(cfg IndexConfig) (*Index, error) {
	if cfg.Store == nil {
		return nil, errors.New("verify: an index needs a metadata store")
	}
	u, err := url.Parse(strings.TrimSuffix(cfg.TrustdURL, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("verify: trustd URL %q is not an http(s) URL", cfg.TrustdURL)
	}
	if _, err := metadata.Root().FromBytes(cfg.Root); err != nil {
		return nil, fmt.Errorf("verify: the pinned root.json is unreadable: %w", err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = time.Second
	}
	if cfg.MaxLength <= 0 {
		cfg.MaxLength = DefaultSnapshotMaxLength
	}
	if cfg.RootCheckInterval <= 0 {
		cfg.RootCheckInterval = 5 * time.Minute
	}
	return &Index{cfg: cfg, metaURL: u.String() + "/tuf/", origin: u.Scheme + "://" + u.Host, raw: map[string][]byte{}}, nil
}

// Lookup returns what the current view says of repo (nil if nothing), or an error
// matching ErrExpired when the view has expired, or ErrUnreachable when no view
// was ever built.
func (ix *Index) Lookup(repo string) (*RepoTargets, error) {
	ix.mu.RLock()
	v, lastErr := ix.view, ix.err
	ix.mu.RUnlock()
	if v == nil {
		if lastErr == nil {
			lastErr = errors.New("no trust metadata yet")
		}
		return nil, &Error{Kind: ErrUnreachable, Target: repo, Err: lastErr}
	}
	if !ix.cfg.Now().Before(v.expires) {
		return nil, &Error{Kind: ErrExpired, Target: repo, Err: fmt.Errorf("the trust metadata expired at %s and could not be refreshed: %v", v.expires.Format(time.RFC3339), lastErr)}
	}
	rt := v.repos[repo]
	if rt != nil && !ix.cfg.Now().Before(rt.expires) {
		// Its role expired after the view was built: its targets are gone.
		return nil, nil
	}
	return rt, nil
}

// Refreshes returns how many refreshes have reached trustd.
func (ix *Index) Refreshes() int64 {
	ix.refreshMu.Lock()
	defer ix.refreshMu.Unlock()
	return ix.refreshes
}

// Status returns when the view was built, when it expires, and the last
// refresh's error.
func (ix *Index) Status() (built, expires time.Time, err error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.view == nil {
		return time.Time{}, time.Time{}, ix.err
	}
	return ix.view.built, ix.view.expires, ix.err
}

// Refresh brings the view up to date with trustd: it returns the outcome of a
// refresh that started after the call, so what trustd published before the call
// is seen. Refreshes are single-flight and start at most once per MinInterval:
// concurrent callers share one, and a call during the pause waits for the next.
// So a flood of misses costs at most two refreshes a second.
func (ix *Index) Refresh(ctx context.Context) error {
	arrived := time.Now()
	for {
		ix.refreshMu.Lock()
		if ch := ix.inflight; ch != nil {
			started := ix.inflightStart
			ix.refreshMu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
			if !started.Before(arrived) {
				return ix.lastErr()
			}
			continue
		}
		if !ix.lastStart.IsZero() && !ix.lastStart.Before(arrived) {
			ix.refreshMu.Unlock()
			return ix.lastErr()
		}
		if wait := time.Until(ix.lastStart.Add(ix.cfg.MinInterval)); !ix.lastStart.IsZero() && wait > 0 {
			ix.refreshMu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
			continue
		}
		ch := make(chan struct{})
		ix.inflight, ix.inflightStart = ch, time.Now()
		ix.refreshes++
		ix.refreshMu.Unlock()

		err := ix.refresh(context.WithoutCancel(ctx), true)

		ix.refreshMu.Lock()
		ix.inflight, ix.lastStart = nil, ix.inflightStart
		ix.refreshMu.Unlock()
		close(ch)
		return err
	}
}

func (ix *Index) lastErr() error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.err
}

// Load builds the view from the stored metadata alone (no network), so a
// restarted registry serves at once; the stored state is also what later
// refreshes must not roll back from.
func (ix *Index) Load(ctx context.Context) error {
	return ix.refresh(ctx, false)
}

// refresh runs one update: stored metadata first, then (remote) trustd's.
func (ix *Index) refresh(ctx context.Context, remote bool) (err error) {
	ix.workMu.Lock()
	defer ix.workMu.Unlock()
	defer func() {
		ix.mu.Lock()
		ix.err = err
		if err == nil && remote {
			ix.lastSuccess = ix.cfg.Now()
		}
		ix.mu.Unlock()
	}()
	probe := remote && time.Since(ix.lastRootProbe) >= ix.cfg.RootCheckInterval
	err = ix.update(ctx, remote, probe)
	var rootErr *rootSuspect
	if errors.As(err, &rootErr) && !probe {
		// The timestamp did not verify with the root we hold: the root may
		// have rotated since the last probe. Probe now, once.
		err = ix.update(ctx, remote, true)
	}
	if errors.As(err, &rootErr) {
		err = rootErr.err
	}
	return err
}

// rootSuspect wraps a timestamp that failed to verify against the held root.
type rootSuspect struct{ err error }

func (e *rootSuspect) Error() string { return e.err.Error() }

// update runs one update (the caller holds workMu): stored metadata first, then,
// when remote, trustd's; probeRoot asks trustd for a newer root first.
func (ix *Index) update(ctx context.Context, remote, probeRoot bool) error {
	f := &fetcher{ctx: ctx, hc: ix.cfg.HTTPClient, token: ix.cfg.Token, origin: ix.origin}
	stored := func(name string) []byte {
		if b, ok := ix.raw[name]; ok {
			return b
		}
		b, err := ix.cfg.Store.Load(ctx, name)
		if err != nil {
			return nil
		}
		return b
	}
	fetch := func(name string) ([]byte, error) {
		return f.DownloadFile(ix.metaURL+name, ix.cfg.MaxLength, 0)
	}
	fresh := map[string][]byte{}

	// Root: the newest stored root verified from the pinned one, then trustd's.
	tm, err := trustedmetadata.New(ix.cfg.Root)
	if err != nil {
		return &Error{Kind: ErrInvalidMetadata, Err: err}
	}
	tm.RefTime = ix.cfg.Now().UTC()
	if b := stored("root.json"); b != nil {
		if r, err := metadata.Root().FromBytes(b); err == nil && r.Signed.Version > tm.Root.Signed.Version {
			// Stored roots were verified when they were saved; walk the chain
			// again from the pinned root so a tampered store cannot jump it.
			for v := tm.Root.Signed.Version + 1; v <= r.Signed.Version; v++ {
				rb := stored(fmt.Sprintf("%d.root.json", v))
				if rb == nil {
					break
				}
				if _, err := tm.UpdateRoot(rb); err != nil {
					return &Error{Kind: ErrInvalidMetadata, Err: fmt.Errorf("stored root v%d: %w", v, err)}
				}
			}
		}
	}
	if probeRoot {
		ix.lastRootProbe = time.Now()
		for range 64 {
			next := tm.Root.Signed.Version + 1
			b, err := f.DownloadFile(fmt.Sprintf("%s%d.root.json", ix.metaURL, next), ix.cfg.MaxLength, 0)
			var httpErr *metadata.ErrDownloadHTTP
			if errors.As(err, &httpErr) && (httpErr.StatusCode == 404 || httpErr.StatusCode == 403) {
				break
			}
			if err != nil {
				return &Error{Kind: classify(err, phaseRefresh), Err: err}
			}
			if _, err := tm.UpdateRoot(b); err != nil {
				return &Error{Kind: classify(err, phaseRefresh), Err: fmt.Errorf("root v%d: %w", next, err)}
			}
			fresh[fmt.Sprintf("%d.root.json", next)] = b
			fresh["root.json"] = b
		}
	}
	if tm.Root.Signed.IsExpired(tm.RefTime) {
		return &Error{Kind: ErrExpired, Err: errors.New("root.json is expired")}
	}

	// Timestamp: stored, then trustd's; an equal version means nothing changed.
	if b := stored("timestamp.json"); b != nil {
		tm.UpdateTimestamp(b) // an expired stored one still bounds rollback
	}
	unchanged := false
	if remote {
		b, err := fetch("timestamp.json")
		if err != nil {
			return &Error{Kind: classify(err, phaseRefresh), Err: err}
		}
		if _, err := tm.UpdateTimestamp(b); err != nil {
			var equal *metadata.ErrEqualVersionNumber
			var unsigned *metadata.ErrUnsignedMetadata
			if errors.As(err, &unsigned) && !probeRoot {
				return &rootSuspect{&Error{Kind: classify(err, phaseRefresh), Err: fmt.Errorf("timestamp: %w", err)}}
			}
			if !errors.As(err, &equal) {
				return &Error{Kind: classify(err, phaseRefresh), Err: fmt.Errorf("timestamp: %w", err)}
			}
			unchanged = true
		} else {
			fresh["timestamp.json"] = b
		}
	}
	if tm.Timestamp == nil {
		return &Error{Kind: ErrUnreachable, Err: errors.New("no timestamp stored or fetched")}
	}
	if unchanged && ix.view != nil && fresh["root.json"] == nil {
		return nil
	}

	// Snapshot: stored (trusted), then trustd's when the timestamp names another.
	want := tm.Timestamp.Signed.Meta["snapshot.json"].Version
	if b := stored("snapshot.json"); b != nil {
		tm.UpdateSnapshot(b, true)
	}
	if tm.Snapshot == nil || tm.Snapshot.Signed.Version != want {
		if !remote {
			return &Error{Kind: ErrUnreachable, Err: errors.New("the stored snapshot does not match the stored timestamp")}
		}
		b, err := fetch(fmt.Sprintf("%d.snapshot.json", want))
		if err != nil {
			return &Error{Kind: classify(err, phaseRefresh), Err: err}
		}
		if _, err := tm.UpdateSnapshot(b, false); err != nil {
			return &Error{Kind: classify(err, phaseRefresh), Err: fmt.Errorf("snapshot: %w", err)}
		}
		fresh["snapshot.json"] = b
	}

	// Roles: each at the version the snapshot names, from the store when it
	// holds that version, else from trustd.
	load := func(role, delegator string) (*metadata.Metadata[metadata.TargetsType], error) {
		meta, ok := tm.Snapshot.Signed.Meta[role+".json"]
		if !ok {
			return nil, fmt.Errorf("%w: the snapshot does not list %s", ErrNotSigned, role)
		}
		if b := stored(role + ".json"); b != nil {
			if md, err := metadata.Targets().FromBytes(b); err == nil && md.Signed.Version == meta.Version {
				if md, err := tm.UpdateDelegatedTargets(b, role, delegator); err == nil {
					return md, nil
				}
			}
		}
		if !remote {
			return nil, fmt.Errorf("%w: %s v%d is not stored", ErrUnreachable, role, meta.Version)
		}
		b, err := fetch(fmt.Sprintf("%d.%s.json", meta.Version, role))
		if err != nil {
			return nil, err
		}
		md, err := tm.UpdateDelegatedTargets(b, role, delegator)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", role, err)
		}
		fresh[role+".json"] = b
		return md, nil
	}
	targets, err := load(metadata.TARGETS, metadata.ROOT)
	if err != nil {
		return &Error{Kind: classify(err, phaseRefresh), Err: err}
	}
	v := &indexView{repos: map[string]*RepoTargets{}, snapshot: tm.Snapshot.Signed.Version, built: ix.cfg.Now()}
	v.expires = earliest(tm.Root.Signed.Expires, tm.Timestamp.Signed.Expires, tm.Snapshot.Signed.Expires, targets.Signed.Expires)
	var roleErrs []error
	if targets.Signed.Delegations != nil {
		for _, org := range targets.Signed.Delegations.Roles {
			orgMD, err := load(org.Name, metadata.TARGETS)
			if err != nil {
				roleErrs = append(roleErrs, err)
				continue
			}
			ix.addTargets(v, []metadata.DelegatedRole{org}, orgMD, nil, 0, orgMD.Signed.Expires)
			if orgMD.Signed.Delegations == nil {
				continue
			}
			for _, repo := range orgMD.Signed.Delegations.Roles {
				keys := make([]*metadata.Key, 0, len(repo.KeyIDs))
				for _, id := range repo.KeyIDs {
					if k, ok := orgMD.Signed.Delegations.Keys[id]; ok {
						keys = append(keys, k)
					}
				}
				chain := []metadata.DelegatedRole{org, repo}
				if _, published := tm.Snapshot.Signed.Meta[repo.Name+".json"]; !published {
					// Delegated, never signed: no targets, but its keys are known.
					ix.addTargets(v, chain, metadata.Targets(v.expires), keys, repo.Threshold, orgMD.Signed.Expires)
					continue
				}
				repoMD, err := load(repo.Name, org.Name)
				if err != nil {
					roleErrs = append(roleErrs, err)
					continue
				}
				ix.addTargets(v, chain, repoMD, keys, repo.Threshold, orgMD.Signed.Expires)
			}
		}
	}
	// Persist what was fetched, then publish the view.
	for name, b := range fresh {
		if err := ix.cfg.Store.Save(ctx, name, b); err != nil {
			return fmt.Errorf("verify: saving %s: %w", name, err)
		}
		ix.raw[name] = b
	}
	ix.mu.Lock()
	ix.view = v
	// The view stands without the roles that failed (a revoked publisher's
	// role, an expired one): they are not the refresh's failure.
	ix.problems = roleErrs
	ix.mu.Unlock()
	return nil
}

// Problems lists the delegated roles the last refresh left out, and why.
func (ix *Index) Problems() []error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.problems
}

// addTargets indexes md's targets whose paths every delegation of chain allows.
// keys and threshold are the repository's publisher keys (for a repo role);
// delegatorExpires is when the delegating org role expires.
func (ix *Index) addTargets(v *indexView, chain []metadata.DelegatedRole, md *metadata.Metadata[metadata.TargetsType], keys []*metadata.Key, threshold int, delegatorExpires time.Time) {
	now := ix.cfg.Now()
	if md.Signed.IsExpired(now) {
		return
	}
	expires := earliest(md.Signed.Expires, delegatorExpires)
	for path, tf := range md.Signed.Targets {
		allowed := true
		for i := range chain {
			if ok, err := chain[i].IsDelegatedPath(path); err != nil || !ok {
				allowed = false
				break
			}
		}
		if !allowed {
			continue
		}
		t, err := targetOf(path, tf)
		if err != nil {
			continue
		}
		repo, ref, isDigest, ok := trustnames.SplitTarget(path)
		if !ok {
			continue
		}
		rt := v.repos[repo]
		if rt == nil {
			rt = &RepoTargets{Tags: map[string]*Target{}, Digests: map[digest.Digest]*Target{}, Covered: map[digest.Digest]bool{}, expires: expires}
			v.repos[repo] = rt
		}
		rt.expires = earliest(rt.expires, expires)
		if keys != nil {
			rt.Keys, rt.Threshold = keys, threshold
		}
		if isDigest {
			rt.Digests[t.Digest] = t
		} else {
			rt.Tags[ref] = t
		}
		rt.Covered[t.Digest] = true
		for _, c := range t.Closure {
			rt.Covered[c] = true
		}
	}
	// A repository delegated but without targets yet still has its keys known.
	if keys != nil && len(chain) == 2 {
		for _, p := range chain[1].Paths {
			if repo, ok := strings.CutSuffix(p, ":*"); ok {
				if v.repos[repo] == nil {
					v.repos[repo] = &RepoTargets{Tags: map[string]*Target{}, Digests: map[digest.Digest]*Target{}, Covered: map[digest.Digest]bool{}, Keys: keys, Threshold: threshold, expires: expires}
				}
			}
		}
	}
}

func earliest(ts ...time.Time) time.Time {
	e := ts[0]
	for _, t := range ts[1:] {
		if t.Before(e) {
			e = t
		}
	}
	return e
}
