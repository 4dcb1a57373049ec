package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/signer"
)

// The shape of a cosign signature artifact: exactly what a signer writes, and
// nothing else. The signatures bind only the payload blobs, so every other byte
// of the artifact (its config, annotations, subject, any further field) would be
// the pusher's to choose; a registry that admitted those bytes because the
// signatures verified would serve unsigned content. The allowed shape:
//
//	schemaVersion  2
//	mediaType      absent, OCI image manifest, or Docker schema2 (cosign with
//	               COSIGN_DOCKER_MEDIA_TYPES=1)
//	config         the config cosign derives from the layers (signer.CosignConfig:
//	               its digest and size; media type OCI image config, or Docker's
//	               for a Docker manifest), or the OCI empty config (OCI manifests
//	               only)
//	layers         1 to 1000, each: media type simple-signing; digest and size of
//	               the payload; annotations: the signature (required) and cosign's
//	               optional bundle, certificate, chain and RFC 3161 timestamp
//	anything else  refused: subject, annotations, artifactType, urls, platform,
//	               data, unknown fields, a key twice, a key in another case
//
// Object keys are matched exactly: encoding/json would take "Config" for
// "config", and the last of two equal keys, where another reader may take the
// first.

// Cosign's optional layer annotations, which `cosign sign` writes beside the
// signature: the transparency log bundle (with a Rekor upload), the signing
// certificate and its chain (keyless, or --certificate with a key), and a
// timestamp authority's answer (--timestamp-server-url).
const (
	CosignBundleAnnotation      = "dev.sigstore.cosign/bundle"
	CosignCertificateAnnotation = "dev.sigstore.cosign/certificate"
	CosignChainAnnotation       = "dev.sigstore.cosign/chain"
	CosignTimestampAnnotation   = "dev.sigstore.cosign/rfc3161timestamp"
	// maxCosignAnnotation bounds an optional annotation's value: a Rekor bundle
	// is about 4 KiB, a certificate chain a few.
	maxCosignAnnotation = 64 << 10
)

