package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signet-oss/signet/signer"
)

// Sigstore bundles: the OCI referrer cosign v3 pushes for `cosign sign` and
// `cosign attest` (its default since v3), one per signature, found through
// the referrers API or the referrers-tag index. Its one layer is a Sigstore
// bundle v0.3 holding a DSSE envelope of an in-toto statement about the
// subject: predicate type https://sigstore.dev/cosign/sign/v1 for a
// signature, the attested predicate's for an attestation. The bundle is read
// with Sigstore's own protobuf types (protobuf-specs, protojson), and its
// envelope verified as a cosign attestation's is (verifyEnvelope: the DSSE
// library, the delegated keys as the only trusted material).
//
// What the signature covers is the statement, which binds the subject's
// digest. A signature's statement names no repository, so a key delegated for
// two repositories can have its signature bundles copied from one to the
// other: that is accepted, as the signer vouched for the digest. (An
// attestation's statement names the repository, and that name is checked.)
//
// Signet checks no transparency log entry, signed timestamp or certificate:
// a bundle signed with a key is verified by that key alone, as `cosign verify
// --insecure-ignore-tlog=true` does. Log entries and timestamps a bundle
// carries are parsed for their form (checkLogEntries) and not trusted: nothing
// reads them. A bundle signed with a certificate (keyless) is refused, since
// the trust graph delegates keys. (sigstore-go would verify the same, but it
// links Rekor's OpenAPI client: some 250 packages, 19 of trustctl's 47 MB and
// about 9 ms of its start, none of them needed for a key's signature.)

// FormatSigstoreBundle is a Sigstore bundle referrer, pushed by digest with a
// subject.
const FormatSigstoreBundle Format = "sigstore-bundle"

// The Sigstore bundle referrer's media type (its artifactType, its config's
// and its layer's), and the manifest annotations cosign writes beside the
// creation time.
const (
	SigstoreBundleMediaType       = "application/vnd.dev.sigstore.bundle.v0.3+json"
	BundleContentAnnotation       = "dev.sigstore.bundle.content"
	BundlePredicateTypeAnnotation = "dev.sigstore.bundle.predicateType"
	// bundleContentDSSE is the content annotation of a bundle holding a DSSE
	// envelope, the only one cosign pushes to a registry.
	bundleContentDSSE = "dsse-envelope"
	// maxBundle bounds a bundle read for verification: an envelope and its
	// verification material.
	maxBundle = maxEnvelope + 64<<10
	// maxLogEntries bounds a bundle's transparency log entries, as sigstore's
	// own verifier does.
	maxLogEntries = 32
)

// dockerManifestListMediaType is Docker's index, a subject's possible type.
const dockerManifestListMediaType = "application/vnd.docker.distribution.manifest.list.v2+json"

// isSigstoreBundle routes a manifest marked as a Sigstore bundle (its
// artifactType, or its layers' media type) to the bundle format.
func isSigstoreBundle(h *manifestHead) bool {
	if h.ArtifactType == SigstoreBundleMediaType {
		return true
	}
	if len(h.Layers) == 0 {
		return false
	}
	for _, l := range h.Layers {
		if l.MediaType != SigstoreBundleMediaType {
			return false
		}
	}
	return true
}

// checkSigstoreBundle checks a Sigstore bundle referrer of subject in repo:
// the manifest in exactly the shape cosign v3 writes (checkBundleManifest),
// and its bundle (checkBundle). It carries one signature.
func checkSigstoreBundle(ctx context.Context, a Artifact, keys Keys, repo string, subject digest.Digest) (Signatures, error) {
	verifiers := keys.verifiers()
	if len(verifiers) == 0 {
		return nil, errors.New("no key to check the bundle with")
	}
	l, predicateType, err := checkBundleManifest(a.Manifest, subject)
	if err != nil {
		return nil, err
	}
	raw, err := fetchPayload(a.Blob, l, maxBundle)
	if err != nil {
		return nil, fmt.Errorf("the bundle: %w", err)
	}
	s, err := checkBundle(ctx, raw, verifiers, repo, subject)
	if err != nil {
		return nil, err
	}
	s.Layer = l
	if s.Err == nil && s.PredicateType != predicateType {
		s.Err = fmt.Errorf("its statement's predicate type %q is not the manifest's %s %q", s.PredicateType, BundlePredicateTypeAnnotation, predicateType)
	}
	return Signatures{s}, nil
}

