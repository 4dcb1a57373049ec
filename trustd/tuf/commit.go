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

// PublishResult is the outcome of an accepted upload.
type PublishResult struct {
	// Version is the role version published or staged.
	Version int64 `json:"version"`
	// Staged is true when the upload waits for more signatures.
	Staged bool `json:"staged,omitempty"`
	// Signatures and Threshold say how far a staged version is.
	Signatures int `json:"signatures,omitempty"`
	Threshold  int `json:"threshold,omitempty"`
	// Held is true when the version is accepted but not published: it is a
	// held version of targets or an org role, delegating Waiting, which have no
	// metadata yet; or it is a complete first version of a role only a held
	// version delegates, kept until Waiting (the held version's other new
	// roles) have theirs too.
	Held    bool      `json:"held,omitempty"`
	Waiting []Waiting `json:"waiting,omitempty"`
	// Released lists the role versions published in the same snapshot: the
	// held version of the parent and first versions of its other new roles.
	Released []Released `json:"released,omitempty"`
	// Repository is the repository of a repository role.
	Repository string `json:"-"`
	// Changes lists what a published version changed (none when staged).
	Changes []Change `json:"-"`
}

// Publish validates data as the next version of role and publishes it, or stages it
// while its signatures fall short of a threshold. Errors are *Error values.
func (r *Repo) Publish(ctx context.Context, role string, data []byte) (PublishResult, error) {
	u, err := parseUpload(role, data)
	if err != nil {
		return PublishResult{}, err
	}
	s := r.fresh(ctx)
	if s == nil {
		return PublishResult{}, ErrNotInitialised
	}
	res, err := s.validate(u, r.cfg.Now(), r.online)
	if err != nil {
		return PublishResult{}, err
	}
	if !res.met {
		if u, res, err = r.stage(ctx, s, u, res); err != nil || !res.met {
			repo, _ := s.repoOf(role)
			return PublishResult{Version: u.version(), Staged: true, Signatures: res.have, Threshold: res.need, Repository: repo}, err
		}
	}
	switch {
	case len(res.unpublished) > 0:
		return r.hold(ctx, s, u, res)
	case res.heldParent != "":
		r.releaseMu.Lock()
		defer r.releaseMu.Unlock()
		// Validate again against what this process committed meanwhile: a
		// release that just published the parent makes this a plain publish.
		if s = r.current(); s == nil {
			return PublishResult{}, ErrNotInitialised
		}
		if res, err = s.validate(u, r.cfg.Now(), r.online); err != nil {
			return PublishResult{}, err
		}
		if res.heldParent != "" && res.met {
			return r.release(ctx, s, u, res)
		}
		if !res.met {
			return PublishResult{}, errConflict("%s changed while this publish waited: %s now needs %d signatures, this upload has %d; publish again", u.role, res.by, res.need, res.have)
		}
	}
	changes, err := r.changesOf(ctx, s, u)
	if err != nil {
		return PublishResult{}, err
	}
	raw, err := u.bytes()
	if err != nil {
		return PublishResult{}, err
	}
	sum := sha256Hex(raw)
	if _, err := r.st.d.PutContent(ctx, pendingPath(role, u.version(), sum), raw); err != nil {
		return PublishResult{}, fmt.Errorf("writing %s version %d: %w", role, u.version(), err)
	}
	req := &request{entries: []entry{{u: u, raw: raw, sum: sum}}, done: make(chan error, 1)}
	r.enqueue(req)
	if err := <-req.done; err != nil {
		return PublishResult{}, err
	}
	r.clearStaged(ctx, role, u.version())
	return PublishResult{Version: u.version(), Changes: changes, Repository: s.repos[role]}, nil
}

