package signer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Cosign signature artifacts, as cosign v2 writes them with `cosign sign --key`
// (its pkg/oci/static, pkg/oci/empty and pkg/oci/mutate over go-containerregistry):
//
//	tag      sha256-<hex of the signed manifest's digest>.sig, in the signed repository
//	manifest an OCI image manifest (compact JSON), no subject, no annotations
//	config   {"architecture":"","created":"0001-01-01T00:00:00Z","history":[...],
//	         "os":"","rootfs":{"type":"layers","diff_ids":[<each layer's digest>]},
//	         "config":{}}: one history entry and one diff_id per layer
//	layers   one per signature, media type CosignSimpleSigningMediaType, all with
//	         the same blob: the simple-signing payload, which names the repository
//	         (host included) and the signed digest; the signature is the layer's
//	         annotation CosignSignatureAnnotation, base64 (standard, padded)
//
// Co-signing appends a layer and rewrites the config; cosign leaves the manifest
// alone when one of its signatures already verifies with the signing key.
//
// `cosign verify --key` accepts an artifact when any one layer's signature
// verifies over its payload and the payload's docker-manifest-digest is the
// image's digest; it never looks at docker-reference, the config or the layer
// media types. VerifyCosignSignature is stricter, as the registry's gate needs.

const (
	// CosignSimpleSigningMediaType is the media type of a signature layer.
	CosignSimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// CosignSignatureAnnotation is the layer annotation holding the base64 signature.
	CosignSignatureAnnotation = "dev.cosignproject.cosign/signature"
	// cosignPayloadType is the simple-signing payload's critical.type.
	cosignPayloadType = "cosign container image signature"
	// maxCosignLayers is cosign's own limit on signatures in one artifact.
	maxCosignLayers = 1000
	// maxCosignPayload bounds a payload read for verification: one is about 250
	// bytes, and the registry's gate reads at most 1 MiB.
	maxCosignPayload = 1 << 20
)

// The media types of a Docker schema2 signature manifest, which cosign writes
// with COSIGN_DOCKER_MEDIA_TYPES=1: co-signing keeps them.
const (
	dockerManifestMediaType = "application/vnd.docker.distribution.manifest.v2+json"
	dockerConfigMediaType   = "application/vnd.docker.container.image.v1+json"
)

// CosignSignatureTag is the tag cosign looks for the signatures of subject under:
// "sha256-<hex>.sig".
func CosignSignatureTag(subject digest.Digest) string {
	return subject.Algorithm().String() + "-" + subject.Encoded() + ".sig"
}

// CosignPayload is the simple-signing payload cosign signs for subject in ref, the
// repository with its registry host ("127.0.0.1:5000/acme/app"): these bytes
// exactly, with no trailing newline, so every signer of one image signs one blob.
func CosignPayload(ref string, subject digest.Digest) []byte {
	// Field order and null optional are cosign's (sigstore's payload.Cosign).
	b, _ := json.Marshal(simpleSigning{
		Critical: critical{
			Identity: identity{DockerReference: ref},
			Image:    image{DockerManifestDigest: subject.String()},
			Type:     cosignPayloadType,
		},
	})
	return b
}

type simpleSigning struct {
	Critical critical       `json:"critical"`
	Optional map[string]any `json:"optional"`
}

type critical struct {
	Identity identity `json:"identity"`
	Image    image    `json:"image"`
	Type     string   `json:"type"`
}

type identity struct {
	DockerReference string `json:"docker-reference"`
}

type image struct {
	DockerManifestDigest string `json:"docker-manifest-digest"`
}

