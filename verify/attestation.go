package verify

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/signet-oss/signet/signer"
)

// Cosign attestations: the `.att` artifact `cosign attest --key` pushes under
// its subject's `sha256-<hex>.att` tag. It has the manifest of a signature
// artifact (cosignshape.go: the same media types, the same derived config, the
// same optional annotations), but each layer is a DSSE envelope holding an
// in-toto statement about the subject, signed inside the envelope, and the
// layer's annotations are the signature annotation, left empty, and the
// statement's predicate type. One signer attaches several predicates (SLSA
// provenance, an SBOM, a scan) as several layers, each with its own signature:
// the layers of an attestation are not co-signers.
//
// What a signature covers is the envelope's payload type and payload (DSSE's
// pre-authentication encoding); the envelope's other bytes are checked for the
// form cosign writes them in, and the layer's annotations against the
// statement they repeat.

// FormatCosignAttestation is a cosign attestation artifact, pushed under its
// subject's `sha256-<hex>.att` tag or by digest.
const FormatCosignAttestation Format = "cosign-attestation"

// The layer media type of a cosign attestation, and the annotation that
// repeats its statement's predicate type.
const (
	DSSEEnvelopeMediaType   = "application/vnd.dsse.envelope.v1+json"
	PredicateTypeAnnotation = "predicateType"
)

// The in-toto statement as a DSSE envelope carries it: its payload type, and
// the statement types cosign writes (v0.1) and in-toto defines now (v1).
const (
	InTotoPayloadType  = "application/vnd.in-toto+json"
	inTotoStatementV01 = "https://in-toto.io/Statement/v0.1"
	inTotoStatementV1  = "https://in-toto.io/Statement/v1"
)

// maxEnvelope bounds an envelope read for verification: it holds its
// predicate base64-encoded, and an SPDX or CycloneDX SBOM of a large image
// takes a few MiB.
const maxEnvelope = 16 << 20

// maxPredicateType bounds the predicate type annotation: a URI.
const maxPredicateType = 1024

// cosignAttestations is the kind of a `.att` artifact: DSSE envelopes, with an
// empty signature annotation (the signature is in the envelope) and the
// statement's predicate type.
var cosignAttestations = cosignKind{
	manifest:  "the attestation manifest",
	layer:     "attestation",
	mediaType: DSSEEnvelopeMediaType,
	annotations: map[string]func(string) error{
		signer.CosignSignatureAnnotation: func(v string) error {
			if v != "" {
				return errors.New("not empty, as cosign leaves it in an attestation (the signature is in the envelope)")
			}
			return nil
		},
		PredicateTypeAnnotation: func(v string) error {
			if v == "" || len(v) > maxPredicateType {
				return fmt.Errorf("a predicate type of %d bytes (1 to %d)", len(v), maxPredicateType)
			}
			return nil
		},
	},
}

// isCosignAttestation routes a manifest whose layers are all DSSE envelopes,
// with a config, to the cosign attestation format.
func isCosignAttestation(h *manifestHead) bool {
	if h.Config == nil || len(h.Layers) == 0 {
		return false
	}
	for _, l := range h.Layers {
		if l.MediaType != DSSEEnvelopeMediaType {
			return false
		}
	}
	return true
}

