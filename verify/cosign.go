package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/signer"
)

// Cosign signature artifacts, checked as the registry's gate and `trustctl
// verify` need them: the artifact in exactly the shape a signer writes
// (cosignshape.go), every signature verifying over a payload that names the
// repository and the subject, each by another of the keys delegated for the
// repository. The format itself (media types, the signature annotation, the
// payload, the derived config, the signature tag) is the signer package's, which
// writes it: both sides read one definition.

// maxCosignPayload bounds a payload read for verification: one is about 250
// bytes, and the registry's gate reads at most 1 MiB.
const maxCosignPayload = 1 << 20

// Signature is one signature of a signed referrer (a cosign signature, a
// cosign attestation's envelope, a bundle), as CheckReferrer found it.
type Signature struct {
	// Layer is its layer's descriptor: media type, payload digest and size, and
	// annotations.
	Layer ocispec.Descriptor
	// KeyID is the TUF key ID of the key it verifies with, "" if none does.
	KeyID string
	// Signature is the signature in a form every variant of it shares (an
	// ECDSA signature has two): equal for a signature and a copy made from it.
	Signature []byte
	// PredicateType is the predicate type of the in-toto statement an
	// attestation's signature covers ("https://slsa.dev/provenance/v1"), as
	// the statement gives it once the signature verifies; "" for a signature
	// that is not an attestation's.
	PredicateType string
	// Predicate is that statement's predicate, as its JSON (nil for a
	// signature that is not an attestation's); a pull policy matches fields
	// of it.
	Predicate json.RawMessage
	// Err says why it does not verify; nil when it does.
	Err error
	// Expiry is when the signature stops vouching for its subject, as its
	// signer set it (a notation envelope's signed expiry); zero for none.
	// A verdict that it verifies holds only until then.
	Expiry time.Time
}

// Signatures are the signatures of one artifact, in layer order.
type Signatures []Signature

// Verified returns nil when every signature verifies, each with another key
// (so n signatures are n signers), and says which does not otherwise.
func (sigs Signatures) Verified() error {
	if len(sigs) == 0 {
		return errors.New("the signature manifest has no signature")
	}
	by := map[string]int{}
	for i, s := range sigs {
		if s.Err != nil {
			return fmt.Errorf("signature %d: %w", i, s.Err)
		}
		if j, ok := by[s.KeyID]; ok {
			return fmt.Errorf("signatures %d and %d are by the same key %s: an artifact carries one signature per signer", j, i, shortKeyID(s.KeyID))
		}
		by[s.KeyID] = i
	}
	return nil
}

// shortKeyID is the start of a key ID, as people compare them.
func shortKeyID(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// CosignArtifact checks a cosign signature artifact of subject in repo, as
// the registry's gate and `trustctl verify` need it, which is stricter than
// `cosign verify`: the artifact has exactly the shape a signer writes
// (checkCosignShape: the derived config, the annotations cosign writes, no
// subject or other fields), and EVERY layer
//   - is a simple-signing layer (signer.CosignSimpleSigningMediaType) whose
//     blob, fetched with blob and checked against the layer's digest and size,
//     is a payload of type "cosign container image signature" with no unknown
//     critical field;
//   - names subject as its docker-manifest-digest;
//   - names repo as its docker-reference: repo is either a repository name
//     ("acme/app"), which matches that repository on any registry host
//     ("127.0.0.1:5000/acme/app"), since a registry has many names, or includes a
//     host, which must then match too; a ":tag" or "@digest" (which must be
//     subject) after the name, as `cosign sign --sign-container-identity` writes,
//     is allowed;
//   - carries a signature that verifies over the payload with one of keys, with
//     the key's TUF scheme, and with a key no other layer's signature verifies
//     with;
//   - carries, if any, a certificate for that key.
//
// cosign itself would accept an artifact whose payload names another repository
// (it checks only the digest), or where one good signature sits beside bad ones.
func CosignArtifact(ctx context.Context, manifest []byte, blob func(digest.Digest) ([]byte, error), keys Keys, repo string, subject digest.Digest) error {
	sigs, err := CheckCosignArtifact(ctx, manifest, blob, keys, repo, subject)
	if err != nil {
		return err
	}
	return sigs.Verified()
}

// CheckCosignArtifact checks a cosign signature artifact of subject in repo as
// CosignArtifact does, but reports each signature on its own: the error
// is for an artifact that is not in a signer's shape, or when no key or
// payload can be read (nothing in it can then be trusted), and each
// signature's Err says why that one does not verify. The registry's gate uses
// it to find which signatures of a stored artifact still verify.
func CheckCosignArtifact(ctx context.Context, manifest []byte, blob func(digest.Digest) ([]byte, error), keys Keys, repo string, subject digest.Digest) (Signatures, error) {
	if err := subject.Validate(); err != nil {
		return nil, fmt.Errorf("subject %q: %w", subject, err)
	}
	verifiers := keys.verifiers()
	if len(verifiers) == 0 {
		return nil, errors.New("no key to check the signatures with")
	}
	shape, err := checkCosignShape(manifest)
	if err != nil {
		return nil, err
	}

	payloads := map[digest.Digest][]byte{}
	sigs := make(Signatures, len(shape.layers))
	for i, l := range shape.layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := &sigs[i]
		s.Layer = l
		sig, _ := base64.StdEncoding.DecodeString(l.Annotations[signer.CosignSignatureAnnotation]) // checked by the shape
		s.Signature = sig
		payload, ok := payloads[l.Digest]
		if !ok {
			var err error
			if payload, err = fetchPayload(blob, l, maxCosignPayload); err != nil {
				return nil, fmt.Errorf("signature %d: %w", i, err)
			}
			if err := checkPayload(payload, repo, subject); err != nil {
				s.Err = err
				continue
			}
			payloads[l.Digest] = payload
		}
		for _, v := range verifiers {
			if v.verify(payload, sig) {
				s.KeyID, s.Signature = v.id, canonicalSignature(v.pub, sig)
				break
			}
		}
		if s.KeyID == "" {
			s.Err = fmt.Errorf("it does not verify with any of the %d keys", len(verifiers))
			continue
		}
		if c, ok := l.Annotations[CosignCertificateAnnotation]; ok {
			certs, _ := parseCertificates(c, true) // parsed by the shape
			if err := certifies(certs[0], verifiers[slices.IndexFunc(verifiers, func(v keyVerifier) bool { return v.id == s.KeyID })].pub); err != nil {
				s.Err = err
			}
		}
	}
	return sigs, nil
}