// checkBundleManifest decodes a bundle referrer's manifest strictly and checks
// it has exactly the shape cosign v3 writes:
//
//	schemaVersion  2
//	mediaType      OCI image manifest
//	artifactType   the bundle media type
//	config         the OCI empty config, with the bundle media type as its
//	               artifactType
//	layers         one: the bundle (media type, digest, size; no annotations)
//	subject        the subject's descriptor (media type, digest, size)
//	annotations    the creation time (RFC 3339), dev.sigstore.bundle.content
//	               ("dsse-envelope") and dev.sigstore.bundle.predicateType
//	anything else  refused
//
// It returns the bundle's layer and the predicate type annotation.
func checkBundleManifest(manifest []byte, subject digest.Digest) (ocispec.Descriptor, string, error) {
	var l ocispec.Descriptor
	const what = "the bundle manifest"
	fields, err := strictObject(manifest, what, "schemaVersion", "mediaType", "artifactType", "config", "layers", "subject", "annotations")
	if err != nil {
		return l, "", err
	}
	if err := checkSchemaVersion(fields, what); err != nil {
		return l, "", err
	}
	for _, f := range []struct{ name, want string }{{"mediaType", ocispec.MediaTypeImageManifest}, {"artifactType", SigstoreBundleMediaType}} {
		if err := checkString(fields, what, f.name, f.want); err != nil {
			return l, "", err
		}
	}

	raw, ok := fields["config"]
	if !ok {
		return l, "", fmt.Errorf("%s has no config", what)
	}
	cf, err := strictObject(raw, "the config", "mediaType", "size", "digest", "artifactType")
	if err != nil {
		return l, "", err
	}
	var c struct {
		mediaType, artifactType string
		size                    int64
		digest                  digest.Digest
	}
	for k, v := range map[string]any{"mediaType": &c.mediaType, "artifactType": &c.artifactType, "size": &c.size, "digest": &c.digest} {
		if err := decodeField(cf, k, v); err != nil {
			return l, "", fmt.Errorf("the config: %w", err)
		}
	}
	if c.mediaType != ociEmptyMediaType || c.digest != ociEmptyDigest || c.size != ociEmptySize || c.artifactType != SigstoreBundleMediaType {
		return l, "", fmt.Errorf("the config is a %s %s (%d bytes) of artifactType %q, not the OCI empty config of artifactType %s",
			c.mediaType, c.digest, c.size, c.artifactType, SigstoreBundleMediaType)
	}

	var layers []json.RawMessage
	if err := decodeField(fields, "layers", &layers); err != nil {
		return l, "", fmt.Errorf("%s: %w", what, err)
	}
	if len(layers) != 1 {
		return l, "", fmt.Errorf("%s has %d layers, not the one bundle cosign writes", what, len(layers))
	}
	if l, err = decodeDescriptor(layers[0], "the bundle layer", false); err != nil {
		return l, "", err
	}
	if l.MediaType != SigstoreBundleMediaType {
		return l, "", fmt.Errorf("the bundle layer is a %q, not %s", l.MediaType, SigstoreBundleMediaType)
	}

	raw, ok = fields["subject"]
	if !ok {
		return l, "", fmt.Errorf("%s has no subject", what)
	}
	sub, err := decodeDescriptor(raw, "the subject", false)
	if err != nil {
		return l, "", err
	}
	if sub.Digest != subject {
		return l, "", fmt.Errorf("%s's subject is %s, not %s", what, sub.Digest, subject)
	}
	switch sub.MediaType {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, signer.DockerManifestMediaType, dockerManifestListMediaType:
	default:
		return l, "", fmt.Errorf("%s's subject is a %q, not a manifest", what, sub.MediaType)
	}

	predicateType, err := checkBundleAnnotations(fields["annotations"])
	if err != nil {
		return l, "", err
	}
	return l, predicateType, nil
}

