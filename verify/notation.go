package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-core-go/signature/cose"
	"github.com/notaryproject/notation-core-go/signature/jws"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Notation (Notary Project) signatures, as notation v1.3.2 pushes them
// (notation-go's registry.PushSignature, packed by oras-go as an image
// manifest of version 1.1):
//
//	schemaVersion  2
//	mediaType      the OCI image manifest
//	config         the empty JSON blob "{}" typed
//	               application/vnd.cncf.notary.signature (digest and size of "{}")
//	layers         exactly one: the envelope, application/jose+json (JWS) or
//	               application/cose (COSE); media type, digest and size only
//	subject        the signed manifest: media type, digest and size only
//	annotations    exactly io.cncf.notary.x509chain.thumbprint#S256 (a JSON list
//	               of the SHA-256 of each certificate of the envelope's chain) and
//	               org.opencontainers.image.created (the envelope's signing time)
//	anything else  refused: artifactType, urls, data, platform, annotations on a
//	               descriptor, unknown fields, a key twice or in another case
//
// The envelope is read and verified by notation-core-go. Its payload
// (application/vnd.cncf.notary.payload.v1+json) must name the subject: its
// targetArtifact has the subject's digest, media type and size (and may carry
// the signed annotations `notation sign --user-metadata` adds). The signature's
// expiry, when the signer set one, must not have passed.
//
// Trust comes from the trust graph, never from X.509: the envelope's leaf
// certificate must hold a public key delegated for the repository now (its TUF
// key ID is the signature's KeyID), and the envelope must verify with it. The
// certificate's issuer, subject and validity period are not read, nor is the
// rest of the chain trusted: the delegation says who may sign, and the
// certificate only carries the key. A notation envelope binds the subject's
// digest but no repository name, so a key delegated for two repositories can
// have its signatures copied from one to the other.

// FormatNotation is a notation signature: a JWS or COSE envelope in a manifest
// whose config is typed NotationArtifactType, pushed by digest with a subject.
const FormatNotation Format = "notation"

// The notation signature's media types and manifest annotation.
const (
	// NotationArtifactType types a notation signature manifest's config (and,
	// by the referrers API's rule, its artifact type).
	NotationArtifactType = "application/vnd.cncf.notary.signature"
	// NotationPayloadType is the content type of an envelope's payload.
	NotationPayloadType = "application/vnd.cncf.notary.payload.v1+json"
	// NotationThumbprintAnnotation lists the SHA-256 of each certificate of the
	// envelope's chain, leaf first, as a JSON list of hex strings.
	NotationThumbprintAnnotation = "io.cncf.notary.x509chain.thumbprint#S256"
	// notationSigningScheme is the scheme `notation sign` writes; the signing
	// authority scheme comes from envelope-generating plugins.
	notationSigningScheme = signature.SigningSchemeX509
)

// notationEnvelopeTypes are the envelope media types notation writes.
var notationEnvelopeTypes = []string{jws.MediaTypeEnvelope, cose.MediaTypeEnvelope}

// isNotationSignature routes a manifest whose config or artifact type is
// notation's to the notation format.
func isNotationSignature(h *manifestHead) bool {
	return h.ArtifactType == NotationArtifactType || (h.Config != nil && h.Config.MediaType == NotationArtifactType)
}

