package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/verify"
)

// blobSet is the set of blobs of an enforced repository that admitted
// manifests reference, for one view of the trust graph.
type blobSet struct {
	view     *verify.RepoTargets
	admitted int
	set      map[digest.Digest]bool
	checked  time.Time // when admitted was last counted
	// pending: a covered manifest was not stored when the set was made (its
	// target is published before its push), so the set is made again.
	pending bool
}

// blobVisible reports whether blob d of an enforced repo is served: an admitted
// manifest (a covered one, or an admitted signature artifact that passes the
// signature check now) references it.
func (g *gate) blobVisible(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	rt, err := g.index.Lookup(repo)
	if err != nil {
		return false, unavailable(fmt.Errorf("%w: %v", errTrustUnavailable, err))
	}
	if rt == nil {
		return false, nil
	}
	g.mu.Lock()
	bs := g.blobs[repo]
	fresh := bs != nil && bs.view == rt && g.index.Now().Sub(bs.checked) < time.Second
	g.mu.Unlock()
	if fresh {
		return bs.set[d], nil // a set is never changed once made
	}
	// The admitted signature artifacts are read again at most once a second
	// (another replica may have admitted one); this process's own admissions
	// drop the cache at once.
	admitted, err := g.store.Admitted(ctx, repo)
	if err != nil {
		return false, err
	}
	if bs != nil && bs.view == rt && bs.admitted == len(admitted) && !bs.pending {
		g.mu.Lock()
		bs.checked = g.index.Now()
		g.mu.Unlock()
	} else {
		bs = &blobSet{view: rt, admitted: len(admitted), set: map[digest.Digest]bool{}, checked: g.index.Now()}
		add := func(m digest.Digest) error {
			blobs, err := g.store.ManifestBlobs(ctx, repo, m)
			if err == nil && len(blobs) == 0 {
				if _, gerr := g.store.GetManifest(ctx, repo, m.String()); errors.Is(gerr, storage.ErrManifestUnknown) {
					bs.pending = true
				}
			}
			for _, b := range blobs {
				bs.set[b] = true
			}
			return err
		}
		for m := range rt.Covered {
			if err := add(m); err != nil {
				return false, err
			}
		}
		for sig, subject := range admitted {
			if !rt.Covered[subject] {
				continue
			}
			// Only an artifact that passes the whole check makes blobs
			// visible: its payloads and the config derived from them (or
			// the empty one), the only blobs its shape allows.
			if ok, err := g.referrerServable(ctx, repo, sig, subject, rt); err != nil {
				return false, err
			} else if !ok {
				continue
			}
			if err := add(sig); err != nil {
				return false, err
			}
		}
		g.mu.Lock()
		if g.blobs == nil {
			g.blobs = map[string]*blobSet{}
		}
		g.blobs[repo] = bs
		g.mu.Unlock()
	}
	return bs.set[d], nil
}