// checkBundleAnnotations checks a bundle manifest's annotations are the three
// cosign writes, and returns the predicate type.
func checkBundleAnnotations(raw json.RawMessage) (string, error) {
	const what = "the bundle manifest's annotations"
	if raw == nil {
		return "", errors.New("the bundle manifest has no annotations")
	}
	a, err := strictObject(raw, what, ocispec.AnnotationCreated, BundleContentAnnotation, BundlePredicateTypeAnnotation)
	if err != nil {
		return "", err
	}
	values := map[string]string{}
	for _, k := range []string{ocispec.AnnotationCreated, BundleContentAnnotation, BundlePredicateTypeAnnotation} {
		var v string
		if err := decodeField(a, k, &v); err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		if v == "" || len(v) > maxPredicateType {
			return "", fmt.Errorf("%s: %s holds %d bytes (1 to %d)", what, k, len(v), maxPredicateType)
		}
		values[k] = v
	}
	if _, err := time.Parse(time.RFC3339, values[ocispec.AnnotationCreated]); err != nil {
		return "", fmt.Errorf("%s: %s is not an RFC 3339 time: %w", what, ocispec.AnnotationCreated, err)
	}
	if v := values[BundleContentAnnotation]; v != bundleContentDSSE {
		return "", fmt.Errorf("%s: %s is %q, not the %q cosign writes", what, BundleContentAnnotation, v, bundleContentDSSE)
	}
	return values[BundlePredicateTypeAnnotation], nil
}

