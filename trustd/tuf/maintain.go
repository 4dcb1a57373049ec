package tuf

import (
	"context"
	"errors"
	"time"

	"github.com/signet-oss/signet/storage/driver"
)

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
