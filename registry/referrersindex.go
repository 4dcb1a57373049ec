package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/verify"
)

// The referrers tag schema (distribution-spec 1.1) in an enforced repository.
// A client that does not use the referrers API keeps a subject's referrers in
// an unsigned OCI index under the tag "sha256-<hex>": notation v1.3.2 does so by
// default (--force-referrers-tag), PUTting the index with its new signature
// added, then DELETEing the index it read. Nothing signs that index, so the gate
// admits one only as a copy of what it already serves:
//   - its subject is covered by a current target;
//   - it has exactly the shape oras-go writes (verify.ReferrersIndex);
//   - each entry, once, is a referrer of the subject the referrers API lists
//     now (an admitted signed referrer that passes the check, or one with a
//     target of its own), with the very descriptor the API lists: media type,
//     digest, size, artifact type and annotations.
// The stored index is served under its tag only while that still holds, so a
// revoked signer's signature, or a referrer deleted since, takes its index
// with it; the client then finds no index and writes a new one. The stored
// index is served, rather than one made from the referrers store, because the
// client DELETEs the digest it read: that digest must be one the registry
// stores. A superseded index (not the one under its tag) may be deleted by
// digest; the one under its tag may not, while its subject is signed. An index
// is served only through its tag, never by digest.

// referrersIndexTag parses a referrers tag of repo, "<alg>-<hex>": the subject
// it lists the referrers of. A tag a target names is the target's.
func (g *gate) referrersIndexTag(repo, tag string) (digest.Digest, bool) {
	subject, ok := tagDigest(tag)
	if !ok {
		return "", false
	}
	if rt, err := g.index.Lookup(repo); err == nil && rtTag(rt, tag) != nil {
		return "", false
	}
	return subject, true
}

// admitReferrersIndex admits an index pushed under subject's referrers tag
// (see above). It returns the version of the tag's record it checked against,
// so that the tag moves only from there.
func (g *gate) admitReferrersIndex(ctx context.Context, repo, tag string, subject digest.Digest, content []byte) (string, error) {
	covered := func(rt *verify.RepoTargets) bool { return rt != nil && rt.Covered[subject] }
	rt, err := g.lookup(ctx, repo, covered)
	if err != nil {
		return "", unavailable(err)
	}
	if !covered(rt) {
		return "", denied("a referrers index of %s is admitted only while %s is signed for %s, and it is not", subject, subject, repo)
	}
	_, version, err := g.store.TagVersion(ctx, repo, tag)
	if err != nil {
		return "", err
	}
	entries, err := verify.ReferrersIndex(content)
	if err != nil {
		return "", denied("the referrers index of %s is refused: %v (it is admitted only in the shape oras writes)", subject, err)
	}
	problem, err := g.indexProblem(ctx, repo, subject, entries)
	if err != nil {
		return "", err
	}
	if problem != "" {
		return "", denied("the referrers index of %s is refused: %s (an index lists only referrers the referrers API serves, as it lists them: push each referrer first)", subject, problem)
	}
	return version, nil
}

// indexProblem says why entries are not a referrers index of subject the gate
// admits, "" when they are; an error is a storage failure.
func (g *gate) indexProblem(ctx context.Context, repo string, subject digest.Digest, entries []ocispec.Descriptor) (string, error) {
	listed, err := g.servableReferrers(ctx, repo, subject, "")
	if err != nil {
		return "", err
	}
	byDigest := make(map[digest.Digest]ocispec.Descriptor, len(listed))
	for _, l := range listed {
		byDigest[l.Digest] = l
	}
	seen := map[digest.Digest]bool{}
	for i, e := range entries {
		l, ok := byDigest[e.Digest]
		switch {
		case seen[e.Digest]:
			return fmt.Sprintf("entry %d lists %s a second time", i, e.Digest), nil
		case !ok:
			return fmt.Sprintf("entry %d, %s, is not a referrer of %s that this registry serves", i, e.Digest, subject), nil
		case !sameDescriptor(e, l):
			return fmt.Sprintf("entry %d, %s, differs from the descriptor the referrers API lists for it (%s %d bytes, artifact type %q, annotations %v)", i, e.Digest, l.MediaType, l.Size, l.ArtifactType, l.Annotations), nil
		}
		seen[e.Digest] = true
	}
	return "", nil
}

