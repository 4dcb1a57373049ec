package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

// Signed referrers in an enforced repository (DESIGN §3, ARCHITECTURE §4): the
// artifacts attached to a signed manifest that carry signatures over its digest
// (cosign signatures and attestations, Sigstore bundles, notation envelopes;
// verify.CheckReferrer knows each format). One is admitted, and served, only
// while all of this holds:
//   - its subject is covered by a current target of the repository; the subject
//     is named by the manifest's subject field, by the tag it is pushed under
//     (cosign's sha256-<hex>.sig and .att), or for a cosign signature pushed by
//     digest by its payload;
//   - it has exactly the shape its signer writes (the format's check), since
//     the signatures bind what they sign and nothing else of the manifest;
//   - every signature in it verifies with a key delegated for the repository
//     now, as the format requires (verify.Referrer.Verified: a cosign
//     signature artifact's signatures each by another key), and none has
//     expired.
// Under a cosign tag, a replacement keeps every signature of the stored
// artifact that still verifies with a delegated key (a co-signer appends; a
// revoked signer's signature may go), and keeps each kept signature's layer as
// it was: a pusher without a key can neither strip a signature nor dress one in
// annotations of its own. The tag then moves only from the artifact it was
// checked against (sigAdmission), so concurrent co-signers cannot drop each
// other's signatures either. The check runs again when the artifact is served
// (by tag, by digest, in the tag list, in the referrers list, and for the blobs
// it makes visible), with the keys delegated then, so an artifact stored before
// a rule existed, or whose signer was revoked since, is not served. The verdict
// is cached per artifact, subject and key set, until a signature's expiry.
// Unsigned referrers (an SBOM attached with `oras attach`) are no signed
// referrers: they need a target of their own, like any manifest.

// SignatureChecker checks a manifest as a signed referrer of subject in repo
// with keys: verify.ErrNotReferrer when it is in no signed format, another
// error when it is not in its signer's shape, otherwise each signature with
// whether it verifies. The verify package provides it (verify.CheckReferrer).
type SignatureChecker func(ctx context.Context, a verify.Artifact, keys verify.Keys, repo string, subject digest.Digest) (verify.Referrer, error)

// The tags cosign pushes a subject's artifacts under: "sha256-<hex>.sig" for
// signatures, "sha256-<hex>.att" for attestations. The referrers tag schema's
// "sha256-<hex>" is referrersindex.go's.
const (
	cosignSignatureSuffix   = ".sig"
	cosignAttestationSuffix = ".att"
)

// cosignTagSubject parses a cosign signature or attestation tag: the subject it
// is the tag of, false when it is none.
func cosignTagSubject(tag string) (digest.Digest, bool) {
	for _, suffix := range []string{cosignSignatureSuffix, cosignAttestationSuffix} {
		if rest, ok := strings.CutSuffix(tag, suffix); ok {
			return tagDigest(rest)
		}
	}
	return "", false
}

// tagFits checks a signed referrer of format is one cosign pushes under tag:
// its simple-signing signatures under ".sig"; under ".att" its attestations,
// and neither those signatures nor notation's, which have places of their own.
func tagFits(tag string, format verify.Format) error {
	sig := strings.HasSuffix(tag, cosignSignatureSuffix)
	if tag == "" || sig == (format == verify.FormatCosign) && format != verify.FormatNotation {
		return nil
	}
	return fmt.Errorf("a %s signature is not pushed under the tag %s", format, tag)
}

// cosignTags are the tags cosign pushes subject's artifacts under.
func cosignTags(subject digest.Digest) []string {
	return []string{signer.CosignSignatureTag(subject), strings.TrimSuffix(signer.CosignSignatureTag(subject), cosignSignatureSuffix) + cosignAttestationSuffix}
}