// checkCosignAttestation checks a cosign attestation artifact of subject in
// repo: the artifact in exactly the shape cosign writes (checkCosignManifest
// with cosignAttestations), and each layer on its own:
//   - its blob, checked against the layer's digest and size, is a DSSE
//     envelope in the form cosign writes (payloadType, payload in standard
//     base64, exactly one signature with an empty keyid), no other field;
//   - the envelope verifies (go-securesystemslib's DSSE verifier, over the
//     pre-authentication encoding) with one of keys, with the key's TUF scheme;
//   - its payload is an in-toto statement (v0.1 or v1) with exactly one
//     subject, whose digest set is exactly subject's digest and whose name
//     names repo (as a signature payload's docker-reference does);
//   - its statement's predicate type is the layer's predicateType annotation;
//   - its certificate annotation, if any, is for the key it verifies with.
//
// Several layers may be by one key. cosign verify-attestation itself checks
// neither the statement's subject name nor the annotation.
func checkCosignAttestation(ctx context.Context, a Artifact, keys Keys, repo string, subject digest.Digest) (Signatures, error) {
	verifiers := keys.verifiers()
	if len(verifiers) == 0 {
		return nil, errors.New("no key to check the attestations with")
	}
	shape, err := checkCosignManifest(a.Manifest, cosignAttestations)
	if err != nil {
		return nil, err
	}
	sigs := make(Signatures, len(shape.layers))
	for i, l := range shape.layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := &sigs[i]
		s.Layer = l
		raw, err := fetchPayload(a.Blob, l, maxEnvelope)
		if err != nil {
			return nil, fmt.Errorf("attestation %d: %w", i, err)
		}
		env, sig, err := decodeEnvelope(raw, "the envelope", true)
		if err != nil {
			return nil, fmt.Errorf("attestation %d: %w", i, err)
		}
		s.Signature = sig
		v, payload, ok := verifyEnvelope(ctx, env, verifiers)
		if !ok {
			s.Err = fmt.Errorf("its envelope does not verify with any of the %d keys", len(verifiers))
			continue
		}
		s.KeyID, s.Signature = v.id, canonicalSignature(v.pub, sig)
		predicateType, predicate, err := checkStatement(payload, repo, subject, false)
		if err != nil {
			s.Err = err
			continue
		}
		s.PredicateType, s.Predicate = predicateType, predicate
		if want := l.Annotations[PredicateTypeAnnotation]; predicateType != want {
			s.Err = fmt.Errorf("its statement's predicate type %q is not its annotation's %q", predicateType, want)
			continue
		}
		if c, ok := l.Annotations[CosignCertificateAnnotation]; ok {
			certs, _ := parseCertificates(c, true) // parsed by the shape
			s.Err = certifies(certs[0], v.pub)
		}
	}
	return sigs, nil
}

// decodeEnvelope decodes a DSSE envelope strictly, in the form cosign writes
// it: {"payloadType": "application/vnd.in-toto+json", "payload": base64,
// "signatures": [{"keyid": "", "sig": base64}]}, with the keyid when keyid is
// set (a `.att` layer) and without it otherwise (a Sigstore bundle's envelope,
// where protobuf's JSON leaves an empty field out). The keyid is not signed,
// so any other value would be the pusher's to choose. what names the envelope
// in errors; it returns the signature's bytes too.
func decodeEnvelope(raw []byte, what string, keyid bool) (*dsse.Envelope, []byte, error) {
	f, err := strictObject(raw, what, "payloadType", "payload", "signatures")
	if err != nil {
		return nil, nil, err
	}
	env := &dsse.Envelope{}
	if err := decodeField(f, "payloadType", &env.PayloadType); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if env.PayloadType != InTotoPayloadType {
		return nil, nil, fmt.Errorf("%s carries a %q, not an in-toto statement (%s)", what, env.PayloadType, InTotoPayloadType)
	}
	if err := decodeField(f, "payload", &env.Payload); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if _, err := base64.StdEncoding.DecodeString(env.Payload); err != nil {
		return nil, nil, fmt.Errorf("%s's payload is not base64: %w", what, err)
	}
	var sigs []json.RawMessage
	if err := decodeField(f, "signatures", &sigs); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(sigs) != 1 {
		return nil, nil, fmt.Errorf("%s carries %d signatures, not the one cosign writes", what, len(sigs))
	}
	fields := []string{"sig"}
	if keyid {
		fields = append(fields, "keyid")
	}
	sf, err := strictObject(sigs[0], what+"'s signature", fields...)
	if err != nil {
		return nil, nil, err
	}
	var s dsse.Signature
	if keyid {
		if err := decodeField(sf, "keyid", &s.KeyID); err != nil || s.KeyID != "" {
			return nil, nil, fmt.Errorf("%s's signature has a keyid %q, where cosign writes an empty one (%v)", what, s.KeyID, err)
		}
	}
	if err := decodeField(sf, "sig", &s.Sig); err != nil {
		return nil, nil, fmt.Errorf("%s's signature: %w", what, err)
	}
	sig, err := base64.StdEncoding.DecodeString(s.Sig)
	if err != nil || len(sig) == 0 {
		return nil, nil, fmt.Errorf("%s's signature is not base64: %v", what, err)
	}
	env.Signatures = []dsse.Signature{s}
	return env, sig, nil
}

