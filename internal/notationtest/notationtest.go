// Package notationtest makes notation signatures as notation v1.3.2 pushes
// them, for the tests of the packages that check them (verify, the registry's
// gate): a real JWS or COSE envelope signed by notation-core-go with a Signet
// key and a self-signed code-signing certificate for it, in the manifest
// notation-go packs (its registry.PushSignature). Nothing here is used outside
// tests.
package notationtest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-core-go/signature/cose"
	"github.com/notaryproject/notation-core-go/signature/jws"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/signer"
)

// The envelope media types notation signs in (`notation sign
// --signature-format jws|cose`).
const (
	JWS  = jws.MediaTypeEnvelope
	COSE = cose.MediaTypeEnvelope
)

// Config is the config blob of every notation signature manifest: "{}".
var Config = []byte("{}")

// Certificate makes a self-signed, non-CA code-signing certificate for key,
// valid for a day, of the kind notation accepts as a signing certificate.
func Certificate(t testing.TB, key *signer.Key) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: key.Name, Organization: []string{"signet test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Signer.Public(), key.Signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Options vary a signature from what `notation sign` writes by default.
type Options struct {
	// Target is what the envelope signs; the subject when nil.
	Target *ocispec.Descriptor
	// Expiry, when set, is the signature's signed expiry after its signing
	// time (`notation sign --expiry`).
	Expiry time.Duration
	// Chain is the envelope's certificate chain, leaf first; a new
	// certificate for the key when nil.
	Chain []*x509.Certificate
}

// Signature is a notation signature: its manifest and the blobs it names.
type Signature struct {
	Manifest       []byte
	Digest         digest.Digest
	EnvelopeType   string
	Envelope       []byte
	EnvelopeDigest digest.Digest
	Chain          []*x509.Certificate
	SigningTime    time.Time
}

// Sign signs subject with key in an envelope of envelopeType, as `notation
// sign` does through a plugin that signs with key, and packs the manifest
// notation pushes.
func Sign(t testing.TB, key *signer.Key, envelopeType string, subject ocispec.Descriptor, o Options) *Signature {
	t.Helper()
	target := subject
	if o.Target != nil {
		target = *o.Target
	}
	chain := o.Chain
	if chain == nil {
		chain = []*x509.Certificate{Certificate(t, key)}
	}
	payload, err := json.Marshal(struct {
		TargetArtifact ocispec.Descriptor `json:"targetArtifact"`
	}{ocispec.Descriptor{MediaType: target.MediaType, Digest: target.Digest, Size: target.Size, Annotations: target.Annotations}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.NewLocalSigner(chain, key.Signer)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signature.NewEnvelope(envelopeType)
	if err != nil {
		t.Fatal(err)
	}
	signingTime := time.Now().Truncate(time.Second)
	req := &signature.SignRequest{
		Payload:       signature.Payload{ContentType: "application/vnd.cncf.notary.payload.v1+json", Content: payload},
		Signer:        s,
		SigningTime:   signingTime,
		SigningScheme: signature.SigningSchemeX509,
		SigningAgent:  "notation-go/1.3.2",
	}
	if o.Expiry != 0 {
		req.Expiry = signingTime.Add(o.Expiry)
	}
	envelope, err := env.Sign(req)
	if err != nil {
		t.Fatal(err)
	}
	sig := &Signature{EnvelopeType: envelopeType, Envelope: envelope, EnvelopeDigest: digest.FromBytes(envelope), Chain: chain, SigningTime: signingTime}
	sig.Manifest = Manifest(t, envelopeType, envelope, subject, chain, signingTime)
	sig.Digest = digest.FromBytes(sig.Manifest)
	return sig
}

// Manifest packs an envelope as notation-go v1.3.2 does, with oras-go
// v2.5.0's PackManifest (version 1.1): the empty config typed as a notation
// signature, the envelope as the one layer, the subject, and the thumbprints
// of chain and the signing time as annotations.
func Manifest(t testing.TB, envelopeType string, envelope []byte, subject ocispec.Descriptor, chain []*x509.Certificate, signingTime time.Time) []byte {
	t.Helper()
	var thumbprints []string
	for _, c := range chain {
		sum := sha256.Sum256(c.Raw)
		thumbprints = append(thumbprints, hex.EncodeToString(sum[:]))
	}
	tp, err := json.Marshal(thumbprints)
	if err != nil {
		t.Fatal(err)
	}
	m, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: "application/vnd.cncf.notary.signature", Digest: digest.FromBytes(Config), Size: int64(len(Config))},
		Layers:    []ocispec.Descriptor{{MediaType: envelopeType, Digest: digest.FromBytes(envelope), Size: int64(len(envelope))}},
		Subject:   &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: map[string]string{
			"io.cncf.notary.x509chain.thumbprint#S256": string(tp),
			ocispec.AnnotationCreated:                  signingTime.UTC().Format(time.RFC3339),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Blobs returns the blobs a signature's manifest names, by digest.
func (s *Signature) Blobs() map[digest.Digest][]byte {
	return map[digest.Digest][]byte{s.EnvelopeDigest: s.Envelope, digest.FromBytes(Config): Config}
}