// The OCI empty config descriptor (image-spec 1.1): "{}".
const (
	ociEmptyMediaType = "application/vnd.oci.empty.v1+json"
	ociEmptyDigest    = digest.Digest("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
	ociEmptySize      = 2
)

// cosignShape is a signature or attestation artifact whose shape
// checkCosignShape accepted.
type cosignShape struct {
	mediaType string
	config    ocispec.Descriptor
	layers    []ocispec.Descriptor
}

// cosignKind is what tells cosign's two artifacts of one shape apart: a
// signature (`.sig`) and an attestation (`.att`) manifest differ only in their
// layers' media type and in the annotations cosign writes beside its optional
// ones (the same for both).
type cosignKind struct {
	// manifest and layer name the manifest and a layer in errors.
	manifest, layer string
	// mediaType is every layer's media type.
	mediaType string
	// annotations are the layer annotations the kind requires, each with the
	// check of its value.
	annotations map[string]func(v string) error
}

// cosignSignatures is the kind of a `.sig` artifact: simple-signing payloads
// with their signatures in an annotation.
var cosignSignatures = cosignKind{
	manifest:  "the signature manifest",
	layer:     "signature",
	mediaType: signer.CosignSimpleSigningMediaType,
	annotations: map[string]func(string) error{
		signer.CosignSignatureAnnotation: func(v string) error {
			if _, err := base64.StdEncoding.DecodeString(v); err != nil {
				return fmt.Errorf("not base64: %w", err)
			}
			return nil
		},
	},
}

// checkCosignShape decodes a signature manifest strictly and checks it has
// exactly the shape a signer writes (see above). The payloads are not read:
// the layers' digests and sizes are checked against the blobs later.
func checkCosignShape(manifest []byte) (*cosignShape, error) {
	return checkCosignManifest(manifest, cosignSignatures)
}

// checkCosignManifest decodes a cosign artifact of kind k strictly and checks
// it has exactly the shape cosign writes: the manifest of a signature (see
// above), with layers of k's media type and annotations.
func checkCosignManifest(manifest []byte, k cosignKind) (*cosignShape, error) {
	fields, unknown := strictObject(manifest, k.manifest, "schemaVersion", "mediaType", "config", "layers")
	if fields == nil {
		return nil, unknown
	}
	var version int
	if err := decodeField(fields, "schemaVersion", &version); err != nil {
		return nil, fmt.Errorf("%s: %w", k.manifest, err)
	}
	if version != 2 {
		return nil, fmt.Errorf("%s has schemaVersion %d, not 2", k.manifest, version)
	}
	s := &cosignShape{mediaType: ocispec.MediaTypeImageManifest}
	if _, ok := fields["mediaType"]; ok {
		if err := decodeField(fields, "mediaType", &s.mediaType); err != nil {
			return nil, fmt.Errorf("%s: %w", k.manifest, err)
		}
	}
	if s.mediaType != ocispec.MediaTypeImageManifest && s.mediaType != signer.DockerManifestMediaType {
		return nil, fmt.Errorf("%s is a %s, not an image manifest", k.manifest, s.mediaType)
	}
	if unknown != nil {
		return nil, unknown // named after the kind of manifest, which says more
	}
	var layers []json.RawMessage
	if _, ok := fields["layers"]; ok {
		if err := decodeField(fields, "layers", &layers); err != nil {
			return nil, err
		}
	}
	switch {
	case len(layers) == 0:
		return nil, fmt.Errorf("%s has no %s", k.manifest, k.layer)
	case len(layers) > signer.MaxCosignSignatures:
		return nil, fmt.Errorf("%s has %d layers, over cosign's limit of %d", k.manifest, len(layers), signer.MaxCosignSignatures)
	}
	for i, raw := range layers {
		l, err := decodeDescriptor(raw, fmt.Sprintf("%s %d", k.layer, i), true)
		if err != nil {
			return nil, err
		}
		if l.MediaType != k.mediaType {
			return nil, fmt.Errorf("%s %d: a layer of type %q, not %s", k.layer, i, l.MediaType, k.mediaType)
		}
		if err := checkLayerAnnotations(l.Annotations, k.annotations); err != nil {
			return nil, fmt.Errorf("%s %d: %w", k.layer, i, err)
		}
		s.layers = append(s.layers, l)
	}
	raw, ok := fields["config"]
	if !ok {
		return nil, fmt.Errorf("%s has no config", k.manifest)
	}
	var err error
	if s.config, err = decodeDescriptor(raw, "the config", false); err != nil {
		return nil, err
	}
	if err := s.checkConfig(layers); err != nil {
		return nil, err
	}
	return s, nil
}

// checkConfig checks the config is the one cosign derives from the layers, in
// the media type that goes with the manifest's, or the OCI empty config.
func (s *cosignShape) checkConfig(layers []json.RawMessage) error {
	c := s.config
	if c.MediaType == ociEmptyMediaType && s.mediaType == ocispec.MediaTypeImageManifest {
		if c.Digest != ociEmptyDigest || c.Size != ociEmptySize {
			return fmt.Errorf("the config claims to be the OCI empty config but is %s (%d bytes), not %s (%d)", c.Digest, c.Size, ociEmptyDigest, ociEmptySize)
		}
		return nil
	}
	want := ocispec.MediaTypeImageConfig
	if s.mediaType == signer.DockerManifestMediaType {
		want = signer.DockerConfigMediaType
	}
	if c.MediaType != want {
		return fmt.Errorf("the config is a %q, not the %s a signer writes in a %s", c.MediaType, want, s.mediaType)
	}
	derived, err := signer.CosignConfig(layers)
	if err != nil {
		return err
	}
	if c.Digest != digest.FromBytes(derived) || c.Size != int64(len(derived)) {
		return fmt.Errorf("the config %s (%d bytes) is not the one cosign derives from the layers, %s (%d bytes)", c.Digest, c.Size, digest.FromBytes(derived), len(derived))
	}
	return nil
}

// decodeDescriptor decodes a config or layer descriptor strictly: media type,
// digest and size, and annotations for a layer.
func decodeDescriptor(raw []byte, what string, annotations bool) (ocispec.Descriptor, error) {
	allowed := []string{"mediaType", "size", "digest"}
	if annotations {
		allowed = append(allowed, "annotations")
	}
	var d ocispec.Descriptor
	fields, err := strictObject(raw, what, allowed...)
	if err != nil {
		return d, err
	}
	for _, f := range []string{"mediaType", "size", "digest"} {
		if _, ok := fields[f]; !ok {
			return d, fmt.Errorf("%s has no %s", what, f)
		}
	}
	if err := decodeField(fields, "mediaType", &d.MediaType); err != nil {
		return d, fmt.Errorf("%s: %w", what, err)
	}
	if err := decodeField(fields, "size", &d.Size); err != nil || d.Size < 0 {
		return d, fmt.Errorf("%s: size is not a byte count: %v", what, err)
	}
	if err := decodeField(fields, "digest", &d.Digest); err != nil {
		return d, fmt.Errorf("%s: %w", what, err)
	}
	if err := d.Digest.Validate(); err != nil {
		return d, fmt.Errorf("%s: digest %q: %w", what, d.Digest, err)
	}
	if raw, ok := fields["annotations"]; ok {
		keys, err := strictObject(raw, what+"'s annotations")
		if err != nil {
			return d, err
		}
		d.Annotations = make(map[string]string, len(keys))
		for k := range keys {
			var v string
			if err := json.Unmarshal(keys[k], &v); err != nil {
				return d, fmt.Errorf("%s: annotation %q is not a string", what, k)
			}
			d.Annotations[k] = v
		}
	}
	return d, nil
}

// checkLayerAnnotations allows the annotations a kind requires (own) and
// cosign's optional ones, each in the form cosign writes it.
func checkLayerAnnotations(a map[string]string, own map[string]func(string) error) error {
	for k := range own {
		if _, ok := a[k]; !ok {
			return fmt.Errorf("no %s annotation", k)
		}
	}
	for k, v := range a {
		if check, ok := own[k]; ok {
			if err := check(v); err != nil {
				return fmt.Errorf("the %s annotation: %w", k, err)
			}
			continue
		}
		if len(v) > maxCosignAnnotation {
			return fmt.Errorf("the %s annotation holds %d bytes, over %d", k, len(v), maxCosignAnnotation)
		}
		var err error
		switch k {
		case CosignBundleAnnotation:
			err = checkRekorBundle(v)
		case CosignCertificateAnnotation:
			_, err = parseCertificates(v, true)
		case CosignChainAnnotation:
			_, err = parseCertificates(v, false)
		case CosignTimestampAnnotation:
			err = checkTimestamp(v)
		default:
			allowed := slices.Sorted(maps.Keys(own))
			return fmt.Errorf("an annotation %q, which a signer does not write (allowed: %s and %s)", k, strings.Join(allowed, ", "),
				strings.Join([]string{CosignBundleAnnotation, CosignCertificateAnnotation, CosignChainAnnotation, CosignTimestampAnnotation}, ", "))
		}
		if err != nil {
			return fmt.Errorf("the %s annotation: %w", k, err)
		}
	}
	return nil
}

// checkRekorBundle checks a bundle annotation has the form of cosign's
// bundle.RekorBundle: {"SignedEntryTimestamp": base64, "Payload": {"body":
// base64, "integratedTime": n, "logIndex": n, "logID": hex}}.
func checkRekorBundle(v string) error {
	f, err := strictObject([]byte(v), "the bundle", "SignedEntryTimestamp", "Payload")
	if err != nil {
		return err
	}
	if err := base64Field(f, "SignedEntryTimestamp"); err != nil {
		return err
	}
	p, err := strictObject(f["Payload"], "the bundle's Payload", "body", "integratedTime", "logIndex", "logID")
	if err != nil {
		return err
	}
	if err := base64Field(p, "body"); err != nil {
		return err
	}
	var n int64
	for _, k := range []string{"integratedTime", "logIndex"} {
		if err := decodeField(p, k, &n); err != nil {
			return err
		}
	}
	var id string
	if err := decodeField(p, "logID", &id); err != nil {
		return err
	}
	if strings.Trim(id, "0123456789abcdef") != "" {
		return errors.New("logID is not hex")
	}
	return nil
}

// checkTimestamp checks a timestamp annotation has the form of cosign's
// bundle.RFC3161Timestamp: {"SignedRFC3161Timestamp": base64}.
func checkTimestamp(v string) error {
	f, err := strictObject([]byte(v), "the timestamp", "SignedRFC3161Timestamp")
	if err != nil {
		return err
	}
	return base64Field(f, "SignedRFC3161Timestamp")
}

// parseCertificates reads PEM certificates, nothing else: exactly one when one
// is set, at least one otherwise.
func parseCertificates(v string, one bool) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(v)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" || len(b.Headers) > 0 {
			return nil, fmt.Errorf("a PEM block of type %q, not CERTIFICATE", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	switch {
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, errors.New("bytes that are not a PEM certificate")
	case len(certs) == 0:
		return nil, errors.New("no PEM certificate")
	case one && len(certs) > 1:
		return nil, fmt.Errorf("%d certificates, not one", len(certs))
	}
	return certs, nil
}

// strictObject decodes a JSON object into its members, refusing a key twice or
// a key outside allowed (when allowed is not empty), compared exactly.
func strictObject(b []byte, what string, allowed ...string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("%s is not a JSON object", what)
	}
	out := map[string]json.RawMessage{}
	var unknown error
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s has the field %q twice", what, k)
		}
		if len(allowed) > 0 && !slices.Contains(allowed, k) && unknown == nil {
			unknown = fmt.Errorf("%s has a field %q, which a signer does not write", what, k)
		}
		out[k] = v
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, fmt.Errorf("%s is not a JSON object", what)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("%s is followed by more JSON", what)
	}
	// The members are returned with an unknown field's error, so a caller can
	// name the kind of document before it names the field.
	return out, unknown
}