// certifies checks a layer's certificate is for the key its signature verifies
// with, as cosign checks a certificate given with --key.
func certifies(c *x509.Certificate, pub crypto.PublicKey) error {
	a, err := x509.MarshalPKIXPublicKey(c.PublicKey)
	if err != nil {
		return fmt.Errorf("its certificate's key: %w", err)
	}
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil || !bytes.Equal(a, b) {
		return errors.New("its certificate is for another key than the one its signature verifies with")
	}
	return nil
}

// fetchPayload reads a layer's payload (at most max bytes) and checks it is
// the blob the layer names.
func fetchPayload(blob func(digest.Digest) ([]byte, error), l ocispec.Descriptor, max int64) ([]byte, error) {
	if err := l.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("payload digest %q: %w", l.Digest, err)
	}
	if l.Size < 0 || l.Size > max {
		return nil, fmt.Errorf("payload %s: a size of %d bytes (at most %d)", l.Digest, l.Size, max)
	}
	if blob == nil {
		return nil, errors.New("no way to read payloads")
	}
	b, err := blob(l.Digest)
	if err != nil {
		return nil, fmt.Errorf("payload %s: %w", l.Digest, err)
	}
	if int64(len(b)) != l.Size || l.Digest.Algorithm().FromBytes(b) != l.Digest {
		return nil, fmt.Errorf("payload %s: the blob read is not the one the layer names", l.Digest)
	}
	return b, nil
}

// checkPayload checks a simple-signing payload names repo and subject.
func checkPayload(payload []byte, repo string, subject digest.Digest) error {
	var p struct {
		Critical *json.RawMessage `json:"critical"`
		Optional map[string]any   `json:"optional"`
	}
	if err := json.Unmarshal(payload, &p); err != nil || p.Critical == nil {
		return fmt.Errorf("the payload is not a simple-signing document: %v", err)
	}
	// The simple-signing format asks consumers to refuse critical fields they do
	// not know: they might restrict what the signature vouches for.
	dec := json.NewDecoder(bytes.NewReader(*p.Critical))
	dec.DisallowUnknownFields()
	var c signer.CosignCritical
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("the payload's critical section: %w", err)
	}
	if c.Type != signer.CosignPayloadType {
		return fmt.Errorf("the payload is of type %q, not %q", c.Type, signer.CosignPayloadType)
	}
	if c.Image.DockerManifestDigest != subject.String() {
		return fmt.Errorf("the payload signs %q, not %s", c.Image.DockerManifestDigest, subject)
	}
	if !namesRepository(c.Identity.DockerReference, repo, subject) {
		return fmt.Errorf("the payload names %q, not %s", c.Identity.DockerReference, repo)
	}
	return nil
}

// namesRepository reports whether a payload's docker-reference names repo (see
// CosignArtifact for the rules).
func namesRepository(ref, repo string, subject digest.Digest) bool {
	if ref == "" || repo == "" {
		return false
	}
	if name, d, ok := strings.Cut(ref, "@"); ok {
		if d != subject.String() {
			return false
		}
		ref = name
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i] // a tag, not a port: a port comes before the first '/'
	}
	if hasHost(repo) {
		return ref == repo
	}
	if hasHost(ref) {
		_, ref, _ = strings.Cut(ref, "/")
	}
	return ref == repo
}

// hasHost reports whether a reference starts with a registry host, by Docker's
// rule: a first component with a '.' or a ':', or "localhost".
func hasHost(ref string) bool {
	first, _, ok := strings.Cut(ref, "/")
	return ok && (strings.ContainsAny(first, ".:") || first == "localhost")
}