// checkBundle checks a Sigstore bundle in the form cosign v3 writes, signed
// with a key:
//
//	mediaType             the bundle v0.3 media type
//	verificationMaterial  publicKey: {hint: the key's hint, base64 of the
//	                      SHA-256 of its PKIX form}; optionally tlogEntries
//	                      and timestampVerificationData (parsed, not trusted)
//	dsseEnvelope          payload (an in-toto statement), payloadType
//	                      (in-toto), signatures: one, {sig}
//
// Its JSON is checked field by field for that form, then parsed with the
// bundle's protobuf types (protojson: an unknown field anywhere, or a value of
// the wrong type, is refused); its envelope is verified with the delegated
// keys (verifyEnvelope), with no timestamp or log required. The error is for a
// bundle that is not in that form; the signature's Err says why it does not
// verify.
func checkBundle(ctx context.Context, raw []byte, verifiers []keyVerifier, repo string, subject digest.Digest) (Signature, error) {
	var s Signature
	top, err := strictObject(raw, "the bundle", "mediaType", "verificationMaterial", "dsseEnvelope")
	if err != nil {
		return s, err
	}
	var mediaType, hint string
	if err := decodeField(top, "mediaType", &mediaType); err != nil {
		return s, fmt.Errorf("the bundle: %w", err)
	}
	if mediaType != SigstoreBundleMediaType {
		return s, fmt.Errorf("the bundle is a %q, not %s", mediaType, SigstoreBundleMediaType)
	}
	vm, err := strictObject(top["verificationMaterial"], "the bundle's verificationMaterial", "publicKey", "tlogEntries", "timestampVerificationData")
	if _, ok := vm["publicKey"]; !ok && err == nil {
		err = errors.New("the bundle's verificationMaterial has no publicKey")
	}
	if err != nil {
		for _, k := range []string{"certificate", "x509CertificateChain"} {
			if _, ok := vm[k]; ok {
				return s, fmt.Errorf("the bundle is signed with a certificate (%s), not a key: the trust graph delegates keys", k)
			}
		}
		return s, err
	}
	pk, err := strictObject(vm["publicKey"], "the bundle's publicKey", "hint")
	if err != nil {
		return s, err
	}
	if err := decodeField(pk, "hint", &hint); err != nil {
		return s, fmt.Errorf("the bundle's publicKey: %w", err)
	}
	env, sig, err := decodeEnvelope(top["dsseEnvelope"], "the bundle's envelope", false)
	if err != nil {
		return s, err
	}
	s.Signature = sig

	var b protobundle.Bundle
	if err := protojson.Unmarshal(raw, &b); err != nil {
		return s, fmt.Errorf("the bundle: %w", err)
	}
	if err := checkLogEntries(&b); err != nil {
		return s, fmt.Errorf("the bundle: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return s, err
	}

	v, payload, ok := verifyEnvelope(ctx, env, verifiers)
	if !ok {
		s.Err = fmt.Errorf("it does not verify with any of the %d keys for %s", len(verifiers), subject)
		return s, nil
	}
	if err := statementAbout(payload, subject); err != nil {
		s.Err = fmt.Errorf("it does not verify for %s: %w", subject, err)
		return s, nil
	}
	s.KeyID, s.Signature = v.id, canonicalSignature(v.pub, s.Signature)
	if want := keyHint(v.pub); hint != want {
		s.Err = fmt.Errorf("its public key hint %q is not the one cosign writes for the key it verifies with, %q", hint, want)
		return s, nil
	}
	s.PredicateType, s.Predicate, s.Err = checkStatement(payload, repo, subject, true)
	return s, nil
}

// statementAbout checks a bundle's verified payload the way Sigstore's
// verifier binds a bundle to an artifact: an in-toto statement by its
// protobuf type (protojson: no field the type does not define), one of whose
// subjects has subject's digest. checkStatement then asks for exactly one.
func statementAbout(payload []byte, subject digest.Digest) error {
	var st intoto.Statement
	if err := protojson.Unmarshal(payload, &st); err != nil {
		return fmt.Errorf("its payload is not an in-toto statement: %w", err)
	}
	for _, sub := range st.GetSubject() {
		if sub.GetDigest()[subject.Algorithm().String()] == subject.Encoded() {
			return nil
		}
	}
	return errors.New("its statement is about another digest")
}

// checkLogEntries checks the form of the transparency log entries a bundle
// carries, which Signet does not trust (nothing reads them): at most
// maxLogEntries, each with its body, log index, log ID and kind, an inclusion
// proof's checkpoint where a proof is given, and a body that is a log entry
// (a JSON object with its kind, apiVersion and spec); a v0.3 bundle's entries
// carry an inclusion proof. These are the checks Sigstore's own bundle parser
// makes, but that of the body's spec against Rekor's schema of its kind.
func checkLogEntries(b *protobundle.Bundle) error {
	entries := b.GetVerificationMaterial().GetTlogEntries()
	if len(entries) > maxLogEntries {
		return fmt.Errorf("%d transparency log entries (at most %d)", len(entries), maxLogEntries)
	}
	proof := false
	for i, e := range entries {
		if e == nil || len(e.GetCanonicalizedBody()) == 0 || e.GetLogIndex() < 0 || e.GetLogId().GetKeyId() == nil || e.GetKindVersion() == nil {
			return fmt.Errorf("transparency log entry %d lacks its body, log index, log ID or kind", i)
		}
		if p := e.GetInclusionProof(); p != nil {
			if p.GetCheckpoint().GetEnvelope() == "" {
				return fmt.Errorf("transparency log entry %d has an inclusion proof without its checkpoint", i)
			}
			proof = true
		}
		var body struct {
			Kind       *string         `json:"kind"`
			APIVersion *string         `json:"apiVersion"`
			Spec       json.RawMessage `json:"spec"`
		}
		if err := json.Unmarshal(e.GetCanonicalizedBody(), &body); err != nil || body.Kind == nil || body.APIVersion == nil || !bytes.HasPrefix(body.Spec, []byte("{")) {
			return fmt.Errorf("transparency log entry %d: its body is not a log entry (kind, apiVersion, spec)", i)
		}
	}
	if len(entries) > 0 && !proof {
		return errors.New("its transparency log entries carry no inclusion proof (required for bundle v0.3)")
	}
	return nil
}

// keyHint is the hint cosign writes for a public key in a bundle: the
// standard base64 of the SHA-256 of its PKIX form.
func keyHint(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	h := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(h[:])
}
