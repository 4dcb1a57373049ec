package tuf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/trustnames"
)

// Group commit. A publish that passed validation writes its pending file, joins the
// queue and waits. One committer goroutine at a time (started by the first publish
// that finds none running, ending when the queue is empty) takes everything queued
// as one batch: it validates each entry again against the state the batch builds
// (so an org role and a repository role it newly delegates can share a batch, and
// of two uploads of one role version only the first wins), signs one snapshot and
// one timestamp for the whole batch, and commits them with one put-if-match of
// head.json. Every publish in the batch then gets its answer.

// request is one publish waiting in the queue: one role version, a held
// version (hold), or held versions released with the first versions of the
// roles they delegate, top-down, committed together or not at all.
type request struct {
	entries []entry
	hold    bool
	done    chan error
}

// entry is one role version of a request, with its bytes and their sha256.
// heldSum, for a held version being released, is the sha256 of the held file
// it must still be when the batch commits.
type entry struct {
	u       *upload
	raw     []byte
	sum     string
	heldSum string
}

type queue struct {
	mu      sync.Mutex
	items   []*request
	running bool

	commits   atomic.Int64
	published atomic.Int64
}

// Stats counts commits, for measuring group commit.
type Stats struct {
	// Commits is the number of new heads this process committed.
	Commits int64
	// Published is the number of role versions those commits published.
	Published int64
}

// Stats returns the counts so far.
func (r *Repo) Stats() Stats {
	return Stats{Commits: r.q.commits.Load(), Published: r.q.published.Load()}
}

// enqueue adds req to the queue, starting the committer if none runs.
func (r *Repo) enqueue(req *request) {
	r.q.mu.Lock()
	r.q.items = append(r.q.items, req)
	start := !r.q.running
	r.q.running = true
	r.q.mu.Unlock()
	if start {
		go r.commitLoop()
	}
}

func (r *Repo) commitLoop() {
	for {
		r.q.mu.Lock()
		batch := r.q.items
		r.q.items = nil
		if len(batch) == 0 {
			r.q.running = false
			r.q.mu.Unlock()
			return
		}
		r.q.mu.Unlock()
		r.commitBatch(context.Background(), batch)
	}
}

// maxCommitAttempts bounds the retries of a batch that lost head.json to another
// replica.
const maxCommitAttempts = 8

