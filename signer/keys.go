package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"regexp"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Algorithm names a key type and the signature scheme used with it.
type Algorithm string

const (
	// ECDSAP256 is ECDSA on NIST P-256 with SHA-256: TUF's "ecdsa-sha2-nistp256".
	ECDSAP256 Algorithm = "ecdsa-p256"
	// Ed25519 is pure Ed25519 (the message itself is signed, crypto.Hash(0)): TUF's
	// "ed25519".
	Ed25519 Algorithm = "ed25519"
	// RSAPSS3072 is RSA with a 3072-bit modulus, signing with PSS over SHA-256 (salt
	// as long as the hash): TUF's "rsassa-pss-sha256". Only 3072-bit keys carry
	// the name: an RSA key of another size is refused.
	RSAPSS3072 Algorithm = "rsa-pss-3072"

	// DefaultAlgorithm is what Generate makes when asked for "", and cosign's
	// default key type too.
	DefaultAlgorithm = ECDSAP256
)

// rsaBits is the modulus size of RSAPSS3072.
const rsaBits = 3072

// Algorithms lists the algorithms Generate accepts, the default first.
func Algorithms() []Algorithm { return []Algorithm{ECDSAP256, Ed25519, RSAPSS3072} }

// KeyInfo is what may be known of a key without its passphrase.
type KeyInfo struct {
	// Name is the key's name in its store.
	Name string `json:"name"`
	// ID is the TUF key ID: go-tuf's metadata.KeyFromPublicKey(pub).ID().
	ID string `json:"id"`
	// Algorithm is one of Algorithms().
	Algorithm string `json:"algorithm"`
	// PublicPEM is the public key, PEM "PUBLIC KEY" (PKIX), as cosign reads it.
	PublicPEM []byte `json:"-"`
	// Development marks a key made by `trustctl up` for a local stack: stored with
	// the empty passphrase, never to be trusted by a production deployment.
	Development bool `json:"development"`
	// PKCS11 is, for a key held in a PKCS#11 token, the RFC 7512 URI naming
	// it (never with a PIN); "" for a key in a file.
	PKCS11 string `json:"pkcs11,omitempty"`
}

// DevelopmentWarning is the line every command prints when it uses a development
// key, or "" for any other key.
func (k *KeyInfo) DevelopmentWarning() string {
	if !k.Development {
		return ""
	}
	return fmt.Sprintf("warning: key %q is a development key (empty passphrase, for a local stack): do not trust it with anything that matters", k.Name)
}

// Key is a key loaded with its private half.
type Key struct {
	KeyInfo
	// Signer signs with the private key; SignMetadata picks the hash and padding.
	Signer crypto.Signer
	// TUF is the public key as TUF metadata lists it (its ID is KeyInfo.ID).
	TUF *metadata.Key
}

// KeyStore keeps named signing keys. Names follow ValidateName. Implementations are
// safe for concurrent use; all share the suite in signer/keystoretest.
type KeyStore interface {
	// Generate makes a new key of algorithm alg ("" means DefaultAlgorithm) and
	// stores it under name. It fails with ErrKeyExists if name is taken, and never
	// replaces an existing key. Development keys (DevelopmentPrefix) are stored
	// with the empty passphrase and marked Development; other keys are encrypted
	// with the store's passphrase, asked with confirmation.
	Generate(ctx context.Context, name string, alg Algorithm) (*KeyInfo, error)
	// Import stores a private key made elsewhere (a cosign key, see
	// ParseCosignPrivateKey) under name, exactly as Generate stores the keys it
	// makes: the same passphrase rules, ErrKeyExists for a taken name, and
	// ErrUnsupportedAlgorithm, with nothing stored, for a key of a type
	// Algorithms() does not list.
	Import(ctx context.Context, name string, priv crypto.Signer) (*KeyInfo, error)
	// Load decrypts the private key (asking for the passphrase unless it is a
	// development key). A wrong passphrase fails with ErrWrongPassphrase.
	Load(ctx context.Context, name string) (*Key, error)
	// Public returns what is known of the key without its passphrase.
	Public(ctx context.Context, name string) (*KeyInfo, error)
	// List returns every key, sorted by name.
	List(ctx context.Context) ([]KeyInfo, error)
}