// CosignArtifact is a signature manifest and the blobs it needs.
type CosignArtifact struct {
	// Tag is CosignSignatureTag of the signed digest.
	Tag string
	// MediaType is the manifest's media type (the Content-Type to PUT it with).
	MediaType string
	// Manifest is the signature manifest's bytes, Digest their digest.
	Manifest []byte
	Digest   digest.Digest
	// Blobs are the config and payload the manifest references, by digest: push
	// them before the manifest. Layers kept from a previous manifest are in the
	// registry already and are not repeated here.
	Blobs map[digest.Digest][]byte
	// Unchanged is true when the previous manifest already held a signature by
	// the key: Manifest is that manifest, and there is nothing to push.
	Unchanged bool
}

// SignCosign signs subject in ref (the repository with its host, as
// CosignPayload takes it) with key and returns the cosign signature artifact.
// prev is the manifest under the signature tag now, or nil: with one, the result
// co-signs it, keeping its layers (and media types) in order and adding one; if
// one of prev's signatures over this payload already verifies with key, prev is
// returned Unchanged, as cosign does, so signing twice adds nothing.
//
// The signature scheme is the key's TUF scheme (see tufSigner): ECDSA P-256 with
// SHA-256 and Ed25519 are what `cosign verify --key` checks for those keys;
// cosign verifies any RSA key as PKCS#1 v1.5, so it cannot check an RSA-PSS
// signature, which only VerifyCosignSignature does.
func SignCosign(ref string, subject digest.Digest, key *Key, prev []byte) (*CosignArtifact, error) {
	if err := subject.Validate(); err != nil {
		return nil, fmt.Errorf("cosign signature: subject %q: %w", subject, err)
	}
	if ref == "" {
		return nil, errors.New("cosign signature: no repository to name in the payload")
	}
	if key == nil || key.Signer == nil {
		return nil, errors.New("cosign signature: a key without its private half (use KeyStore.Load)")
	}
	alg, err := algorithmOf(key.Signer.Public())
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", key.Name, err)
	}
	payload := CosignPayload(ref, subject)
	payloadDigest := digest.FromBytes(payload)

	m := sigManifest{SchemaVersion: 2, MediaType: ocispec.MediaTypeImageManifest}
	configType := ocispec.MediaTypeImageConfig
	if prev != nil {
		if err := json.Unmarshal(prev, &m); err != nil {
			return nil, fmt.Errorf("co-signing: the previous signature manifest: %w", err)
		}
		if m.SchemaVersion != 2 || len(m.Layers) == 0 {
			return nil, errors.New("co-signing: the previous signature manifest is not a cosign signature manifest")
		}
		if m.MediaType == dockerManifestMediaType {
			configType = dockerConfigMediaType
		}
		pub, err := publicVerifier(key.Signer.Public())
		if err != nil {
			return nil, err
		}
		for i, l := range m.Layers {
			var d sigDescriptor
			if err := json.Unmarshal(l, &d); err != nil || d.MediaType != CosignSimpleSigningMediaType {
				return nil, fmt.Errorf("co-signing: layer %d of the previous signature manifest is not a cosign signature", i)
			}
			sig, err := base64.StdEncoding.DecodeString(d.Annotations[CosignSignatureAnnotation])
			if err == nil && d.Digest == payloadDigest && pub(payload, sig) {
				return &CosignArtifact{
					Tag: CosignSignatureTag(subject), MediaType: m.mediaType(), Manifest: prev,
					Digest: digest.FromBytes(prev), Blobs: map[digest.Digest][]byte{}, Unchanged: true,
				}, nil
			}
		}
		if len(m.Layers) >= maxCosignLayers {
			return nil, fmt.Errorf("co-signing: the signature manifest holds %d signatures, cosign's limit", len(m.Layers))
		}
	}

	sig, err := schemeSigner(key.Signer, alg).SignMessage(bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("signing with key %q: %w", key.Name, err)
	}
	layer, err := json.Marshal(sigDescriptor{
		MediaType: CosignSimpleSigningMediaType, Size: int64(len(payload)), Digest: payloadDigest,
		Annotations: map[string]string{CosignSignatureAnnotation: base64.StdEncoding.EncodeToString(sig)},
	})
	if err != nil {
		return nil, err
	}
	m.Layers = append(m.Layers, layer)

	config, err := cosignConfig(m.Layers)
	if err != nil {
		return nil, err
	}
	m.Config = sigDescriptor{MediaType: configType, Size: int64(len(config)), Digest: digest.FromBytes(config)}
	manifest, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &CosignArtifact{
		Tag: CosignSignatureTag(subject), MediaType: m.mediaType(), Manifest: manifest, Digest: digest.FromBytes(manifest),
		Blobs: map[digest.Digest][]byte{m.Config.Digest: config, payloadDigest: payload},
	}, nil
}