func (r *Repo) commitBatch(ctx context.Context, batch []*request) {
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	answered := make([]bool, len(batch))
	answer := func(i int, err error) {
		if !answered[i] {
			answered[i] = true
			batch[i].done <- err
		}
	}
	defer func() {
		for i := range batch {
			answer(i, errors.New("tuf: the commit gave up after losing the head to other writers"))
		}
	}()
	base := r.current()
	for attempt := 0; attempt < maxCommitAttempts; attempt++ {
		now := r.cfg.Now()
		ws := base.fork()
		var accepted []int
		var changed []pendingRef
		newSnapshot := false
		for i, req := range batch {
			if answered[i] {
				continue
			}
			trial := ws.fork()
			refs, err := trial.applyRequest(req, now, r.online)
			if err != nil {
				answer(i, err)
				continue
			}
			*ws = *trial
			accepted = append(accepted, i)
			changed = append(changed, refs...)
			newSnapshot = newSnapshot || !req.hold
		}
		if len(accepted) == 0 {
			return
		}
		err := r.commit(ctx, base, ws, changed, newSnapshot, now)
		if errors.Is(err, driver.ErrPreconditionFailed) {
			if base, err = r.reload(ctx); err == nil {
				continue
			}
		}
		r.q.published.Add(int64(len(changed)) * boolInt(err == nil))
		for _, i := range accepted {
			answer(i, err)
		}
		return
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// applyRequest validates req's role versions again against the working state ws
// and applies them, returning the pending files of those it publishes. On error
// ws may be half changed: the caller applies to a fork.
func (ws *state) applyRequest(req *request, now time.Time, online map[string]string) ([]pendingRef, error) {
	if req.hold {
		e := req.entries[0]
		res, err := ws.validate(e.u, now, online)
		switch {
		case err != nil:
			return nil, err
		case !res.met:
			return nil, errConflict("%s changed while this publish waited: %s now needs %d signatures, this upload has %d; publish again", e.u.role, res.by, res.need, res.have)
		case len(res.unpublished) == 0:
			return nil, errConflict("%s version %d: the roles it delegates were published while it waited; publish it again", e.u.role, e.u.version())
		case res.heldParent != "" && e.u.version() != 1:
			return nil, errConflict("%s is delegated only by the held version of %s; its first version comes first", e.u.role, res.heldParent)
		}
		if ws.held == nil {
			ws.held = map[string]*heldVersion{}
		}
		ws.held[e.u.role] = &heldVersion{md: e.u.targets, raw: e.raw, ref: pendingRef{Role: e.u.role, Version: e.u.version(), SHA256: sha256Hex(e.raw)}}
		return nil, nil
	}
	var refs []pendingRef
	for _, e := range req.entries {
		if e.heldSum != "" {
			if h := ws.held[e.u.role]; h == nil || h.ref.SHA256 != e.heldSum {
				return nil, errConflict("the held version of %s changed while this publish waited; publish again", e.u.role)
			}
		}
		res, err := ws.validate(e.u, now, online)
		switch {
		case err != nil:
			return nil, err
		case !res.met:
			return nil, errConflict("%s changed while this publish waited: %s now needs %d signatures, this upload has %d; publish again", e.u.role, res.by, res.need, res.have)
		case res.heldParent != "":
			return nil, errConflict("%s is delegated only by the held version of %s, which changed while this publish waited; publish again", e.u.role, res.heldParent)
		case len(res.unpublished) > 0 && e.heldSum == "":
			return nil, errConflict("%s version %d now delegates roles without metadata (%s); publish it again", e.u.role, e.u.version(), strings.Join(res.unpublished, ", "))
		}
		ws.apply(e.u, e.raw)
		refs = append(refs, pendingRef{Role: e.u.role, Version: e.u.version(), SHA256: e.sum})
	}
	// What the snapshot will list: every role the published versions delegate.
	for _, e := range req.entries {
		if e.u.kind == kindTargets || e.u.kind == kindOrg {
			if left := ws.unpublished(e.u.targets); len(left) > 0 {
				return nil, errConflict("%s version %d would be published without metadata for %s; publish again", e.u.role, e.u.version(), strings.Join(left, ", "))
			}
		}
	}
	return refs, nil
}

// apply makes u current in the working state ws. A published version of a
// delegating role discards its held version.
func (ws *state) apply(u *upload, raw []byte) {
	v := u.version()
	switch u.kind {
	case kindRoot:
		ws.root, ws.rootRaw = u.root, raw
		return
	case kindTargets:
		ws.targets = u.targets
	case kindOrg:
		ws.indexOrg(u.role, ws.orgs[u.role], u.targets)
	}
	delete(ws.held, u.role)
	ws.snapshot.Signed.Meta[u.role+".json"] = &metadata.MetaFiles{Version: v}
}

// commit signs a new timestamp (and, when newSnapshot, a new snapshot) for the
// working state ws built on base, writes the pending snapshot, and swaps head.json
// with put-if-match against base (put-if-absent when base is nil): the commit
// point. changed lists the pending files ws adds. On success ws becomes current.
// driver.ErrPreconditionFailed means another writer committed first.
// Called with commitMu held.
func (r *Repo) commit(ctx context.Context, base, ws *state, changed []pendingRef, newSnapshot bool, now time.Time) error {
	if base != nil && r.movedHead != base.headVer {
		// The head being replaced must be whole in meta/ first: the new head
		// will no longer name its pending files.
		if err := r.st.finishMoves(ctx, &base.head); err != nil {
			return err
		}
		r.movedHead = base.headVer
	}
	if newSnapshot {
		snap := &snapshotMD{Signed: metadata.SnapshotType{
			Type:        metadata.SNAPSHOT,
			SpecVersion: metadata.SPECIFICATION_VERSION,
			Version:     ws.snapshot.Signed.Version + 1,
			Expires:     now.Add(r.cfg.SnapshotExpiry).UTC().Truncate(time.Second),
			Meta:        ws.snapshot.Signed.Meta, // every entry kept: roles are never dropped
		}}
		raw, err := signWith(snap, r.snapKey)
		if err != nil {
			return fmt.Errorf("signing snapshot: %w", err)
		}
		ws.snapshot, ws.snapshotRaw = snap, raw
		sum := sha256Hex(raw)
		if _, err := r.st.d.PutContent(ctx, pendingPath(trustnames.RoleSnapshot, snap.Signed.Version, sum), raw); err != nil {
			return fmt.Errorf("writing snapshot version %d: %w", snap.Signed.Version, err)
		}
		changed = append(changed, pendingRef{Role: trustnames.RoleSnapshot, Version: snap.Signed.Version, SHA256: sum})
	}
	var tsVersion int64 = 1
	if ws.timestamp != nil {
		tsVersion = ws.timestamp.Signed.Version + 1
	}
	ts := &timestampMD{Signed: metadata.TimestampType{
		Type:        metadata.TIMESTAMP,
		SpecVersion: metadata.SPECIFICATION_VERSION,
		Version:     tsVersion,
		Expires:     now.Add(r.cfg.TimestampExpiry).UTC().Truncate(time.Second),
		Meta: map[string]*metadata.MetaFiles{"snapshot.json": {
			Version: ws.snapshot.Signed.Version,
			Length:  int64(len(ws.snapshotRaw)),
			Hashes:  metadata.Hashes{"sha256": sha256Sum(ws.snapshotRaw)},
		}},
	}}
	tsRaw, err := signWith(ts, r.tsKey)
	if err != nil {
		return fmt.Errorf("signing timestamp: %w", err)
	}
	ws.timestamp, ws.timestampRaw = ts, tsRaw
	ws.head = headRecord{Timestamp: tsRaw, Root: ws.root.Signed.Version, Snapshot: ws.snapshot.Signed.Version, Changed: changed, Held: ws.heldRefs()}
	data, err := json.Marshal(ws.head)
	if err != nil {
		return err
	}
	cond := driver.Condition{IfAbsent: true}
	if base != nil {
		cond = driver.Condition{IfMatch: base.headVer}
	}
	ver, err := r.st.d.PutContentIf(ctx, headPath, data, cond)
	if err != nil {
		return err
	}
	ws.headVer = ver
	r.setCurrent(ws)
	r.q.commits.Add(1)
	if err := r.st.finishMoves(ctx, &ws.head); err != nil {
		r.cfg.Log.Warn("moving committed TUF metadata; the next commit retries", "err", err)
	} else {
		r.movedHead = ver
	}
	return nil
}
