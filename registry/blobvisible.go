package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/verify"
)

// blobSet is the set of blobs of an enforced repository that admitted
// manifests reference, for one view of the trust graph. A set is never changed
// once made (readers use its maps without the lock); a newer one replaces it.
type blobSet struct {
	view *verify.RepoTargets
	// admitted holds every admission record read, with its subject.
	admitted map[digest.Digest]digest.Digest
	// unserved holds the admitted artifacts of a covered subject that did not
	// pass the check when the set was made: they are asked again (a cached
	// verdict, or a payload that could not be read then).
	unserved map[digest.Digest]digest.Digest
	set      map[digest.Digest]bool
	checked  time.Time // when the admission records were last listed
	// pending: a covered manifest was not stored when the set was made (its
	// target is published before its push), so the set is made again.
	pending bool
}

// blobVisible reports whether blob d of an enforced repo is served: an admitted
// manifest (a covered one, or an admitted signature artifact that passes the
// signature check now) references it.
//
// Pulls pay for none of this but a map lookup: a blob in the set is served
// while the view is the same, however old the set (what makes a blob stop
// being served, a revoked key or a removed target, is a new view; an admission
// only adds blobs). A blob not in the set is looked for again once the set is a
// second old: the admission records are listed again by name (another replica
// may have admitted an artifact), a directory listing, with no record read and
// no manifest parsed unless a name is new. Made again whole only for a new
// view of the trust graph (a revoked key's artifacts and their blobs go at
// once), a record removed, or a covered manifest that was missing. With 400
// admitted artifacts, reading every record each second cost a pull of 64 MiB
// about 10 ms on the filesystem driver.
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
	fresh := bs != nil && bs.view == rt && (bs.set[d] || g.index.Now().Sub(bs.checked) < time.Second)
	g.mu.Unlock()
	if fresh {
		return bs.set[d], nil
	}
	names, err := g.store.AdmittedDigests(ctx, repo)
	if err != nil {
		return false, err
	}
	added, extend := bs.changes(rt, names)
	if extend && len(added) == 0 {
		stands, err := g.setStands(ctx, repo, bs, rt)
		if err != nil {
			return false, err
		}
		if stands {
			g.mu.Lock()
			bs.checked = g.index.Now()
			g.mu.Unlock()
			return bs.set[d], nil
		}
		extend = false // made again below, whole
	}
	if !extend {
		added = names
	}
	next, err := g.nextBlobSet(ctx, repo, rt, bs, extend, added)
	if err != nil {
		return false, err
	}
	g.mu.Lock()
	if g.blobs == nil {
		g.blobs = map[string]*blobSet{}
	}
	g.blobs[repo] = next
	g.mu.Unlock()
	return next.set[d], nil
}

// changes compares the admission records listed now (names) with those set bs
// was made from: the names it has not read, and whether bs, made for view rt,
// can be extended with them (no record was removed, and no covered manifest
// was missing when it was made).
func (bs *blobSet) changes(rt *verify.RepoTargets, names []digest.Digest) (added []digest.Digest, extend bool) {
	if bs == nil || bs.view != rt || bs.pending {
		return nil, false
	}
	listed := make(map[digest.Digest]bool, len(names))
	for _, n := range names {
		listed[n] = true
		if _, ok := bs.admitted[n]; !ok {
			added = append(added, n)
		}
	}
	for n := range bs.admitted {
		if !listed[n] {
			return nil, false
		}
	}
	return added, true
}

// setStands reports whether set bs still holds when no record was added:
// unless an artifact not served then passes now (its verdict is cached, so
// this reads nothing), it does.
func (g *gate) setStands(ctx context.Context, repo string, bs *blobSet, rt *verify.RepoTargets) (bool, error) {
	for sig, subject := range bs.unserved {
		if ok, err := g.referrerServable(ctx, repo, sig, subject, rt); err != nil || ok {
			return false, err
		}
	}
	return true, nil
}

// nextBlobSet makes repo's blob set for view rt: bs extended with the records
// added when extend (the blobs already found stay), else whole, from every
// covered manifest and the records added (then every record listed).
func (g *gate) nextBlobSet(ctx context.Context, repo string, rt *verify.RepoTargets, bs *blobSet, extend bool, added []digest.Digest) (*blobSet, error) {
	next := &blobSet{view: rt, admitted: map[digest.Digest]digest.Digest{}, unserved: map[digest.Digest]digest.Digest{}, set: map[digest.Digest]bool{}, checked: g.index.Now()}
	toCheck := map[digest.Digest]digest.Digest{}
	if extend {
		next.admitted, next.set = maps.Clone(bs.admitted), maps.Clone(bs.set)
		maps.Copy(toCheck, bs.unserved)
	} else {
		for m := range rt.Covered {
			if err := g.addManifestBlobs(ctx, repo, m, next); err != nil {
				return nil, err
			}
		}
	}
	for _, n := range added {
		// A record that cannot be read now is not known, and read again.
		if subject, ok, err := g.store.AdmittedSubject(ctx, repo, n); err == nil && ok {
			next.admitted[n] = subject
			toCheck[n] = subject
		}
	}
	// Only an artifact that passes the whole check makes blobs visible: its
	// payloads and the config derived from them (or the empty one), the only
	// blobs its shape allows.
	for sig, subject := range toCheck {
		if !rt.Covered[subject] {
			continue
		}
		if ok, err := g.referrerServable(ctx, repo, sig, subject, rt); err != nil {
			return nil, err
		} else if !ok {
			next.unserved[sig] = subject
			continue
		}
		if err := g.addManifestBlobs(ctx, repo, sig, next); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// addManifestBlobs adds the blobs manifest m of repo references to set next;
// a covered manifest not stored yet (its target is published before its push)
// marks the set pending, to be made again.
func (g *gate) addManifestBlobs(ctx context.Context, repo string, m digest.Digest, next *blobSet) error {
	blobs, err := g.store.ManifestBlobs(ctx, repo, m)
	if err == nil && len(blobs) == 0 {
		if _, gerr := g.store.GetManifest(ctx, repo, m.String()); errors.Is(gerr, storage.ErrManifestUnknown) {
			next.pending = true
		}
	}
	for _, b := range blobs {
		next.set[b] = true
	}
	return err
}