// sigManifest is an image manifest in go-containerregistry's field order, which
// is cosign's. Layers stay raw so co-signing keeps every field of those it keeps.
type sigManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	Config        sigDescriptor     `json:"config"`
	Layers        []json.RawMessage `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

func (m *sigManifest) mediaType() string {
	if m.MediaType == "" {
		return ocispec.MediaTypeImageManifest
	}
	return m.MediaType
}

type sigDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Size        int64             `json:"size"`
	Digest      digest.Digest     `json:"digest"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// cosignConfig is the config blob go-containerregistry computes when cosign
// appends layers to its empty image: one zero-time history entry and one diff_id
// (the layer's digest: the payload is stored uncompressed) per layer.
func cosignConfig(layers []json.RawMessage) ([]byte, error) {
	type history struct {
		Created string `json:"created"`
	}
	type rootfs struct {
		Type    string          `json:"type"`
		DiffIDs []digest.Digest `json:"diff_ids"`
	}
	var c struct {
		Architecture string    `json:"architecture"`
		Created      string    `json:"created"`
		History      []history `json:"history"`
		OS           string    `json:"os"`
		RootFS       rootfs    `json:"rootfs"`
		Config       struct{}  `json:"config"`
	}
	const zeroTime = "0001-01-01T00:00:00Z"
	c.Created = zeroTime
	c.RootFS.Type = "layers"
	for i, l := range layers {
		var d sigDescriptor
		if err := json.Unmarshal(l, &d); err != nil {
			return nil, fmt.Errorf("signature layer %d: %w", i, err)
		}
		c.History = append(c.History, history{Created: zeroTime})
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, d.Digest)
	}
	return json.Marshal(c)
}

// CosignSignature is one signature of a cosign artifact, as
// CheckCosignArtifact found it.
type CosignSignature struct {
	// Layer is its layer's descriptor: media type, payload digest and size, and
	// annotations.
	Layer ocispec.Descriptor
	// KeyID is the TUF key ID of the key it verifies with, "" if none does.
	KeyID string
	// Signature is the signature in a form every variant of it shares (an
	// ECDSA signature has two): equal for a signature and a copy made from it.
	Signature []byte
	// Err says why it does not verify; nil when it does.
	Err error
}

// CosignSignatures are the signatures of one artifact, in layer order.
type CosignSignatures []CosignSignature