// verifyEnvelope verifies a DSSE envelope with the delegated keys: with
// go-securesystemslib's envelope verifier, over the pre-authentication
// encoding of its payload type and payload, each key with its TUF scheme. It
// returns the one key that verifies it and the payload; ok is false when none
// does. Every format that carries a DSSE envelope (a cosign attestation's
// layer, a Sigstore bundle) is verified here.
func verifyEnvelope(ctx context.Context, env *dsse.Envelope, verifiers []keyVerifier) (keyVerifier, []byte, bool) {
	ev, err := dsse.NewEnvelopeVerifier(dsseVerifiers(verifiers)...)
	if err != nil {
		return keyVerifier{}, nil, false
	}
	accepted, payload, err := ev.VerifyAndDecode(ctx, env)
	if err != nil || len(accepted) != 1 {
		return keyVerifier{}, nil, false
	}
	for _, v := range verifiers {
		if v.id == accepted[0].KeyID {
			return v, payload, true
		}
	}
	return keyVerifier{}, nil, false
}

// checkStatement checks an in-toto statement is about subject in repo, and
// returns its predicate type and predicate. The subject's name must name repo,
// or may be absent when unnamed is set (a cosign v3 signature bundle names
// none).
func checkStatement(payload []byte, repo string, subject digest.Digest, unnamed bool) (string, json.RawMessage, error) {
	var st struct {
		Type          string          `json:"_type"`
		PredicateType string          `json:"predicateType"`
		Predicate     json.RawMessage `json:"predicate"`
		Subject       []struct {
			Name   string            `json:"name"`
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		return "", nil, fmt.Errorf("its payload is not an in-toto statement: %w", err)
	}
	if st.Type != inTotoStatementV01 && st.Type != inTotoStatementV1 {
		return "", nil, fmt.Errorf("its payload is a %q, not an in-toto statement", st.Type)
	}
	if st.PredicateType == "" {
		return "", nil, errors.New("its statement has no predicate type")
	}
	if len(st.Subject) != 1 {
		return "", nil, fmt.Errorf("its statement is about %d subjects, not the one cosign names", len(st.Subject))
	}
	sub := st.Subject[0]
	if len(sub.Digest) != 1 || sub.Digest[subject.Algorithm().String()] != subject.Encoded() {
		return "", nil, fmt.Errorf("its statement is about %v, not %s", sub.Digest, subject)
	}
	if !(unnamed && sub.Name == "") && !namesRepository(sub.Name, repo, subject) {
		return "", nil, fmt.Errorf("its statement names %q, not %s", sub.Name, repo)
	}
	return st.PredicateType, st.Predicate, nil
}

// dsseKey is a delegated key as the DSSE library's verifier: it verifies the
// pre-authentication encoding with the key's TUF scheme, and names the key by
// its TUF key ID.
type dsseKey struct{ v keyVerifier }

func (k dsseKey) Verify(_ context.Context, data, sig []byte) error {
	if !k.v.verify(data, sig) {
		return errors.New("signature does not verify")
	}
	return nil
}

func (k dsseKey) KeyID() (string, error)   { return k.v.id, nil }
func (k dsseKey) Public() crypto.PublicKey { return k.v.pub }

func dsseVerifiers(vs []keyVerifier) []dsse.Verifier {
	out := make([]dsse.Verifier, len(vs))
	for i, v := range vs {
		out[i] = dsseKey{v}
	}
	return out
}
