package tokenauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// SigningKey is an ES256 (P-256) key; KeyID is the RFC 7638 JWK thumbprint (base64url)
// of its public key.
type SigningKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

// GenerateSigningKey returns a new random P-256 key.
func GenerateSigningKey() (*SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return newSigningKey(priv)
}

// ParseSigningKeyPEM parses a P-256 private key in a PKCS#8 "PRIVATE KEY" block (as
// MarshalPEM writes it); a SEC 1 "EC PRIVATE KEY" block, as openssl ecparam writes
// it, is accepted too.
func ParseSigningKeyPEM(pemBytes []byte) (*SigningKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("signing key: no PEM block")
	}
	var parsed any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("signing key: PEM block %q, want \"PRIVATE KEY\"", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("signing key: not a P-256 (ES256) key")
	}
	return newSigningKey(priv)
}

func newSigningKey(priv *ecdsa.PrivateKey) (*SigningKey, error) {
	pub := jose.JSONWebKey{Key: &priv.PublicKey}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing key thumbprint: %w", err)
	}
	return &SigningKey{priv: priv, kid: base64.RawURLEncoding.EncodeToString(tp)}, nil
}

// MarshalPEM returns the private key as a PKCS#8 "PRIVATE KEY" PEM block.
func (k *SigningKey) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("marshal signing key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// KeyID returns the RFC 7638 SHA-256 thumbprint of the public key, base64url without
// padding: the "kid" of the tokens the key signs.
func (k *SigningKey) KeyID() string { return k.kid }

// PublicJWK returns the public key as a JWK: kty EC, crv P-256, alg ES256, use sig,
// kid = KeyID.
func (k *SigningKey) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{
		Key:       &k.priv.PublicKey,
		KeyID:     k.kid,
		Algorithm: string(jose.ES256),
		Use:       "sig",
	}
}

// JWKS is the public key set served at /.well-known/jwks.json.
func JWKS(keys ...*SigningKey) jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.PublicJWK())
	}
	return set
}