// sameDescriptor compares a referrer's descriptors as the referrers API lists
// them.
func sameDescriptor(a, b ocispec.Descriptor) bool {
	return a.MediaType == b.MediaType && a.Digest == b.Digest && a.Size == b.Size && a.ArtifactType == b.ArtifactType && maps.Equal(a.Annotations, b.Annotations)
}

// resolveReferrersIndex returns the index stored under subject's referrers tag
// while it is one the gate admits now (ErrManifestUnknown otherwise).
func (g *gate) resolveReferrersIndex(ctx context.Context, repo, tag string, subject digest.Digest) (digest.Digest, error) {
	rt, err := g.index.Lookup(repo)
	if err != nil {
		return "", unavailable(fmt.Errorf("%w: %v", errTrustUnavailable, err))
	}
	if rt == nil || !rt.Covered[subject] {
		return "", fmt.Errorf("%w: %s:%s (its subject is not signed)", storage.ErrManifestUnknown, repo, tag)
	}
	m, err := g.store.GetManifest(ctx, repo, tag)
	if err != nil {
		return "", err
	}
	entries, err := verify.ReferrersIndex(m.Content)
	problem := ""
	if err != nil || m.MediaType != storage.MediaTypeOCIIndex {
		problem = fmt.Sprintf("not a referrers index: %v", err)
	} else if problem, err = g.indexProblem(ctx, repo, subject, entries); err != nil {
		return "", err
	}
	if problem != "" {
		return "", fmt.Errorf("%w: %s:%s (the referrers index no longer holds: %s)", storage.ErrManifestUnknown, repo, tag, problem)
	}
	return m.Digest, nil
}

// currentReferrersIndex returns the subject of which manifest d of repo is the
// index under the referrers tag, while that subject is signed; "" otherwise.
func (g *gate) currentReferrersIndex(ctx context.Context, repo string, d digest.Digest) (digest.Digest, error) {
	m, err := g.store.GetManifest(ctx, repo, d.String())
	if errors.Is(err, storage.ErrManifestUnknown) {
		return "", nil
	}
	if err != nil || m.MediaType != storage.MediaTypeOCIIndex {
		return "", err
	}
	tags, _, err := g.store.Tags(ctx, repo, "", -1)
	if err != nil {
		return "", err
	}
	rt, err := g.index.Lookup(repo)
	if err != nil {
		return "", unavailable(fmt.Errorf("%w: %v", errTrustUnavailable, err))
	}
	for _, t := range tags {
		subject, ok := g.referrersIndexTag(repo, t)
		if !ok || rt == nil || !rt.Covered[subject] {
			continue
		}
		tagged, err := g.store.ResolveTag(ctx, repo, t)
		if errors.Is(err, storage.ErrManifestUnknown) {
			continue // deleted meanwhile
		}
		if err != nil {
			return "", err
		}
		if tagged == d {
			return subject, nil
		}
	}
	return "", nil
}

// servableReferrers lists the referrers of subject that repo serves (of
// artifactType when it is not ""): those the gate would serve by digest.
func (g *gate) servableReferrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	descs, err := g.store.Referrers(ctx, repo, subject, artifactType)
	if err != nil {
		return nil, err
	}
	kept := descs[:0]
	for _, desc := range descs {
		err := g.servable(ctx, repo, desc.Digest)
		switch {
		case err == nil:
			kept = append(kept, desc)
		case !errors.Is(err, storage.ErrManifestUnknown):
			return nil, err // a list missing referrers is no answer
		}
	}
	return kept, nil
}