// tagDigest reads a digest written as a tag, "<alg>-<hex>".
func tagDigest(s string) (digest.Digest, bool) {
	alg, hex, ok := strings.Cut(s, "-")
	if !ok {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
	return d, d.Validate() == nil
}

// sigAdmission is what the gate admitted a signature artifact as: manifest
// digest of subject, and when pushed under its signature tag, the version of
// the tag's record it was checked against. The tag may be moved only from
// there (storage.SetTagIf): two co-signers who read one artifact cannot both
// replace it, the second dropping the first's signature.
type sigAdmission struct {
	digest, subject digest.Digest
	tag, tagVersion string
}

// verdictKey names one stored signature artifact of a repository checked for
// one subject.
type verdictKey struct{ d, subject digest.Digest }

// verdict is whether a stored artifact passed the whole check with the keys of
// view rt, whose key set is keys; until, when set, is the earliest expiry of
// its signatures, after which it no longer passes.
type verdict struct {
	rt    *verify.RepoTargets
	keys  string
	err   error
	until time.Time
}

// holds reports whether the verdict admits the artifact at now.
func (v *verdict) holds(now time.Time) bool {
	return v.err == nil && (v.until.IsZero() || now.Before(v.until))
}

// payloadReader returns a reader of repo's signature payloads and envelopes
// for a SignatureChecker; *failed is set when storage failed to read one (a payload
// that is not there is the artifact's fault), and the checker's answer then
// says nothing about the artifact itself.
func (g *gate) payloadReader(ctx context.Context, repo string, failed *bool) func(digest.Digest) ([]byte, error) {
	return func(b digest.Digest) ([]byte, error) {
		rc, size, err := g.store.OpenBlob(ctx, repo, b)
		if err != nil {
			*failed = *failed || !errors.Is(err, storage.ErrBlobUnknown)
			return nil, err
		}
		defer rc.Close()
		if size > 1<<20 {
			return nil, fmt.Errorf("blob %s is too large for a signature payload", b)
		}
		buf := make([]byte, size)
		if _, err = io.ReadFull(rc, buf); err != nil {
			*failed = true
		}
		return buf, err
	}
}

// checkReferrer runs the whole check on manifest content (of mediaType) as a
// signed referrer of subject with keys. shapeErr is set when it is in no
// signed format or not in its signer's shape; err when a signature does not
// verify, or the format's rule on keys fails.
func (g *gate) checkReferrer(ctx context.Context, repo string, subject digest.Digest, mediaType string, content []byte, keys verify.Keys) (ref verify.Referrer, shapeErr, err error, readFailed bool) {
	a := verify.Artifact{MediaType: mediaType, Manifest: content, Blob: g.payloadReader(ctx, repo, &readFailed), Now: g.index.Now}
	ref, shapeErr = g.checkSig(ctx, a, keys, repo, subject)
	if shapeErr != nil {
		return ref, shapeErr, nil, readFailed
	}
	return ref, nil, ref.Verified(), readFailed
}

// admitReferrer admits a signed referrer d of subject, pushed under tag (a
// cosign tag) or by digest alone (tag ""): see the rules above. It returns the
// version of the tag's record it checked against.
func (g *gate) admitReferrer(ctx context.Context, repo string, d, subject digest.Digest, mediaType string, content []byte, tag string) (string, error) {
	covered := func(rt *verify.RepoTargets) bool { return rt != nil && rt.Covered[subject] }
	rt, err := g.lookup(ctx, repo, covered)
	if err != nil {
		return "", unavailable(err)
	}
	if !covered(rt) {
		return "", denied("a signature of %s is admitted only while %s is signed for %s, and it is not", subject, subject, repo)
	}
	if g.checkSig == nil {
		return "", denied("this registry cannot check signatures")
	}
	ref, shapeErr, err, readFailed := g.checkReferrer(ctx, repo, subject, mediaType, content, rt.Keys)
	if readFailed {
		// Storage failed to read a payload: no verdict on the artifact. The
		// storage error decides the answer (503 for a store that may recover).
		return "", fmt.Errorf("reading the payloads of signature artifact %s in %s: %w", d, repo, errors.Join(shapeErr, err))
	}
	if shapeErr == nil {
		shapeErr = tagFits(tag, ref.Format)
	}
	if shapeErr != nil {
		return "", denied("%s is refused as a signature artifact of %s: %v (a signature artifact is admitted only in the shape a signer writes)", d, subject, shapeErr)
	}
	if err != nil {
		// The keys may have changed since the view was built (a publisher just
		// delegated): refresh, as for any miss, and check once more.
		if rt2, lerr := g.lookup(ctx, repo, func(*verify.RepoTargets) bool { return false }); lerr == nil && covered(rt2) {
			rt = rt2
			ref, _, err, _ = g.checkReferrer(ctx, repo, subject, mediaType, content, rt.Keys)
		}
	}
	if err != nil {
		return "", denied("the signature of %s in %s does not verify with a key delegated for %s: %v", subject, repo, repo, err)
	}
	return g.checkReplacement(ctx, repo, tag, d, subject, ref, rt)
}

// checkReplacement compares an artifact about to be admitted with the one
// stored under its cosign tag (by digest, a cosign signature's): no signature
// of the stored one that still verifies is dropped (when replacing it under
// the tag), and none comes back with its layer changed (under the tag or by
// digest). It returns the version of the tag's record it compared with.
func (g *gate) checkReplacement(ctx context.Context, repo, tag string, d, subject digest.Digest, ref verify.Referrer, rt *verify.RepoTargets) (string, error) {
	sigTag := tag
	if sigTag == "" {
		if ref.Format != verify.FormatCosign {
			return "", nil // other formats pushed by digest share no tag
		}
		sigTag = signer.CosignSignatureTag(subject)
	}
	sigs := ref.Signatures
	stored, version, err := g.store.TagVersion(ctx, repo, sigTag)
	if err != nil || stored == "" || stored == d {
		return version, err
	}
	m, err := g.store.GetManifest(ctx, repo, stored.String())
	if errors.Is(err, storage.ErrManifestUnknown) {
		return version, nil
	}
	if err != nil {
		return "", err
	}
	oldRef, shapeErr, wholeErr, readFailed := g.checkReferrer(ctx, repo, subject, m.MediaType, m.Content, rt.Keys)
	old := oldRef.Signatures
	if shapeErr != nil {
		if readFailed {
			return "", fmt.Errorf("reading the payloads of %s:%s: %w", repo, sigTag, shapeErr)
		}
		// Stored before its shape was checked: none of it is served, and a
		// replacement keeps none of it.
		return version, nil
	}
	for i, n := range sigs {
		for j, o := range old {
			if o.Err == nil && o.KeyID == n.KeyID && bytes.Equal(o.Signature, n.Signature) && !sameLayer(o.Layer, n.Layer) {
				return "", denied("signature %d of %s is signature %d of the artifact under %s:%s with its layer changed: a co-signer keeps the signatures there as they are", i, d, j, repo, sigTag)
			}
		}
	}
	if tag == "" {
		return version, nil // an artifact by digest replaces nothing
	}
	have := map[string]bool{}
	for _, n := range sigs {
		have[n.KeyID] = true
	}
	for j, o := range old {
		if o.Err == nil && !have[o.KeyID] {
			hint := "co-sign the artifact served under " + sigTag + " instead of replacing it"
			if wholeErr != nil {
				hint = fmt.Sprintf("that artifact is not served (%v): have the holder of key %s sign again first", wholeErr, shortID(o.KeyID))
			}
			return "", denied("%s:%s carries signature %d by key %s, which still verifies with a key delegated for %s, and a replacement must keep it: %s", repo, sigTag, j, shortID(o.KeyID), repo, hint)
		}
	}
	return version, nil
}

func sameLayer(a, b ocispec.Descriptor) bool {
	return a.MediaType == b.MediaType && a.Digest == b.Digest && a.Size == b.Size && maps.Equal(a.Annotations, b.Annotations)
}

func shortID(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// referrerServable reports whether stored signed referrer d of subject passes
// the whole check with the keys delegated in view rt (whose subject the caller
// found covered). Verdicts are cached per artifact, subject and key set, and
// end with the earliest expiry of its signatures; an error is a storage
// failure, never a verdict.
func (g *gate) referrerServable(ctx context.Context, repo string, d, subject digest.Digest, rt *verify.RepoTargets) (bool, error) {
	if g.checkSig == nil {
		return false, nil
	}
	k := verdictKey{d: d, subject: subject}
	g.vmu.Lock()
	v := g.verdicts[repo][k]
	g.vmu.Unlock()
	if v != nil && v.rt == rt {
		return v.holds(g.index.Now()), nil
	}
	keys := strings.Join(rt.Keys.IDs(), ",")
	if v == nil || v.keys != keys {
		m, err := g.store.GetManifest(ctx, repo, d.String())
		if errors.Is(err, storage.ErrManifestUnknown) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		ref, shapeErr, err, readFailed := g.checkReferrer(ctx, repo, subject, m.MediaType, m.Content, rt.Keys)
		if shapeErr != nil {
			err = shapeErr
		}
		if readFailed {
			// A payload could not be read: no verdict, and nothing served.
			g.log.Warn("a signature artifact's payload could not be read", "repo", repo, "digest", d, "err", err)
			return false, nil
		}
		if err != nil {
			g.log.Warn("a stored signature artifact fails the signature check and is not served", "repo", repo, "digest", d, "subject", subject, "err", err)
		}
		v = &verdict{keys: keys, err: err}
		for _, s := range ref.Signatures {
			if !s.Expiry.IsZero() && (v.until.IsZero() || s.Expiry.Before(v.until)) {
				v.until = s.Expiry
			}
		}
	}
	g.vmu.Lock()
	if g.verdicts == nil {
		g.verdicts = map[string]map[verdictKey]*verdict{}
	}
	if g.verdicts[repo] == nil {
		g.verdicts[repo] = map[verdictKey]*verdict{}
	}
	g.verdicts[repo][k] = &verdict{rt: rt, keys: v.keys, err: v.err, until: v.until}
	g.vmu.Unlock()
	return v.holds(g.index.Now()), nil
}

// currentSignature returns the subject of which manifest d of repo is the
// artifact served under a cosign tag, "" if it is not: deleting it would
// strip every signature there, as no replacement may.
func (g *gate) currentSignature(ctx context.Context, repo string, d digest.Digest) (digest.Digest, error) {
	subject, ok, err := g.store.AdmittedSubject(ctx, repo, d)
	if err != nil || !ok {
		return "", err
	}
	rt, err := g.index.Lookup(repo)
	if err != nil {
		return "", unavailable(fmt.Errorf("%w: %v", errTrustUnavailable, err))
	}
	if rt == nil || !rt.Covered[subject] {
		return "", nil
	}
	for _, tag := range cosignTags(subject) {
		if tagged, err := g.store.ResolveTag(ctx, repo, tag); err != nil || tagged != d {
			continue
		}
		if ok, err := g.referrerServable(ctx, repo, d, subject, rt); err != nil || !ok {
			return "", err
		}
		return subject, nil
	}
	return "", nil
}

// signatureSubject reads the subject digest a cosign signature artifact's first
// payload names (critical.image.docker-manifest-digest).
func (g *gate) signatureSubject(ctx context.Context, repo, mediaType string, content []byte) (digest.Digest, error) {
	_, f, err := storage.ParseManifest(mediaType, content)
	if err != nil || len(f.Layers) == 0 {
		return "", errors.New("no signature layer")
	}
	rc, size, err := g.store.OpenBlob(ctx, repo, f.Layers[0].Digest)
	if err != nil {
		return "", fmt.Errorf("its payload %s: %w", f.Layers[0].Digest, err)
	}
	defer rc.Close()
	if size > 1<<20 {
		return "", errors.New("its payload is too large")
	}
	var payload struct {
		Critical struct {
			Image struct {
				Digest digest.Digest `json:"docker-manifest-digest"`
			} `json:"image"`
		} `json:"critical"`
	}
	if err := json.NewDecoder(io.LimitReader(rc, size)).Decode(&payload); err != nil {
		return "", fmt.Errorf("its payload is not a simple-signing document: %w", err)
	}
	if err := payload.Critical.Image.Digest.Validate(); err != nil {
		return "", fmt.Errorf("its payload names no valid digest: %w", err)
	}
	return payload.Critical.Image.Digest, nil
}
