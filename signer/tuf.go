package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// SignMetadata adds a signature by each of keys to md. With replace it first drops
// every signature md holds (go-tuf's Sign appends: re-signing edited metadata must
// start clean). Without it, other keys' signatures stay (co-signing toward a
// threshold) and only an earlier signature by one of keys is replaced, so signing
// twice never leaves two signatures with one key ID (go-tuf refuses those).
func SignMetadata[T metadata.Roles](md *metadata.Metadata[T], replace bool, keys ...*Key) error {
	if md == nil {
		return errors.New("signing: no metadata")
	}
	if replace {
		md.ClearSignatures()
	}
	for _, k := range keys {
		if k == nil || k.Signer == nil {
			return errors.New("signing: a key without its private half (use KeyStore.Load)")
		}
		s, err := tufSigner(k)
		if err != nil {
			return err
		}
		kept := md.Signatures[:0]
		for _, sig := range md.Signatures {
			if sig.KeyID != k.ID {
				kept = append(kept, sig)
			}
		}
		md.Signatures = kept
		sig, err := md.Sign(s)
		if err != nil {
			return fmt.Errorf("signing with key %q: %w", k.Name, err)
		}
		if sig.KeyID != k.ID {
			return fmt.Errorf("signing with key %q: signed as key ID %s, not %s", k.Name, sig.KeyID, k.ID)
		}
	}
	return nil
}

// tufSigner adapts a key to go-tuf's Sign with the scheme TUF names for its type
// (go-tuf v2.4.2's metadata.KeyFromPublicKey picks the scheme, VerifyDelegate
// checks it):
//   - ecdsa-sha2-nistp256: ECDSA P-256 over SHA-256, ASN.1 DER signatures;
//   - ed25519: pure Ed25519 over the message, crypto.Hash(0) (not Ed25519ph);
//   - rsassa-pss-sha256: RSA-PSS over SHA-256, MGF1 SHA-256, salt as long as the
//     hash (securesystemslib's choice; go-tuf verifies any salt length).
//
// It goes through crypto.Signer, so a key held elsewhere (a KMS, a token) signs
// the same way.
func tufSigner(k *Key) (signature.Signer, error) {
	alg, err := algorithmOf(k.Signer.Public())
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", k.Name, err)
	}
	if s := schemeSigner(k.Signer, alg); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("key %q: %w %q for TUF", k.Name, ErrUnsupportedAlgorithm, alg)
}

// schemeSigner signs with key as alg's one scheme, or is nil for an unknown alg.
// TUF metadata and cosign artifacts use the same schemes, so a key never signs two
// ways.
func schemeSigner(key crypto.Signer, alg Algorithm) *cryptoSigner {
	switch alg {
	case ECDSAP256:
		return &cryptoSigner{key: key, hash: crypto.SHA256, opts: crypto.SHA256}
	case Ed25519:
		return &cryptoSigner{key: key, hash: 0, opts: crypto.Hash(0)}
	case RSAPSS3072:
		return &cryptoSigner{key: key, hash: crypto.SHA256, opts: &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}}
	}
	return nil
}

// cryptoSigner is a sigstore signature.Signer over a crypto.Signer: it hashes the
// message with hash (none when 0) and signs the digest with opts.
type cryptoSigner struct {
	key  crypto.Signer
	hash crypto.Hash
	opts crypto.SignerOpts
}

func (s *cryptoSigner) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return s.key.Public(), nil
}

func (s *cryptoSigner) SignMessage(message io.Reader, _ ...signature.SignOption) ([]byte, error) {
	msg, err := io.ReadAll(message)
	if err != nil {
		return nil, err
	}
	if s.hash == 0 {
		return s.key.Sign(rand.Reader, msg, s.opts)
	}
	if s.hash != crypto.SHA256 {
		return nil, fmt.Errorf("%w: hash %v", ErrUnsupportedAlgorithm, s.hash)
	}
	d := sha256.Sum256(msg)
	return s.key.Sign(rand.Reader, d[:], s.opts)
}

// SchemeVerifier checks signatures by pub with the one scheme its algorithm signs
// with (schemeSigner), the one SignMetadata and SignCosign use: verify checks
// cosign signatures with it, and SignCosign finds its own signature in an
// artifact it co-signs. It fails with ErrUnsupportedAlgorithm for a key this
// package does not sign with.
func SchemeVerifier(pub crypto.PublicKey) (func(msg, sig []byte) bool, error) {
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