// Init publishes the first root and targets, signed by their own thresholds, and
// snapshot and timestamp version 1. A repository that has a root refuses (409).
func (r *Repo) Init(ctx context.Context, rootData, targetsData []byte) error {
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	if s, err := r.reload(ctx); err != nil {
		return err
	} else if s != nil {
		return errConflict("the TUF repository is already initialised (root version %d)", s.root.Signed.Version)
	}
	now := r.cfg.Now()
	ru, err := parseUpload(trustnames.RoleRoot, rootData)
	if err != nil {
		return err
	}
	if ru.kind != kindRoot {
		return errInvalid("root is not a root")
	}
	res, err := (*state)(nil).validate(ru, now, r.online)
	if err != nil {
		return err
	}
	if !res.met {
		return errInvalid("root version 1 has %d of the %d signatures its root role needs", res.have, res.need)
	}
	tu, err := parseUpload(trustnames.RoleTargets, targetsData)
	if err != nil {
		return err
	}
	ws := &state{
		root:     ru.root,
		snapshot: &snapshotMD{Signed: metadata.SnapshotType{Meta: map[string]*metadata.MetaFiles{}}},
		orgs:     map[string]*targetsMD{},
		repos:    map[string]string{},
		held:     map[string]*heldVersion{},
	}
	if res, err = ws.validate(tu, now, r.online); err != nil {
		return err
	}
	if !res.met {
		return errInvalid("targets version 1 has %d of the %d signatures root gives its role", res.have, res.need)
	}
	var changed []pendingRef
	for _, u := range []*upload{ru, tu} {
		raw, err := u.bytes()
		if err != nil {
			return err
		}
		sum := sha256Hex(raw)
		if _, err := r.st.d.PutContent(ctx, pendingPath(u.role, 1, sum), raw); err != nil {
			return err
		}
		ws.apply(u, raw)
		changed = append(changed, pendingRef{Role: u.role, Version: 1, SHA256: sum})
	}
	err = r.commit(ctx, nil, ws, changed, true, now)
	if errors.Is(err, driver.ErrPreconditionFailed) {
		return errConflict("the TUF repository was just initialised by another trustd")
	}
	return err
}

// stage merges u's valid signatures into the staged copy of its signed content and
// reports how many it now has. When the merged copy meets every threshold it is
// returned to be published.
func (r *Repo) stage(ctx context.Context, s *state, u *upload, res sigResult) (*upload, sigResult, error) {
	sum, err := u.signedSum()
	if err != nil {
		return u, res, err
	}
	p := stagedPath(u.role, u.version(), sum)
	keepSignatures(u, res.valid)
	for range maxCommitAttempts {
		data, ver, err := r.st.d.GetContent(ctx, p)
		cond := driver.Condition{IfAbsent: true}
		merged := u
		switch {
		case err == nil:
			cond = driver.Condition{IfMatch: ver}
			prev, perr := parseUpload(u.role, data)
			if perr != nil {
				return u, res, fmt.Errorf("staged %s: %w", p, perr)
			}
			merged = mergeSignatures(prev, u)
		case !errors.Is(err, driver.ErrNotFound):
			return u, res, err
		}
		mres, err := s.validate(merged, r.cfg.Now(), r.online)
		if err != nil {
			return u, res, err
		}
		if mres.met {
			return merged, mres, nil
		}
		keepSignatures(merged, mres.valid)
		raw, err := merged.bytes()
		if err != nil {
			return u, res, err
		}
		_, err = r.st.d.PutContentIf(ctx, p, raw, cond)
		if errors.Is(err, driver.ErrPreconditionFailed) {
			continue // another signer staged at the same time: merge again
		}
		return merged, mres, err
	}
	return u, res, errConflict("%s version %d: too many signers at once; send it again", u.role, u.version())
}

// keepSignatures drops every signature not by one of ids.
func keepSignatures(u *upload, ids []string) {
	keep := func(sigs []metadata.Signature) []metadata.Signature {
		out := sigs[:0:0]
		for _, s := range sigs {
			for _, id := range ids {
				if s.KeyID == id {
					out = append(out, s)
					break
				}
			}
		}
		return out
	}
	if u.root != nil {
		u.root.Signatures = keep(u.root.Signatures)
	} else {
		u.targets.Signatures = keep(u.targets.Signatures)
	}
}

// mergeSignatures adds to prev the signatures of u by keys prev lacks. Both carry
// the same signed content.
func mergeSignatures(prev, u *upload) *upload {
	add := func(to, from []metadata.Signature) []metadata.Signature {
		for _, s := range from {
			found := false
			for _, t := range to {
				found = found || t.KeyID == s.KeyID
			}
			if !found {
				to = append(to, s)
			}
		}
		return to
	}
	if prev.root != nil {
		prev.root.Signatures = add(prev.root.Signatures, u.root.Signatures)
	} else {
		prev.targets.Signatures = add(prev.targets.Signatures, u.targets.Signatures)
	}
	return prev
}

// clearStaged removes staged copies of role up to version n, now published or
// superseded. Best effort: a left-over copy is never served as current.
func (r *Repo) clearStaged(ctx context.Context, role string, n int64) {
	names, err := r.st.d.List(ctx, stagedRoleDir(role))
	if err != nil {
		return
	}
	for _, p := range names {
		var v int64
		if _, err := fmt.Sscanf(p[len(stagedRoleDir(role))+1:], "%d.", &v); err == nil && v <= n {
			r.st.d.Delete(ctx, p)
		}
	}
}

