package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/signet-oss/signet/signer"
)

// Sigstore bundles: the OCI referrer cosign v3 pushes for `cosign sign` and
// `cosign attest` (its default since v3), one per signature, found through
// the referrers API or the referrers-tag index. Its one layer is a Sigstore
// bundle v0.3 holding a DSSE envelope of an in-toto statement about the
// subject: predicate type https://sigstore.dev/cosign/sign/v1 for a
// signature, the attested predicate's for an attestation. The bundle is
// verified with sigstore-go, with the delegated keys as its only trusted
// material.
//
// What the signature covers is the statement, which binds the subject's
// digest. A signature's statement names no repository, so a key delegated for
// two repositories can have its signature bundles copied from one to the
// other: that is accepted, as the signer vouched for the digest. (An
// attestation's statement names the repository, and that name is checked.)
//
// Signet checks no transparency log entry, signed timestamp or certificate:
// a bundle signed with a key is verified by that key alone, as `cosign verify
// --insecure-ignore-tlog=true` does. Entries and timestamps a bundle carries
// are parsed by sigstore-go (their form) and otherwise ignored; a bundle
// signed with a certificate (keyless) is refused, since the trust graph
// delegates keys.

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
	raw, err := fetchBlob(a.Blob, l, maxBundle)
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
	var version int
	if err := decodeField(fields, "schemaVersion", &version); err != nil {
		return l, "", fmt.Errorf("%s: %w", what, err)
	}
	if version != 2 {
		return l, "", fmt.Errorf("%s has schemaVersion %d, not 2", what, version)
	}
	for _, f := range []struct{ name, want string }{{"mediaType", ocispec.MediaTypeImageManifest}, {"artifactType", SigstoreBundleMediaType}} {
		var v string
		if err := decodeField(fields, f.name, &v); err != nil {
			return l, "", fmt.Errorf("%s: %w", what, err)
		}
		if v != f.want {
			return l, "", fmt.Errorf("%s has %s %q, not %s", what, f.name, v, f.want)
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
//	                      and timestampVerificationData (parsed, not checked)
//	dsseEnvelope          payload (an in-toto statement), payloadType
//	                      (in-toto), signatures: one, {sig}
//
// and verifies it with sigstore-go against each key in turn, with no
// timestamp or log required. The error is for a bundle that is not in that
// form; the signature's Err says why it does not verify.
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
	env, err := strictObject(top["dsseEnvelope"], "the bundle's dsseEnvelope", "payload", "payloadType", "signatures")
	if err != nil {
		return s, err
	}
	var payloadType, payload64 string
	if err := decodeField(env, "payloadType", &payloadType); err != nil {
		return s, fmt.Errorf("the bundle's envelope: %w", err)
	}
	if payloadType != InTotoPayloadType {
		return s, fmt.Errorf("the bundle's envelope carries a %q, not an in-toto statement (%s)", payloadType, InTotoPayloadType)
	}
	if err := decodeField(env, "payload", &payload64); err != nil {
		return s, fmt.Errorf("the bundle's envelope: %w", err)
	}
	payload, err := base64.StdEncoding.DecodeString(payload64)
	if err != nil {
		return s, fmt.Errorf("the bundle's envelope: its payload is not base64: %w", err)
	}
	var sigs []json.RawMessage
	if err := decodeField(env, "signatures", &sigs); err != nil {
		return s, fmt.Errorf("the bundle's envelope: %w", err)
	}
	if len(sigs) != 1 {
		return s, fmt.Errorf("the bundle's envelope carries %d signatures, not the one cosign writes", len(sigs))
	}
	sf, err := strictObject(sigs[0], "the bundle's signature", "sig")
	if err != nil {
		return s, err
	}
	var sig64 string
	if err := decodeField(sf, "sig", &sig64); err != nil {
		return s, fmt.Errorf("the bundle's signature: %w", err)
	}
	if s.Signature, err = base64.StdEncoding.DecodeString(sig64); err != nil || len(s.Signature) == 0 {
		return s, fmt.Errorf("the bundle's signature is not base64: %v", err)
	}

	b := &bundle.Bundle{}
	if err := b.UnmarshalJSON(raw); err != nil {
		return s, fmt.Errorf("the bundle: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return s, err
	}

	policy := sgverify.NewPolicy(sgverify.WithArtifactDigest(subject.Algorithm().String(), digestBytes(subject)), sgverify.WithKey())
	for _, v := range verifiers {
		sv, err := sigstoreVerifier(v.pub)
		if err != nil {
			continue
		}
		tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
			return root.NewExpiringKey(sv, time.Time{}, time.Time{}), nil
		})
		ver, err := sgverify.NewVerifier(tm, sgverify.WithNoObserverTimestamps())
		if err != nil {
			return s, err
		}
		if _, err := ver.Verify(b, policy); err != nil {
			continue
		}
		s.KeyID, s.Signature = v.id, canonicalSignature(v.pub, s.Signature)
		if want := keyHint(v.pub); hint != want {
			s.Err = fmt.Errorf("its public key hint %q is not the one cosign writes for the key it verifies with, %q", hint, want)
			return s, nil
		}
		s.PredicateType, s.Err = checkStatement(payload, repo, subject, true)
		return s, nil
	}
	s.Err = fmt.Errorf("it does not verify with any of the %d keys for %s", len(verifiers), subject)
	return s, nil
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

// sigstoreVerifier is a sigstore verifier for pub with its TUF scheme (the one
// signer.SchemeVerifier checks): ECDSA over SHA-256, Ed25519, RSA-PSS over
// SHA-256.
func sigstoreVerifier(pub crypto.PublicKey) (signature.Verifier, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return signature.LoadECDSAVerifier(k, crypto.SHA256)
	case ed25519.PublicKey:
		return signature.LoadED25519Verifier(k)
	case *rsa.PublicKey:
		return signature.LoadRSAPSSVerifier(k, crypto.SHA256, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA256})
	}
	return nil, fmt.Errorf("a key of type %T", pub)
}

// digestBytes is a valid digest's hash value.
func digestBytes(d digest.Digest) []byte {
	b, _ := hex.DecodeString(d.Encoded())
	return b
}
