package tuf

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/signet-oss/signet/storage/driver"
)

// pendingGrace is how long a pending file of a version not yet committed is
// kept: a publish writes it and commits within moments, so one this old was
// left by a publish that was killed or lost its race and gave up.
const pendingGrace = time.Hour

// collectEvery is how often Run collects leftovers.
const collectEvery = time.Hour

// Collect deletes what publishing leaves behind and nothing can read any more:
//   - pending files of versions already committed that the head does not name
//     (the content a losing or killed publish wrote for the same version), and
//     pending files of uncommitted versions older than pendingGrace;
//   - staged copies of versions already committed: a version collects
//     signatures only until it, or another upload of that version, commits;
//   - held versions the head no longer names: published (or of a version
//     already committed), replaced, or, older than pendingGrace, written by a
//     hold that never committed.
//
// Only the last commit's pending files can still be waiting for their move to
// meta/ (every commit first finishes the moves of the head it replaces), and
// those are named by the head Collect reads, so it never deletes committed
// metadata; a newer head of another replica only names versions above the ones
// Collect compares with. It returns how many files it deleted.
func (r *Repo) Collect(ctx context.Context) (int, error) {
	s := r.fresh(ctx)
	if s == nil {
		return 0, nil
	}
	named := make(map[string]bool, len(s.head.Changed))
	for _, c := range s.head.Changed {
		named[pendingPath(c.Role, c.Version, c.SHA256)] = true
	}
	now := r.cfg.Now()
	pendingGone, err := r.sweep(ctx, pendingDir, func(p, role string, n int64) bool {
		if named[p] {
			return false
		}
		if n <= s.version(role) {
			return true
		}
		fi, err := r.st.d.Stat(ctx, p)
		return err == nil && now.Sub(fi.ModTime) > pendingGrace
	})
	if err != nil {
		return pendingGone, err
	}
	stagedGone, err := r.sweep(ctx, stagedDir, func(_, role string, n int64) bool {
		return n <= s.version(role)
	})
	if err != nil {
		return pendingGone + stagedGone, err
	}
	for _, h := range s.head.Held {
		named[heldPath(h.Role, h.Version, h.SHA256)] = true
	}
	heldGone, err := r.sweep(ctx, heldDir, func(p, role string, n int64) bool {
		if named[p] {
			return false
		}
		if n <= s.version(role) {
			return true
		}
		fi, err := r.st.d.Stat(ctx, p)
		return err == nil && now.Sub(fi.ModTime) > pendingGrace
	})
	return pendingGone + stagedGone + heldGone, err
}

// sweep deletes the files <dir>/<role>/<N>.<sha256>.json for which obsolete
// says so, and returns how many it deleted.
func (r *Repo) sweep(ctx context.Context, dir string, obsolete func(p, role string, n int64) bool) (int, error) {
	roles, err := r.st.d.List(ctx, dir)
	if errors.Is(err, driver.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	deleted := 0
	for _, roleDir := range roles {
		role := path.Base(roleDir)
		files, err := r.st.d.List(ctx, roleDir)
		if errors.Is(err, driver.ErrNotFound) {
			continue
		}
		if err != nil {
			return deleted, err
		}
		for _, p := range files {
			version, _, ok := strings.Cut(path.Base(p), ".")
			n, err := strconv.ParseInt(version, 10, 64)
			if !ok || err != nil || !obsolete(p, role, n) {
				continue
			}
			if err := r.st.d.Delete(ctx, p); err != nil && !errors.Is(err, driver.ErrNotFound) {
				return deleted, fmt.Errorf("deleting %s: %w", p, err)
			}
			deleted++
		}
	}
	return deleted, nil
}
