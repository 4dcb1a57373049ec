package notify

import (
	"context"
	"errors"
	"time"

	"github.com/signet-oss/signet/storage/driver"
)

// Taking over what stopped processes left queued.
//
// Each process rewrites its heartbeat every cfg.Heartbeat, on a goroutine of
// its own, so that nothing else (a long scan, a slow endpoint) makes it look
// dead. A heartbeat's age is judged on the storage's clock only, never by
// comparing one machine's clock with another's: it is the difference between
// the heartbeat's modification time and this process's own heartbeat's
// modification time, plus the local (monotonic) time elapsed since this process
// wrote its own. See storageClock.

// staleHeartbeatFactor: a heartbeat this many times takeoverAfter old belongs
// to a process long gone, and scans delete it.
const staleHeartbeatFactor = 10

// heartbeats rewrites the heartbeat every cfg.Heartbeat until ctx ends.
func (n *Notifier) heartbeats(ctx context.Context) {
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A write slower than takeoverAfter is useless: others count the
		// heartbeat stale by then.
		bctx, cancel := context.WithTimeout(ctx, n.cfg.TakeoverAfter)
		n.beat(bctx)
		cancel()
	}
}

// beat writes the heartbeat and notes when it was written.
func (n *Notifier) beat(ctx context.Context) {
	if err := n.q.beat(ctx, time.Now()); err != nil {
		n.log.Warn("notifications: writing the heartbeat", "err", err)
		return
	}
	// Noted after the write returned, so never earlier than the storage's
	// modification time: the storage clock it yields errs towards the past,
	// which makes heartbeats look younger (alive), the safe mistake.
	n.beatMu.Lock()
	n.beatAt = time.Now()
	n.beatMu.Unlock()
}

