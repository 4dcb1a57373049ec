package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/storage/driver"
)

// Online garbage collection: mark and sweep while pushes go on.
//
// Invariants (why nothing being pushed is taken):
//   - Nothing younger than the grace period is ever deleted: a push links its blobs
//     (fresh link objects) before it pushes the manifest that references them, so as
//     long as every push finishes within the grace period, its blobs are safe even
//     though no manifest references them yet.
//   - A blob that a client looks at (HEAD, GET, mount) has its link renewed once
//     it is older than linkRenewAge (6h, well under the default 24h grace), so a
//     client that skips an upload because the blob is there can still reference it.
//   - A blob link is deleted only if no manifest of its repository references it,
//     checked twice: once in the mark, and again right before the sweep of that
//     repository, against every manifest written since the mark began.
//   - Bytes under /blobs are deleted only if no repository links them after the
//     per-repository sweeps, and they are older than the grace period. A commit of
//     a blob that already exists moves its fresh bytes over the old ones, and a
//     mount re-checks the bytes after linking, so neither can end up linking bytes
//     that a concurrent sweep removes.
//   - Upload sessions untouched for longer than UploadGrace are removed.
//
// What remains is a window of a few milliseconds per repository between the second
// check and the deletion, in which a new manifest could reference a blob that was
// garbage (unreferenced and older than the grace period) a moment before.

// older reports whether t is before cutoff even if t was truncated to a whole
// second, as S3 servers report object times: nothing is taken early.
func older(t, cutoff time.Time) bool { return t.Add(time.Second).Before(cutoff) }