func checkNotation(ctx context.Context, a Artifact, keys Keys, repo string, subject digest.Digest) (Signatures, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	shape, err := checkNotationShape(a.Manifest, subject)
	if err != nil {
		return nil, err
	}
	raw, err := fetchPayload(a.Blob, shape.envelope)
	if err != nil {
		return nil, fmt.Errorf("the envelope: %w", err)
	}
	if shape.envelope.MediaType == jws.MediaTypeEnvelope {
		if err := checkJWSShape(raw); err != nil {
			return nil, err
		}
	}
	env, err := signature.ParseEnvelope(shape.envelope.MediaType, raw)
	if err != nil {
		return nil, fmt.Errorf("the envelope is not a notation %s envelope: %w", shape.envelope.MediaType, err)
	}
	sig := Signature{Layer: shape.envelope}
	content, err := env.Verify()
	if err != nil {
		// Whether it verifies with the key its certificate names: nothing
		// of the envelope can be read unverified.
		sig.Err = fmt.Errorf("the envelope does not verify: %w", err)
		return Signatures{sig}, nil
	}
	info := content.SignerInfo
	sig.Signature = info.Signature
	// The manifest's annotations are the pusher's bytes: they must say what
	// the envelope says, as notation writes them.
	if err := shape.matches(&info); err != nil {
		return nil, err
	}
	sig.Expiry = info.SignedAttributes.Expiry
	sig.Err = checkNotationContent(content, shape.subject, a.now())
	if sig.Err != nil {
		return Signatures{sig}, nil
	}
	v, ok := keys.match(info.CertificateChain[0].PublicKey) // Verify needs a chain
	if !ok {
		sig.Err = fmt.Errorf("its certificate's key is not one of the %d keys delegated for %s", len(keys.verifiers()), repo)
		return Signatures{sig}, nil
	}
	sig.KeyID = v.id
	return Signatures{sig}, nil
}

// notationShape is a notation signature manifest checkNotationShape accepted.
type notationShape struct {
	envelope, subject     ocispec.Descriptor
	thumbprints, creation string
}

// checkNotationShape decodes a notation signature manifest strictly and checks
// it has exactly the shape notation writes, for subject.
func checkNotationShape(manifest []byte, subject digest.Digest) (*notationShape, error) {
	const what = "the notation signature manifest"
	fields, err := strictObject(manifest, what, "schemaVersion", "mediaType", "config", "layers", "subject", "annotations")
	if err != nil {
		return nil, err
	}
	var version int
	if err := decodeField(fields, "schemaVersion", &version); err != nil || version != 2 {
		return nil, fmt.Errorf("%s has schemaVersion %d, not 2 (%v)", what, version, err)
	}
	var mediaType string
	if err := decodeField(fields, "mediaType", &mediaType); err != nil || mediaType != ocispec.MediaTypeImageManifest {
		return nil, fmt.Errorf("%s is a %q, not the %s notation writes", what, mediaType, ocispec.MediaTypeImageManifest)
	}
	for _, k := range []string{"config", "layers", "subject", "annotations"} {
		if _, ok := fields[k]; !ok {
			return nil, fmt.Errorf("%s has no %s", what, k)
		}
	}
	config, err := decodeDescriptor(fields["config"], "the config", false)
	if err != nil {
		return nil, err
	}
	if config.MediaType != NotationArtifactType || config.Digest != ociEmptyDigest || config.Size != ociEmptySize {
		return nil, fmt.Errorf("the config is %s %s (%d bytes), not the empty %s config notation writes", config.MediaType, config.Digest, config.Size, NotationArtifactType)
	}
	var layers []json.RawMessage
	if err := decodeField(fields, "layers", &layers); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(layers) != 1 {
		return nil, fmt.Errorf("%s has %d layers, not the one envelope notation writes", what, len(layers))
	}
	s := &notationShape{}
	if s.envelope, err = decodeDescriptor(layers[0], "the envelope layer", false); err != nil {
		return nil, err
	}
	if !slices.Contains(notationEnvelopeTypes, s.envelope.MediaType) {
		return nil, fmt.Errorf("the envelope layer is a %q, not one of %q", s.envelope.MediaType, notationEnvelopeTypes)
	}
	if s.subject, err = decodeDescriptor(fields["subject"], "the subject", false); err != nil {
		return nil, err
	}
	if s.subject.Digest != subject {
		return nil, fmt.Errorf("%s has the subject %s, not %s", what, s.subject.Digest, subject)
	}
	annotations, err := strictObject(fields["annotations"], "the manifest's annotations", NotationThumbprintAnnotation, ocispec.AnnotationCreated)
	if err != nil {
		return nil, err
	}
	if err := decodeField(annotations, NotationThumbprintAnnotation, &s.thumbprints); err != nil {
		return nil, fmt.Errorf("the manifest's annotations: %w", err)
	}
	if err := decodeField(annotations, ocispec.AnnotationCreated, &s.creation); err != nil {
		return nil, fmt.Errorf("the manifest's annotations: %w", err)
	}
	return s, nil
}

