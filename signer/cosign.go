package signer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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
// media types. The verify package checks artifacts more strictly, as the
// registry's gate needs, against the facts declared here (the media types, the
// annotation, the payload and the derived config), so that what SignCosign
// writes and what verify accepts are one format written once.

const (
	// CosignSimpleSigningMediaType is the media type of a signature layer.
	CosignSimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// CosignSignatureAnnotation is the layer annotation holding the base64 signature.
	CosignSignatureAnnotation = "dev.cosignproject.cosign/signature"
	// CosignPayloadType is the simple-signing payload's critical.type.
	CosignPayloadType = "cosign container image signature"
	// MaxCosignSignatures is cosign's own limit on signatures (layers) in one
	// artifact.
	MaxCosignSignatures = 1000
)

// The media types of a Docker schema2 signature manifest, which cosign writes
// with COSIGN_DOCKER_MEDIA_TYPES=1: co-signing keeps them.
const (
	DockerManifestMediaType = "application/vnd.docker.distribution.manifest.v2+json"
	DockerConfigMediaType   = "application/vnd.docker.container.image.v1+json"
)

// CosignSignatureTag is the tag cosign looks for the signatures of subject under:
// "sha256-<hex>.sig".
func CosignSignatureTag(subject digest.Digest) string {
	return subject.Algorithm().String() + "-" + subject.Encoded() + cosignTagSuffix
}

// cosignTagSuffix ends the tag cosign writes a signature manifest under.
const cosignTagSuffix = ".sig"

// CosignSignatureSubject parses a signature tag: the subject tag is
// CosignSignatureTag of, and false when tag is not one (not "<alg>-<hex>.sig",
// or not a valid digest).
func CosignSignatureSubject(tag string) (digest.Digest, bool) {
	rest, ok := strings.CutSuffix(tag, cosignTagSuffix)
	if !ok {
		return "", false
	}
	alg, hex, ok := strings.Cut(rest, "-")
	if !ok {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
	if d.Validate() != nil {
		return "", false
	}
	return d, true
}

// CosignPayload is the simple-signing payload cosign signs for subject in ref, the
// repository with its registry host ("127.0.0.1:5000/acme/app"): these bytes
// exactly, with no trailing newline, so every signer of one image signs one blob.
func CosignPayload(ref string, subject digest.Digest) []byte {
	// Field order and null optional are cosign's (sigstore's payload.Cosign).
	b, _ := json.Marshal(simpleSigning{
		Critical: CosignCritical{
			Identity: identity{DockerReference: ref},
			Image:    image{DockerManifestDigest: subject.String()},
			Type:     CosignPayloadType,
		},
	})
	return b
}

type simpleSigning struct {
	Critical CosignCritical `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// CosignCritical is the critical section of a simple-signing payload, every
// field cosign writes there: the simple-signing format asks a verifier to
// refuse a critical field it does not know, so these are all there may be.
type CosignCritical struct {
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
// signature, which only verify.CosignArtifact does.
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
		if m.MediaType == DockerManifestMediaType {
			configType = DockerConfigMediaType
		}
		pub, err := SchemeVerifier(key.Signer.Public())
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
		if len(m.Layers) >= MaxCosignSignatures {
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

	config, err := CosignConfig(m.Layers)
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

// CosignConfig is the config blob go-containerregistry computes when cosign
// appends layers to its empty image: one zero-time history entry and one diff_id
// (the layer's digest: the payload is stored uncompressed) per layer. SignCosign
// writes it, and verify requires it of every artifact (or the OCI empty config).
func CosignConfig(layers []json.RawMessage) ([]byte, error) {
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
