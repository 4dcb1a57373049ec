package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/signer"
)

// Signed referrers: artifacts attached to an image that carry signatures over
// the image's digest, in one of the formats signers write (cosign signatures
// and attestations, Sigstore bundles, notation envelopes). Each format is
// checked the same way: the artifact in exactly the shape its signer writes,
// since a signature binds only what it covers and every other byte would be the
// pusher's to choose; then each signature it carries against the keys the trust
// graph delegates for the repository, binding the subject's digest (and the
// repository's name where the format carries one). Which blobs an admitted
// artifact makes visible follows from its shape: the ones it names.

// Format is a kind of signed referrer, named as `trustctl verify` prints it.
type Format string

// The formats CheckReferrer knows.
const (
	// FormatCosign is a cosign simple-signing signature artifact, pushed under
	// its subject's `sha256-<hex>.sig` tag or by digest.
	FormatCosign Format = "cosign"
)

// Artifact is a manifest to check as a signed referrer, with a way to read the
// blobs it names (signature payloads, envelopes, bundles): Blob returns a
// blob's bytes, or an error when it cannot be read.
type Artifact struct {
	// MediaType is the manifest's media type as pushed or stored.
	MediaType string
	// Manifest is the manifest's bytes.
	Manifest []byte
	// Blob reads a blob the manifest names.
	Blob func(digest.Digest) ([]byte, error)
	// Now is the clock a signature's expiry is checked against (formats
	// whose signatures carry one); nil means time.Now. The registry passes
	// its trust index's clock.
	Now func() time.Time
}

// Referrer is a signed referrer as CheckReferrer found it: its format, and each
// signature it carries with whether it verifies.
type Referrer struct {
	Format     Format
	Signatures Signatures
}

// Verified returns nil when the referrer may be admitted and served: it carries
// at least one signature, and every one verifies with a delegated key (every
// blob it makes visible is then signed), each with another key where the
// format's signatures are co-signers' (a cosign signature artifact's n
// signatures are n signers).
func (r Referrer) Verified() error {
	f, ok := formatOf(r.Format)
	if !ok {
		return fmt.Errorf("unknown signed referrer format %q", r.Format)
	}
	if f.distinctKeys {
		return r.Signatures.Verified()
	}
	if len(r.Signatures) == 0 {
		return errors.New("the artifact carries no signature")
	}
	for i, s := range r.Signatures {
		if s.Err != nil {
			return fmt.Errorf("signature %d: %w", i, s.Err)
		}
	}
	return nil
}

// ErrNotReferrer is CheckReferrer's error for a manifest in none of the signed
// formats: to be admitted it needs a target of its own, like any manifest.
var ErrNotReferrer = errors.New("not in any signed referrer format")

// referrerFormat is one format: how a manifest is routed to it, and its check.
type referrerFormat struct {
	format Format
	// is routes a manifest to the format by what marks it (media types, an
	// artifact type): cheap and lenient, since check decides.
	is func(h *manifestHead) bool
	// check checks the artifact's shape (an error when it is not the shape the
	// signer writes, or nothing in it can be read) and each signature on its
	// own with keys, for subject in repo.
	check func(ctx context.Context, a Artifact, keys Keys, repo string, subject digest.Digest) (Signatures, error)
	// distinctKeys: every signature must be by another key.
	distinctKeys bool
}

// referrerFormats are the signed formats, in the order a manifest is routed.
var referrerFormats = []referrerFormat{
	{format: FormatCosign, is: isCosignSignature, check: checkCosign, distinctKeys: true},
	{format: FormatCosignAttestation, is: isCosignAttestation, check: checkCosignAttestation},
	{format: FormatSigstoreBundle, is: isSigstoreBundle, check: checkSigstoreBundle},
	{format: FormatNotation, is: isNotationSignature, check: checkNotation},
}

func formatOf(name Format) (referrerFormat, bool) {
	for _, f := range referrerFormats {
		if f.format == name {
			return f, true
		}
	}
	return referrerFormat{}, false
}

// manifestHead is what routing reads of a manifest, leniently.
type manifestHead struct {
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType"`
	Config       *struct {
		MediaType    string `json:"mediaType"`
		ArtifactType string `json:"artifactType"`
	} `json:"config"`
	Layers []struct {
		MediaType string `json:"mediaType"`
	} `json:"layers"`
	Subject *struct {
		Digest digest.Digest `json:"digest"`
	} `json:"subject"`
}

// route returns the format a manifest is marked as, if any.
func route(mediaType string, manifest []byte) (referrerFormat, bool) {
	var h manifestHead
	if err := json.NewDecoder(bytes.NewReader(manifest)).Decode(&h); err != nil {
		return referrerFormat{}, false
	}
	if h.MediaType == "" {
		h.MediaType = mediaType
	}
	for _, f := range referrerFormats {
		if f.is(&h) {
			return f, true
		}
	}
	return referrerFormat{}, false
}

// ReferrerFormat reports which signed format a manifest is marked as (its
// media types, its artifact type), without checking it: it routes a push to
// CheckReferrer, which decides.
func ReferrerFormat(mediaType string, manifest []byte) (Format, bool) {
	f, ok := route(mediaType, manifest)
	return f.format, ok
}

// ReferrerSubject returns the digest a manifest's subject field names, if it
// has one; formats that carry no subject field (cosign's tag schemes) name
// their subject by the tag they are pushed under.
func ReferrerSubject(manifest []byte) (digest.Digest, bool) {
	var h manifestHead
	if err := json.NewDecoder(bytes.NewReader(manifest)).Decode(&h); err != nil || h.Subject == nil || h.Subject.Digest.Validate() != nil {
		return "", false
	}
	return h.Subject.Digest, true
}

// CheckReferrer checks artifact a as a signed referrer of subject in repo with
// keys, in the format it is marked as: ErrNotReferrer when it is marked as none;
// another error when it is not in its signer's shape or nothing in it can be
// read; otherwise each signature with whether it verifies (Referrer.Verified
// decides admission).
func CheckReferrer(ctx context.Context, a Artifact, keys Keys, repo string, subject digest.Digest) (Referrer, error) {
	if err := subject.Validate(); err != nil {
		return Referrer{}, fmt.Errorf("subject %q: %w", subject, err)
	}
	f, ok := route(a.MediaType, a.Manifest)
	if !ok {
		return Referrer{}, ErrNotReferrer
	}
	sigs, err := f.check(ctx, a, keys, repo, subject)
	if err != nil {
		return Referrer{Format: f.format}, err
	}
	return Referrer{Format: f.format, Signatures: sigs}, nil
}

// isCosignSignature routes a manifest whose layers are all simple-signing
// payloads to the cosign signature format.
func isCosignSignature(h *manifestHead) bool {
	if h.Config == nil || len(h.Layers) == 0 {
		return false
	}
	for _, l := range h.Layers {
		if l.MediaType != signer.CosignSimpleSigningMediaType {
			return false
		}
	}
	return true
}

func checkCosign(ctx context.Context, a Artifact, keys Keys, repo string, subject digest.Digest) (Signatures, error) {
	return CheckCosignArtifact(ctx, a.Manifest, a.Blob, keys, repo, subject)
}