// matches checks the manifest's annotations are those notation derives from
// the envelope: the thumbprints of its certificate chain, in order, and its
// signing time.
func (s *notationShape) matches(info *signature.SignerInfo) error {
	thumbprints := make([]string, 0, len(info.CertificateChain))
	for _, c := range info.CertificateChain {
		sum := sha256.Sum256(c.Raw)
		thumbprints = append(thumbprints, hex.EncodeToString(sum[:]))
	}
	want, err := json.Marshal(thumbprints)
	if err != nil {
		return err
	}
	if s.thumbprints != string(want) {
		return fmt.Errorf("the %s annotation is %s, not the envelope's certificate chain %s", NotationThumbprintAnnotation, s.thumbprints, want)
	}
	created, err := time.Parse(time.RFC3339, s.creation)
	if err != nil || !created.Equal(info.SignedAttributes.SigningTime) {
		return fmt.Errorf("the %s annotation is %q, not the envelope's signing time %s", ocispec.AnnotationCreated, s.creation, info.SignedAttributes.SigningTime.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkNotationContent checks a verified envelope's signed content: a notation
// payload naming subject, the scheme notation signs with, no critical
// attribute Signet does not process, and an expiry not passed at now.
func checkNotationContent(content *signature.EnvelopeContent, subject ocispec.Descriptor, now time.Time) error {
	attrs := content.SignerInfo.SignedAttributes
	if attrs.SigningScheme != notationSigningScheme {
		return fmt.Errorf("the envelope's signing scheme is %q, not %q", attrs.SigningScheme, notationSigningScheme)
	}
	for _, a := range attrs.ExtendedAttributes {
		if a.Critical {
			return fmt.Errorf("the envelope carries the critical signed attribute %v, which the registry does not process", a.Key)
		}
	}
	if !attrs.Expiry.IsZero() && !now.Before(attrs.Expiry) {
		return fmt.Errorf("the signature expired at %s", attrs.Expiry.UTC().Format(time.RFC3339))
	}
	if content.Payload.ContentType != NotationPayloadType {
		return fmt.Errorf("the envelope's payload is a %q, not %s", content.Payload.ContentType, NotationPayloadType)
	}
	fields, err := strictObject(content.Payload.Content, "the envelope's payload", "targetArtifact")
	if err != nil {
		return err
	}
	raw, ok := fields["targetArtifact"]
	if !ok {
		return errors.New("the envelope's payload names no targetArtifact")
	}
	target, err := decodeDescriptor(raw, "the payload's targetArtifact", true)
	if err != nil {
		return err
	}
	if target.Digest != subject.Digest || target.MediaType != subject.MediaType || target.Size != subject.Size {
		return fmt.Errorf("the envelope signs %s %s (%d bytes), not the subject %s %s (%d bytes)",
			target.MediaType, target.Digest, target.Size, subject.MediaType, subject.Digest, subject.Size)
	}
	return nil
}

// checkJWSShape checks a JWS envelope is the JSON object notation writes,
// keys compared exactly (notation-core-go reads it with encoding/json, which
// matches keys in any case and takes the last of two): the protected header,
// payload and signature, and the unprotected header with the certificate
// chain, the signing agent and a timestamp countersignature, which are not
// signed and carry no trust.
func checkJWSShape(raw []byte) error {
	fields, err := strictObject(raw, "the JWS envelope", "payload", "protected", "header", "signature")
	if err != nil {
		return err
	}
	header, ok := fields["header"]
	if !ok {
		return errors.New("the JWS envelope has no header")
	}
	_, err = strictObject(header, "the JWS envelope's header", "x5c", "io.cncf.notary.signingAgent", "io.cncf.notary.timestampSignature")
	return err
}

// now is the artifact's clock.
func (a Artifact) now() time.Time {
	if a.Now == nil {
		return time.Now()
	}
	return a.Now()
}