// ResignIfDue re-signs the timestamp, and the snapshot too, when either expires
// within ResignBefore. It reports whether it committed a new timestamp.
func (r *Repo) ResignIfDue(ctx context.Context) (bool, error) {
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	for range maxCommitAttempts {
		base, err := r.reload(ctx)
		if err != nil || base == nil {
			return false, err
		}
		now := r.cfg.Now()
		snapDue := base.snapshot.Signed.Expires.Sub(now) <= r.cfg.ResignBefore
		tsDue := base.timestamp.Signed.Expires.Sub(now) <= r.cfg.ResignBefore
		if !snapDue && !tsDue {
			return false, nil
		}
		ws := base.fork()
		err = r.commit(ctx, base, ws, nil, snapDue, now)
		if errors.Is(err, driver.ErrPreconditionFailed) {
			continue // another replica committed: look again
		}
		if err == nil {
			r.cfg.Log.Info("re-signed TUF metadata before expiry", "timestamp", ws.timestamp.Signed.Version, "snapshot", ws.snapshot.Signed.Version, "snapshotResigned", snapDue)
		}
		return err == nil, err
	}
	return false, errors.New("tuf: re-signing lost the head to other writers too often")
}

// Run re-signs timestamp and snapshot before they expire, checking every interval
// (at most a minute, and a quarter of ResignBefore), and collects leftovers
// (Collect) every collectEvery, until ctx is done.
func (r *Repo) Run(ctx context.Context) {
	interval := min(time.Minute, r.cfg.ResignBefore/4)
	t := time.NewTicker(interval)
	defer t.Stop()
	var collected time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := r.ResignIfDue(ctx); err != nil {
				// Left failing, the timestamp expires and every registry fails
				// closed: a full disk must say what to do.
				if advice := driver.NoSpaceAdvice(err, "re-signing and publishes"); advice != "" {
					r.cfg.Log.Error(advice, "err", err)
				} else {
					r.cfg.Log.Error("re-signing TUF timestamp and snapshot", "err", err)
				}
			}
			if n, err := r.ReleaseReady(ctx); err != nil {
				r.cfg.Log.Warn("releasing held TUF metadata", "released", n, "err", err)
			}
			if now := r.cfg.Now(); now.Sub(collected) >= collectEvery {
				collected = now
				if n, err := r.Collect(ctx); err != nil {
					r.cfg.Log.Warn("collecting leftover TUF metadata", "deleted", n, "err", err)
				} else if n > 0 {
					r.cfg.Log.Info("collected leftover TUF metadata", "deleted", n)
				}
			}
		}
	}
}

// stagedCopies returns the staged copies of version n of role that parse, with
// their bytes. A copy that cannot be read or parsed is passed over: another
// signer may be replacing it, and the next merge writes a whole one.
func (r *Repo) stagedCopies(ctx context.Context, role string, n int64) ([]*upload, [][]byte, error) {
	names, err := r.st.d.List(ctx, stagedRoleDir(role))
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return nil, nil, err
	}
	var us []*upload
	var datas [][]byte
	prefix := stagedRoleDir(role) + "/" + fmt.Sprint(n) + "."
	for _, p := range names {
		if !strings.HasPrefix(p, prefix) || len(p) == len(prefix) {
			continue
		}
		data, _, err := r.st.d.GetContent(ctx, p)
		if err != nil {
			continue
		}
		u, err := parseUpload(role, data)
		if err != nil {
			continue
		}
		us, datas = append(us, u), append(datas, data)
	}
	return us, datas, nil
}

// stagedFor returns the staged copy of version n of role with the most signatures.
func (r *Repo) stagedFor(ctx context.Context, role string, n int64) ([]byte, error) {
	us, datas, err := r.stagedCopies(ctx, role, n)
	if err != nil {
		return nil, err
	}
	var best []byte
	bestSigs := -1
	for i, u := range us {
		if sigs := len(u.targetsOrRootSignatures()); sigs > bestSigs {
			best, bestSigs = datas[i], sigs
		}
	}
	if best == nil {
		return nil, errNotFound("no version %d of %s is staged", n, role)
	}
	return best, nil
}

func (u *upload) targetsOrRootSignatures() []metadata.Signature {
	if u.root != nil {
		return u.root.Signatures
	}
	return u.targets.Signatures
}