// GCOptions tune a collection. The zero value takes the defaults.
type GCOptions struct {
	// DryRun reports what would be freed without deleting anything.
	DryRun bool
	// Grace is the minimum age of anything deleted (default 24h): it must be
	// longer than the longest push plus 6h (the age at which a looked-at blob's
	// link is renewed); shorter values are for tests.
	Grace time.Duration
	// UploadGrace is how long an untouched upload session is kept (default 24h).
	UploadGrace time.Duration
	// DeleteUntagged also deletes manifests that no tag reaches (directly, as an
	// index child, or as a referrer of a reachable manifest).
	DeleteUntagged bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// GCReport says what a collection freed (or, in a dry run, would free).
type GCReport struct {
	Repositories     int   `json:"repositories"`
	ManifestsDeleted int   `json:"manifestsDeleted"`
	LinksDeleted     int   `json:"blobLinksDeleted"`
	BlobsDeleted     int   `json:"blobsDeleted"`
	BytesFreed       int64 `json:"bytesFreed"`
	UploadsDeleted   int   `json:"uploadsDeleted"`
	DryRun           bool  `json:"dryRun"`
}

// GC collects garbage; see the invariants above.
func (s *Store) GC(ctx context.Context, opts GCOptions) (*GCReport, error) {
	if opts.Grace <= 0 {
		opts.Grace = 24 * time.Hour
	}
	if opts.UploadGrace <= 0 {
		opts.UploadGrace = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	start := opts.Now()
	cutoff := start.Add(-opts.Grace)
	rep := &GCReport{DryRun: opts.DryRun}

	repos, _, err := s.Catalog(ctx, "", -1, nil)
	if err != nil {
		return nil, err
	}
	linkRepos, err := s.reposWithBlobLinks(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range repos {
		linkRepos[r] = true
	}
	linked := map[digest.Digest]bool{}
	for repo := range linkRepos {
		rep.Repositories++
		if err := s.gcRepo(ctx, repo, opts, start, cutoff, rep, linked); err != nil {
			return rep, fmt.Errorf("gc %s: %w", repo, err)
		}
	}
	if err := s.gcBlobs(ctx, opts, cutoff, rep, linked); err != nil {
		return rep, err
	}
	if err := s.gcUploads(ctx, opts, start.Add(-opts.UploadGrace), rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// reposWithBlobLinks finds repositories that have blob links (a push in progress
// may have links and no manifest yet).
func (s *Store) reposWithBlobLinks(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	err := s.d.Walk(ctx, reposRoot(), func(fi driver.FileInfo) error {
		if !fi.IsDir {
			return nil
		}
		base := fi.Path[strings.LastIndexByte(fi.Path, '/')+1:]
		if !strings.HasPrefix(base, "_") {
			return nil
		}
		if base == "_blobs" {
			out[strings.TrimSuffix(strings.TrimPrefix(fi.Path, reposRoot()+"/"), "/_blobs")] = true
		}
		return driver.ErrSkipDir
	})
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return nil, err
	}
	return out, nil
}

// repoManifest is one manifest of a repository, as the mark sees it.
type repoManifest struct {
	digest  digest.Digest
	modTime time.Time
	refs    []digest.Digest // blobs and child manifests it references
	subject digest.Digest
}

// readManifests lists the manifests of repo with what each references.
func (s *Store) readManifests(ctx context.Context, repo string) (map[digest.Digest]*repoManifest, error) {
	out := map[digest.Digest]*repoManifest{}
	err := s.d.Walk(ctx, manifestsDir(repo), func(fi driver.FileInfo) error {
		if fi.IsDir {
			return nil
		}
		rest := strings.TrimPrefix(fi.Path, manifestsDir(repo)+"/")
		alg, hex, ok := strings.Cut(rest, "/")
		if !ok {
			return nil
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
		m, err := s.GetManifest(ctx, repo, d.String())
		if errors.Is(err, ErrManifestUnknown) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return err
		}
		rm := &repoManifest{digest: d, modTime: fi.ModTime}
		if _, f, err := ParseManifest(m.MediaType, m.Content); err == nil {
			if f.Config != nil {
				rm.refs = append(rm.refs, f.Config.Digest)
			}
			for _, l := range f.Layers {
				rm.refs = append(rm.refs, l.Digest)
			}
			for _, c := range f.Manifests {
				rm.refs = append(rm.refs, c.Digest)
			}
			if f.Subject != nil {
				rm.subject = f.Subject.Digest
			}
		}
		out[d] = rm
		return nil
	})
	if errors.Is(err, driver.ErrNotFound) {
		return out, nil
	}
	return out, err
}

func (s *Store) gcRepo(ctx context.Context, repo string, opts GCOptions, start, cutoff time.Time, rep *GCReport, linked map[digest.Digest]bool) error {
	manifests, err := s.readManifests(ctx, repo)
	if err != nil {
		return err
	}
	removed := map[digest.Digest]bool{} // manifests collected (or, in a dry run, that would be)
	if opts.DeleteUntagged {
		reachable, err := s.reachable(ctx, repo, manifests)
		if err != nil {
			return err
		}
		for d, m := range manifests {
			if reachable[d] || !older(m.modTime, cutoff) {
				continue
			}
			rep.ManifestsDeleted++
			removed[d] = true
			delete(manifests, d)
			if opts.DryRun {
				continue
			}
			if err := s.DeleteManifest(ctx, repo, d); err != nil && !errors.Is(err, ErrManifestUnknown) {
				return err
			}
		}
	}
	referenced := map[digest.Digest]bool{}
	for _, m := range manifests {
		for _, r := range m.refs {
			referenced[r] = true
		}
	}
	var candidates []driver.FileInfo
	err = s.d.Walk(ctx, repoPath(repo)+"/_blobs", func(fi driver.FileInfo) error {
		if fi.IsDir {
			return nil
		}
		rest := strings.TrimPrefix(fi.Path, repoPath(repo)+"/_blobs/")
		alg, hex, ok := strings.Cut(rest, "/")
		if !ok {
			return nil
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
		if referenced[d] || !older(fi.ModTime, cutoff) {
			linked[d] = true
			return nil
		}
		candidates = append(candidates, fi)
		return nil
	})
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	if len(candidates) == 0 {
		return nil
	}
	// The second check: manifests written since the mark began.
	again, err := s.readManifests(ctx, repo)
	if err != nil {
		return err
	}
	for d, m := range again {
		if _, seen := manifests[d]; (seen || removed[d]) && m.modTime.Before(start) {
			continue
		}
		for _, r := range m.refs {
			referenced[r] = true
		}
	}
	for _, fi := range candidates {
		rest := strings.TrimPrefix(fi.Path, repoPath(repo)+"/_blobs/")
		alg, hex, _ := strings.Cut(rest, "/")
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
		if referenced[d] {
			linked[d] = true
			continue
		}
		rep.LinksDeleted++
		if opts.DryRun {
			continue
		}
		if err := s.d.Delete(ctx, fi.Path); err != nil && !errors.Is(err, driver.ErrNotFound) {
			return err
		}
	}
	return nil
}

// reachable returns the manifests of repo that a tag reaches, through index
// children, and the referrers of reachable manifests.
func (s *Store) reachable(ctx context.Context, repo string, manifests map[digest.Digest]*repoManifest) (map[digest.Digest]bool, error) {
	tags, err := s.listNames(ctx, tagsDir(repo))
	if err != nil {
		return nil, err
	}
	seen := map[digest.Digest]bool{}
	var queue []digest.Digest
	for _, t := range tags {
		d, err := s.ResolveTag(ctx, repo, t)
		if err != nil {
			continue
		}
		queue = append(queue, d)
	}
	referrers := map[digest.Digest][]digest.Digest{}
	for d, m := range manifests {
		if m.subject != "" {
			referrers[m.subject] = append(referrers[m.subject], d)
		}
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d] {
			continue
		}
		seen[d] = true
		if m, ok := manifests[d]; ok {
			queue = append(queue, m.refs...)
		}
		queue = append(queue, referrers[d]...)
	}
	return seen, nil
}

// gcBlobs deletes blobs that no repository links: their bytes, or, on drivers
// whose Move copies, their records and then every data object that no record
// names.
func (s *Store) gcBlobs(ctx context.Context, opts GCOptions, cutoff time.Time, rep *GCReport, linked map[digest.Digest]bool) error {
	top := root + "/blobs"
	if s.indirect {
		top = root + "/blobrefs"
	}
	live := map[string]bool{} // data objects that surviving records name
	err := s.d.Walk(ctx, top, func(fi driver.FileInfo) error {
		if fi.IsDir {
			return nil
		}
		parts := strings.Split(strings.TrimPrefix(fi.Path, top+"/"), "/")
		if len(parts) != 3 {
			return nil
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[2])
		s.refs.drop(d) // read records afresh: another replica may have replaced one
		if linked[d] || !older(fi.ModTime, cutoff) {
			if s.indirect {
				if data, _, err := s.blobBytes(ctx, d); err == nil {
					live[data] = true
				}
			}
			return nil
		}
		rep.BlobsDeleted++
		size := fi.Size
		if s.indirect {
			_, n, err := s.blobBytes(ctx, d)
			if err != nil {
				return nil
			}
			size = n
		}
		rep.BytesFreed += size
		if opts.DryRun {
			return nil
		}
		s.refs.drop(d)
		if err := s.d.Delete(ctx, fi.Path); err != nil && !errors.Is(err, driver.ErrNotFound) {
			return err
		}
		return nil
	})
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	if !s.indirect || opts.DryRun {
		return nil
	}
	// Data objects: those no record names, and older than the grace period (an
	// upload in progress writes its data object, so it is young).
	err = s.d.Walk(ctx, dataDir(), func(fi driver.FileInfo) error {
		if fi.IsDir || live[fi.Path] || !older(fi.ModTime, cutoff) {
			return nil
		}
		if err := s.d.Delete(ctx, fi.Path); err != nil && !errors.Is(err, driver.ErrNotFound) {
			return err
		}
		return nil
	})
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	return err
}

// gcUploads deletes upload sessions untouched since before cutoff: a session is
// its <id>.data and <id>.state, stale when every one of them is.
func (s *Store) gcUploads(ctx context.Context, opts GCOptions, cutoff time.Time, rep *GCReport) error {
	files, err := s.d.List(ctx, uploadsDir())
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	sessions := map[string][]string{}
	fresh := map[string]bool{}
	for _, p := range files {
		base := p[strings.LastIndexByte(p, '/')+1:]
		id, _, ok := strings.Cut(base, ".")
		if !ok {
			continue
		}
		sessions[id] = append(sessions[id], p)
		if fi, err := s.d.Stat(ctx, p); err != nil || !older(fi.ModTime, cutoff) {
			fresh[id] = true
		}
	}
	for id, paths := range sessions {
		if fresh[id] {
			continue
		}
		rep.UploadsDeleted++
		if opts.DryRun {
			continue
		}
		for _, p := range paths {
			if err := s.d.Delete(ctx, p); err != nil && !errors.Is(err, driver.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}
