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

	"github.com/theupdateframework/go-tuf/v2/metadata"
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
//   - Every time the index reads comes from IndexConfig.Now, never time.Now.
//
// index.go holds the type, lookups and the scheduling of refreshes; walk.go
// the metadata walk of one refresh, step by TUF step; view.go the view it
// builds.
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
	// refreshes counts the refreshes started, and numbers them; lastStart is
	// when (on the index's clock) the latest started; inflight is closed when
	// the running one ends, nil when none runs.
	refreshes int64
	lastStart time.Time
	inflight  chan struct{}
	// lastRootProbe is when trustd was last asked for a newer root (guarded
	// by workMu).
	lastRootProbe time.Time
	// raw holds the verified bytes of every metadata file of the view.
	raw map[string][]byte

	// held is what an offered timestamp is checked against (offer.go).
	held heldTrust
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
	// HTTPClient and Token as in Config.
	HTTPClient *http.Client
	Token      func(ctx context.Context) (string, error)
	// Now is the index's only clock: expiry, MinInterval and
	// RootCheckInterval are all measured on it; nil means time.Now.
	Now func() time.Time
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

// Problems lists the delegated roles the last refresh left out, and why.
func (ix *Index) Problems() []error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.problems
}

// Now is the index's clock (IndexConfig.Now): what expiry and the pause
// between refreshes are measured on. Callers that cache what a view says use
// it too, so that one clock moves them all.
func (ix *Index) Now() time.Time {
	return ix.cfg.Now()
}

// Refresh brings the view up to date with trustd: it returns the outcome of a
// refresh that started after the call, so what trustd published before the call
// is seen. Refreshes are single-flight and start at most once per MinInterval:
// concurrent callers share one, and a call during the pause waits for the next.
// So a flood of misses costs at most two refreshes a second.
//
// Refreshes are numbered as they start, and "started after the call" is
// decided by number, never by time. The pause is measured on the index's
// clock and waited out once per refresh, so a clock that stands still (in
// tests) delays a refresh by MinInterval at most.
func (ix *Index) Refresh(ctx context.Context) error {
	return ix.refreshAfter(ctx, false)
}

// refreshAfter is Refresh; now skips the pause between refreshes, for a
// refresh an offered timestamp proved worthwhile (Offer). It still shares a
// refresh that started after the call.
func (ix *Index) refreshAfter(ctx context.Context, now bool) error {
	ix.refreshMu.Lock()
	arrived := ix.refreshes // refreshes numbered above it started after the call
	var pausedAfter int64   // the refresh whose pause this call has waited out
	for {
		n, ch := ix.refreshes, ix.inflight
		if ch != nil {
			// Refresh n is running: share it if it started after the call,
			// else wait for it to end and look again.
			ix.refreshMu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
			if n > arrived {
				return ix.lastErr()
			}
			ix.refreshMu.Lock()
			continue
		}
		if n > arrived {
			ix.refreshMu.Unlock()
			return ix.lastErr()
		}
		if wait := ix.lastStart.Add(ix.cfg.MinInterval).Sub(ix.cfg.Now()); !now && n > 0 && pausedAfter != n && wait > 0 {
			ix.refreshMu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
			pausedAfter = n
			ix.refreshMu.Lock()
			continue
		}
		ch = make(chan struct{})
		ix.inflight, ix.lastStart = ch, ix.cfg.Now()
		ix.refreshes++
		ix.refreshMu.Unlock()

		err := ix.refresh(context.WithoutCancel(ctx), true)

		ix.refreshMu.Lock()
		ix.inflight = nil
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

// refresh runs one update: stored metadata first, then (remote) trustd's. It
// asks trustd for a newer root once per RootCheckInterval, and at once when
// the timestamp does not verify with the root held.
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
	probe := remote && ix.cfg.Now().Sub(ix.lastRootProbe) >= ix.cfg.RootCheckInterval
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