// scans scans the queues at once, then every cfg.Heartbeat, until ctx ends.
func (n *Notifier) scans(ctx context.Context) {
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	for {
		n.scan(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// storageClock tells heartbeats' ages on the storage's clock.
type storageClock struct {
	// now is the storage's time now, as far as known (see storageNow); zero
	// when unknown, and then every heartbeat counts as fresh.
	now time.Time
}

// storageNow estimates the storage's clock: this process's heartbeat's
// modification time plus the local time elapsed since it was written. The
// heartbeat is stat'ed before beatAt is read, so a beat between the two
// yields an earlier estimate, never a later one.
func (n *Notifier) storageNow(ctx context.Context) (time.Time, error) {
	fi, err := n.q.d.Stat(ctx, heartbeatPath(n.q.replica))
	if err != nil {
		return time.Time{}, err
	}
	n.beatMu.Lock()
	at := n.beatAt
	n.beatMu.Unlock()
	if at.IsZero() {
		return time.Time{}, errors.New("this process has not written its heartbeat")
	}
	return fi.ModTime.Add(time.Since(at)), nil
}

// age is how long ago, on the storage's clock, a heartbeat modified at mod
// was written. A modification time of whole seconds may be truncated (S3's
// Last-Modified is): the write may have happened up to a second later, so the
// age counted is a second less.
func (c storageClock) age(mod time.Time) (time.Duration, bool) {
	if c.now.IsZero() {
		return 0, false
	}
	a := c.now.Sub(mod)
	if mod.Nanosecond() == 0 {
		a -= time.Second
	}
	return a, true
}

// liveness answers, for one scan, whether replicas are alive.
type liveness struct {
	n     *Notifier
	clock storageClock
	// beats holds the heartbeats' modification times listed at the scan's
	// start; known the answers given.
	beats map[string]time.Time
	known map[string]bool
}

// newLiveness lists the heartbeats, and deletes those of processes long gone.
func (n *Notifier) newLiveness(ctx context.Context) *liveness {
	l := &liveness{n: n, beats: map[string]time.Time{}, known: map[string]bool{n.q.replica: true}}
	now, err := n.storageNow(ctx)
	if err != nil {
		// Without the storage's time, no heartbeat can be judged stale:
		// nothing is taken over this time (taking over is the riskier
		// mistake: every replica would deliver).
		n.log.Warn("notifications: the storage's clock is unknown; nothing is taken over in this scan", "err", err)
	}
	l.clock = storageClock{now: now}
	beats, err := n.q.heartbeats(ctx)
	if err != nil {
		n.log.Warn("notifications: listing the heartbeats", "err", err)
	}
	for replica, mod := range beats {
		l.beats[replica] = mod
		if a, ok := l.clock.age(mod); ok && a > staleHeartbeatFactor*n.cfg.TakeoverAfter && replica != n.q.replica {
			if err := n.q.deleteBeat(ctx, replica); err != nil {
				n.log.Warn("notifications: deleting a stale heartbeat", "replica", replica, "err", err)
				continue
			}
			n.log.Info("notifications: deleted the heartbeat of a process long gone", "replica", replica, "age", a.Round(time.Second))
		}
	}
	return l
}

// alive reports whether replica's heartbeat is younger than takeoverAfter.
// A replica whose heartbeat was not listed at the scan's start (it may have
// started since) is looked up again. An unreadable heartbeat, or an unknown
// storage clock, counts as alive.
func (l *liveness) alive(ctx context.Context, replica string) bool {
	if a, ok := l.known[replica]; ok {
		return a
	}
	a := l.judge(ctx, replica)
	l.known[replica] = a
	return a
}

func (l *liveness) judge(ctx context.Context, replica string) bool {
	if !validReplica(replica) {
		return false // no owner (a requeued dead letter), or nonsense
	}
	mod, ok := l.beats[replica]
	if !ok {
		fi, err := l.n.q.d.Stat(ctx, heartbeatPath(replica))
		if errors.Is(err, driver.ErrNotFound) {
			return false // stopped cleanly, or never started
		}
		if err != nil {
			return true
		}
		mod = fi.ModTime
	}
	a, ok := l.clock.age(mod)
	return !ok || a < l.n.cfg.TakeoverAfter
}

// scan adopts the queued records this process does not hold yet: its own
// (left by a failed delete) and those of processes whose heartbeat is older
// than TakeoverAfter or gone. It stops early when ctx ends.
func (n *Notifier) scan(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	live := n.newLiveness(ctx)
	alive := func(replica string) bool { return live.alive(ctx, replica) }
	for _, ep := range n.endpoints {
		keys, err := n.q.keys(ctx, ep.cfg.Name)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("notifications: listing the queue", "endpoint", ep.cfg.Name, "err", err)
			}
			continue
		}
		listed := make(map[string]bool, len(keys))
		for _, key := range keys {
			if ctx.Err() != nil {
				return
			}
			listed[key] = true
			if ep.owns(key) {
				continue
			}
			ep.mu.Lock()
			owner, known := ep.seen[key]
			ep.mu.Unlock()
			if known && alive(owner) {
				continue
			}
			owner, err := n.q.claim(ctx, ep.cfg.Name, key, alive)
			var bad *unreadableError
			switch {
			case errors.As(err, &bad):
				n.buryUnreadable(ctx, ep, key, bad)
				continue
			case err != nil:
				if ctx.Err() == nil {
					n.log.Warn("notifications: reading a queued record", "endpoint", ep.cfg.Name, "key", key, "err", err)
				}
				continue
			case owner != n.q.replica:
				if owner != "" {
					ep.mu.Lock()
					ep.seen[key] = owner
					ep.mu.Unlock()
				}
				continue
			}
			n.log.Info("notifications: delivering a record left queued", "endpoint", ep.cfg.Name, "key", key)
			ep.add(key)
		}
		ep.mu.Lock()
		for k := range ep.seen {
			if !listed[k] {
				delete(ep.seen, k)
			}
		}
		ep.mu.Unlock()
	}
}

// buryUnreadable moves a record nothing can parse to the dead-letter area,
// bytes and all, where an operator looks.
func (n *Notifier) buryUnreadable(ctx context.Context, ep *endpoint, key string, bad *unreadableError) {
	n.log.Error("notifications: an unreadable record moved to the dead-letter area", "endpoint", ep.cfg.Name, "key", key,
		"path", deadDir(ep.cfg.Name)+"/"+key, "err", bad.err)
	if err := n.q.buryRaw(ctx, ep.cfg.Name, key, bad.raw, "unreadable record: "+bad.err.Error(), time.Now()); err != nil {
		n.log.Error("notifications: dead-lettering an unreadable record failed; it stays queued", "endpoint", ep.cfg.Name, "key", key, "err", err)
	}
	ep.remove(key)
}
