// Package tuf is trustd's TUF repository: the trust graph root → targets →
// organisations → repositories (DESIGN.md §2). It validates and publishes the
// offline-signed roles that operators, organisations and publishers upload, signs
// snapshot and timestamp with its online keys, and serves consistent snapshots.
//
// Its main invariant: what it serves as current is always one whole committed
// state, named by head.json (see layout.go). A publish commits with one conditional
// write of head.json; a publish killed before it changes nothing, and two writers
// (two batches, two replicas) never both win. Concurrent publishes are batched into
// one new snapshot and timestamp (group commit, commit.go).
//
// Scale. The snapshot lists every role, so it grows linearly with repositories
// (about 60 bytes each: 10,000 repositories ≈ 0.6 MB) and a client downloads it
// whole whenever anything changed; each commit re-signs it (about 100 ms at 10k
// roles on a 2-core machine), which group commit amortises over concurrent
// publishes (TestScale, SIGNET_SCALE=1: p50 107 ms with one publisher, 143 ms
// with 64). A client that finds nothing changed costs one timestamp request (plus
// go-tuf's 404 probe for a newer root: 2 requests, ~600 bytes). At a million repositories the snapshot would be ~60 MB per change
// and per commit: the path there is either one TUF repository per organisation
// (trustd serving many small repositories, each with its own snapshot; a client
// pins the top-level root and learns each org repository's root from it, as TAP 4
// maps namespaces to repositories), or TAP 16's snapshot Merkle trees, where the
// timestamp signs a Merkle root over the role versions and a client fetches only
// the path for the roles it walks (a few KB), once go-tuf supports it.
package tuf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/trustnames"
)

// Config sets the repository's online signing.
type Config struct {
	// TimestampExpiry and SnapshotExpiry are the lifetimes of what trustd signs.
	TimestampExpiry time.Duration
	SnapshotExpiry  time.Duration
	// ResignBefore: trustd re-signs the timestamp (and the snapshot) when it would
	// expire within this long.
	ResignBefore time.Duration
	// Now is the clock (time.Now when nil); tests move it.
	Now func() time.Time
	// Log receives commit failures and re-signing notes (discarded when nil).
	Log *slog.Logger
	// OnPublish, when not nil, records every publish before it is answered.
	OnPublish OnPublish
	// OnRelease, when not nil, records every release ReleaseReady makes: the
	// held version of role published, res.Released with it, by no request.
	OnRelease func(ctx context.Context, role string, res PublishResult) error
}

// Repo is the TUF repository on a storage driver. Its methods are safe for
// concurrent use, also by several processes sharing the driver.
type Repo struct {
	cfg     Config
	st      store
	snapKey *onlineKey
	tsKey   *onlineKey
	// online maps snapshot and timestamp to the key ID every root must name.
	online map[string]string

	mu       sync.RWMutex
	cur      *state // nil until initialised
	loadedAt time.Time
	reloadMu sync.Mutex

	// commitMu serialises this process's commits: batches, init and re-signing.
	commitMu sync.Mutex
	// releaseMu serialises this process's releases of held versions (held.go):
	// of two first versions completing one held version's set at once, the
	// second sees the first's.
	releaseMu sync.Mutex
	// movedHead is the head version whose pending files are known moved.
	movedHead string

	q queue
}

// New opens the repository on d: its online keys (made on first start) and its
// current state, finishing the moves of a commit that a crash interrupted.
func New(ctx context.Context, d driver.Driver, cfg Config) (*Repo, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.TimestampExpiry <= 0 || cfg.SnapshotExpiry <= 0 || cfg.ResignBefore <= 0 || cfg.ResignBefore >= cfg.TimestampExpiry {
		return nil, errors.New("tuf: expiries must be positive and resignBefore shorter than timestampExpiry")
	}
	r := &Repo{cfg: cfg, st: store{d: d}}
	var err error
	if r.snapKey, err = loadOnlineKey(ctx, d, snapshotKeyPath); err != nil {
		return nil, err
	}
	if r.tsKey, err = loadOnlineKey(ctx, d, timestampKeyPath); err != nil {
		return nil, err
	}
	r.online = map[string]string{trustnames.RoleSnapshot: r.snapKey.id, trustnames.RoleTimestamp: r.tsKey.id}
	s, err := r.st.load(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("loading the TUF repository: %w", err)
	}
	if s != nil {
		if err := r.st.finishMoves(ctx, &s.head); err != nil {
			return nil, err
		}
		r.movedHead = s.headVer
	}
	r.cur, r.loadedAt = s, cfg.Now()
	return r, nil
}

// OnlineKeys returns the TUF keys of trustd's snapshot and timestamp roles, which
// a root must name.
func (r *Repo) OnlineKeys() (snapshot, timestamp *metadata.Key) {
	return r.snapKey.key, r.tsKey.key
}

// current is the state this process last committed or loaded.
func (r *Repo) current() *state {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cur
}

// setCurrent installs s unless a newer state is already installed (a reload
// racing with a commit). Every commit makes a new timestamp, so its version orders
// states.
func (r *Repo) setCurrent(s *state) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil || s.timestamp.Signed.Version > r.cur.timestamp.Signed.Version {
		r.cur = s
	}
	r.loadedAt = r.cfg.Now()
}

// fresh returns the current state, first reading head.json again when the last
// read is more than a second old, so a replica serves what another committed.
func (r *Repo) fresh(ctx context.Context) *state {
	r.mu.RLock()
	s, at := r.cur, r.loadedAt
	r.mu.RUnlock()
	if r.cfg.Now().Sub(at) < time.Second || !r.reloadMu.TryLock() {
		return s
	}
	defer r.reloadMu.Unlock()
	n, err := r.st.load(ctx, s)
	if err != nil {
		r.cfg.Log.Warn("reloading the TUF repository's head", "err", err)
		return s
	}
	if n == nil {
		return s
	}
	r.setCurrent(n)
	return r.current()
}

// reload reads head.json again (after losing a commit race). Called with commitMu.
func (r *Repo) reload(ctx context.Context) (*state, error) {
	n, err := r.st.load(ctx, r.current())
	if err != nil {
		return nil, err
	}
	if n != nil {
		r.setCurrent(n)
	}
	return r.current(), nil
}

// Timestamp returns the current timestamp.json (nil before Init).
func (r *Repo) Timestamp() []byte {
	if s := r.current(); s != nil {
		return s.timestampRaw
	}
	return nil
}