// decodeField decodes member k of an object, which must be present.
func decodeField(fields map[string]json.RawMessage, k string, v any) error {
	raw, ok := fields[k]
	if !ok {
		return fmt.Errorf("no %s", k)
	}
	if bytes.Equal(raw, []byte("null")) {
		return fmt.Errorf("%s is null", k)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	return nil
}

// base64Field checks member k is a string of standard base64.
func base64Field(fields map[string]json.RawMessage, k string) error {
	var s string
	if err := decodeField(fields, k, &s); err != nil {
		return err
	}
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		return fmt.Errorf("%s is not base64: %w", k, err)
	}
	return nil
}

// canonicalSignature is the form of sig by pub that every variant of it shares:
// an ECDSA signature (r, s) verifies as (r, n-s) too, so anyone can turn one
// signature into "another"; the low-s form names both. Ed25519 (as Go verifies
// it) and RSA-PSS signatures cannot be varied without the private key.
func canonicalSignature(pub crypto.PublicKey, sig []byte) []byte {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return sig
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) > 0 || rs.R == nil || rs.S == nil {
		return sig
	}
	n := k.Curve.Params().N
	if rs.S.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
		rs.S = new(big.Int).Sub(n, rs.S)
	}
	b, err := asn1.Marshal(rs)
	if err != nil {
		return sig
	}
	return b
}