var (
	// ErrKeyExists: Generate was asked for a name that is taken.
	ErrKeyExists = errors.New("key exists")
	// ErrKeyNotFound: no key has that name.
	ErrKeyNotFound = errors.New("no such key")
	// ErrInvalidName: the name breaks ValidateName.
	ErrInvalidName = errors.New("invalid key name")
	// ErrWrongPassphrase: the passphrase does not decrypt the key.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrUnsupportedAlgorithm: an algorithm (or a stored key's type) this package
	// does not sign with.
	ErrUnsupportedAlgorithm = errors.New("unsupported key algorithm")
)

// DevelopmentPrefix starts the name of every development key: dev-root,
// dev-targets, dev-org-<org>...
const DevelopmentPrefix = "dev-"

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidateName checks a key name: 1 to 64 characters of lower-case letters, digits,
// '.', '_' and '-', starting with a letter or digit. Names become file names, so
// nothing that could leave the key directory (no '/', no "..") and nothing that
// case-insensitive file systems would confuse.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w %q: use 1-64 of a-z 0-9 . _ -, starting with a letter or digit", ErrInvalidName, name)
	}
	return nil
}

// newPrivateKey makes a fresh private key of alg.
func newPrivateKey(alg Algorithm) (crypto.Signer, error) {
	switch alg {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case RSAPSS3072:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	}
	return nil, fmt.Errorf("%w %q (supported: %v)", ErrUnsupportedAlgorithm, alg, Algorithms())
}

// algorithmOf names the algorithm of a public key, or fails for a key this package
// does not sign with: go-tuf v2.4.2 verifies ECDSA only as P-256 with SHA-256, and
// an RSA key is named for its size.
func algorithmOf(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return ECDSAP256, nil
		}
		return "", fmt.Errorf("%w: ECDSA on %s (only P-256)", ErrUnsupportedAlgorithm, k.Curve.Params().Name)
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return Ed25519, nil
		}
		return "", fmt.Errorf("%w: an Ed25519 key of %d bytes", ErrUnsupportedAlgorithm, len(k))
	case *rsa.PublicKey:
		if k.N.BitLen() == rsaBits {
			return RSAPSS3072, nil
		}
		return "", fmt.Errorf("%w: RSA with a %d-bit modulus (only %d)", ErrUnsupportedAlgorithm, k.N.BitLen(), rsaBits)
	}
	return "", fmt.Errorf("%w: %T", ErrUnsupportedAlgorithm, pub)
}

// publicInfo fills the public parts of a KeyInfo from a public key.
func publicInfo(name string, pub crypto.PublicKey, development bool) (*KeyInfo, *metadata.Key, error) {
	alg, err := algorithmOf(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("key %q: %w", name, err)
	}
	tk, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("key %q: %w", name, err)
	}
	id, err := tk.ID()
	if err != nil {
		return nil, nil, fmt.Errorf("key %q: %w", name, err)
	}
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("key %q: %w", name, err)
	}
	return &KeyInfo{Name: name, ID: id, Algorithm: string(alg), PublicPEM: pemBytes, Development: development}, tk, nil
}

// NewKey makes a key that lives only in memory (trustd's online keys before it
// stores them its own way, tests). alg "" means DefaultAlgorithm.
func NewKey(name string, alg Algorithm) (*Key, error) {
	if alg == "" {
		alg = DefaultAlgorithm
	}
	priv, err := newPrivateKey(alg)
	if err != nil {
		return nil, err
	}
	return KeyFromSigner(name, priv)
}

// KeyFromSigner makes a Key of a private key kept elsewhere. It fails with
// ErrUnsupportedAlgorithm for a key SignMetadata cannot sign with (ECDSA on any
// curve but P-256, say).
func KeyFromSigner(name string, s crypto.Signer) (*Key, error) {
	if s == nil {
		return nil, errors.New("no private key")
	}
	info, tk, err := publicInfo(name, s.Public(), false)
	if err != nil {
		return nil, err
	}
	return &Key{KeyInfo: *info, Signer: s, TUF: tk}, nil
}