// Verified returns nil when every signature verifies, each with another key
// (so n signatures are n signers), and says which does not otherwise.
func (sigs CosignSignatures) Verified() error {
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

// VerifyCosignSignature checks a cosign signature artifact of subject in repo, as
// the registry's gate and `trustctl verify` need it, which is stricter than
// `cosign verify`: the artifact has exactly the shape a signer writes
// (checkCosignShape: the derived config, the annotations cosign writes, no
// subject or other fields), and EVERY layer
//   - is a simple-signing layer (CosignSimpleSigningMediaType) whose blob, fetched
//     with blob and checked against the layer's digest and size, is a payload of
//     type "cosign container image signature" with no unknown critical field;
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
func VerifyCosignSignature(ctx context.Context, manifest []byte, blob func(digest.Digest) ([]byte, error), keys []*metadata.Key, repo string, subject digest.Digest) error {
	sigs, err := CheckCosignArtifact(ctx, manifest, blob, keys, repo, subject)
	if err != nil {
		return err
	}
	return sigs.Verified()
}

// CheckCosignArtifact checks a cosign signature artifact of subject in repo as
// VerifyCosignSignature does, but reports each signature on its own: the error
// is for an artifact that is not in a signer's shape, or when no key or
// payload can be read (nothing in it can then be trusted), and each
// signature's Err says why that one does not verify. The registry's gate uses
// it to find which signatures of a stored artifact still verify.
func CheckCosignArtifact(ctx context.Context, manifest []byte, blob func(digest.Digest) ([]byte, error), keys []*metadata.Key, repo string, subject digest.Digest) (CosignSignatures, error) {
	if err := subject.Validate(); err != nil {
		return nil, fmt.Errorf("subject %q: %w", subject, err)
	}
	type keyVerifier struct {
		id     string
		pub    crypto.PublicKey
		verify func(msg, sig []byte) bool
	}
	var verifiers []keyVerifier
	seen := map[string]bool{}
	for _, k := range keys {
		if k == nil || seen[k.Value.PublicKey] {
			continue // one key listed twice is one signer
		}
		pub, err := k.ToPublicKey()
		if err != nil {
			continue // a key go-tuf cannot read verifies nothing
		}
		v, err := publicVerifier(pub)
		if err != nil {
			continue
		}
		id, err := k.ID()
		if err != nil {
			continue
		}
		seen[k.Value.PublicKey] = true
		verifiers = append(verifiers, keyVerifier{id: id, pub: pub, verify: v})
	}
	if len(verifiers) == 0 {
		return nil, errors.New("no key to check the signatures with")
	}
	shape, err := checkCosignShape(manifest)
	if err != nil {
		return nil, err
	}

	payloads := map[digest.Digest][]byte{}
	sigs := make(CosignSignatures, len(shape.layers))
	for i, l := range shape.layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := &sigs[i]
		s.Layer = l
		sig, _ := base64.StdEncoding.DecodeString(l.Annotations[CosignSignatureAnnotation]) // checked by the shape
		s.Signature = sig
		payload, ok := payloads[l.Digest]
		if !ok {
			var err error
			if payload, err = fetchPayload(blob, l); err != nil {
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

// fetchPayload reads a layer's payload and checks it is the blob the layer names.
func fetchPayload(blob func(digest.Digest) ([]byte, error), l ocispec.Descriptor) ([]byte, error) {
	if err := l.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("payload digest %q: %w", l.Digest, err)
	}
	if l.Size < 0 || l.Size > maxCosignPayload {
		return nil, fmt.Errorf("payload %s: a size of %d bytes (at most %d)", l.Digest, l.Size, maxCosignPayload)
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
	var c critical
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("the payload's critical section: %w", err)
	}
	if c.Type != cosignPayloadType {
		return fmt.Errorf("the payload is of type %q, not %q", c.Type, cosignPayloadType)
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
// VerifyCosignSignature for the rules).
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

// publicVerifier checks signatures of pub's algorithm with its one scheme, the
// one SignMetadata and SignCosign use.
func publicVerifier(pub crypto.PublicKey) (func(msg, sig []byte) bool, error) {
	alg, err := algorithmOf(pub)
	if err != nil {
		return nil, err
	}
	switch alg {
	case ECDSAP256:
		k := pub.(*ecdsa.PublicKey)
		return func(msg, sig []byte) bool {
			d := sha256.Sum256(msg)
			return ecdsa.VerifyASN1(k, d[:], sig)
		}, nil
	case Ed25519:
		k := pub.(ed25519.PublicKey)
		return func(msg, sig []byte) bool { return ed25519.Verify(k, msg, sig) }, nil
	case RSAPSS3072:
		k := pub.(*rsa.PublicKey)
		return func(msg, sig []byte) bool {
			d := sha256.Sum256(msg)
			return rsa.VerifyPSS(k, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA256}) == nil
		}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnsupportedAlgorithm, alg)
}
