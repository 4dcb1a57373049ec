package verify

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/signer"
)

// Keys are the publisher keys the trust graph delegates a repository to, as
// CheckCosignArtifact takes them: the TUF key records stay inside this package,
// so a caller such as the registry's gate passes keys along, and names a set of
// them, without reading TUF metadata itself. The zero Keys holds none.
type Keys struct {
	keys []*metadata.Key
}

// NewKeys makes Keys of TUF key records, as a role's delegation lists them (a
// nil record is ignored by every check).
func NewKeys(keys ...*metadata.Key) Keys {
	return Keys{keys: keys}
}

// Len is how many key records there are.
func (k Keys) Len() int { return len(k.keys) }

// IDs returns the TUF key IDs, sorted, leaving out a record go-tuf cannot name:
// two Keys with the same IDs check signatures alike.
func (k Keys) IDs() []string {
	ids := make([]string, 0, len(k.keys))
	for _, key := range k.keys {
		if key == nil {
			continue
		}
		if id, err := key.ID(); err == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// keyVerifier is one key ready to check signatures with: its TUF key ID, its
// public key and its TUF scheme's verification.
type keyVerifier struct {
	id     string
	pub    crypto.PublicKey
	verify func(msg, sig []byte) bool
}

// verifiers returns a verifier for each distinct key, leaving out what go-tuf
// cannot read or name (such a record verifies nothing): one key listed twice
// is one signer.
func (k Keys) verifiers() []keyVerifier {
	var vs []keyVerifier
	seen := map[string]bool{}
	for _, key := range k.keys {
		if key == nil || seen[key.Value.PublicKey] {
			continue
		}
		pub, err := key.ToPublicKey()
		if err != nil {
			continue
		}
		v, err := signer.SchemeVerifier(pub)
		if err != nil {
			continue
		}
		id, err := key.ID()
		if err != nil {
			continue
		}
		seen[key.Value.PublicKey] = true
		vs = append(vs, keyVerifier{id: id, pub: pub, verify: v})
	}
	return vs
}

// match returns the verifier of the key equal to pub, as a format that carries
// its signer's public key (a certificate) names the key: by the key itself,
// never by a name or an issuer.
func (k Keys) match(pub crypto.PublicKey) (keyVerifier, bool) {
	want, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return keyVerifier{}, false
	}
	for _, v := range k.verifiers() {
		if got, err := x509.MarshalPKIXPublicKey(v.pub); err == nil && bytes.Equal(got, want) {
			return v, true
		}
	}
	return keyVerifier{}, false
}
