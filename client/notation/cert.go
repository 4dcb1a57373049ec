package notation

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-oss/signet/internal/atomicfile"
	"github.com/signet-oss/signet/signer"
)

// CertificateValidity is how long a key's certificate is valid. Notation
// checks it on every verification (without a timestamp countersignature, the
// chain must be valid now), so it is a second expiry besides the trust graph's:
// long, so that it does not cut a delegation short, but finite, as notation's
// certificate checks require. A key that outlives it gets a new certificate
// with `trustctl notation setup --renew`.
const CertificateValidity = 10 * 365 * 24 * time.Hour

// clockSkew backdates a new certificate, so a verifier whose clock is a little
// behind the signer's accepts it at once.
const clockSkew = 5 * time.Minute

// ErrUnsupportedKey: notation cannot sign with the key. Notation's key specs
// are RSA (PSS with the hash its size names) and ECDSA; a Signet key signs
// with exactly one scheme, so only ECDSA P-256 keys (ECDSA with SHA-256, what
// notation's EC-256 is) can sign for notation.
var ErrUnsupportedKey = errors.New("notation cannot use this key")

// CheckKey fails with ErrUnsupportedKey, saying why, for a key notation cannot
// sign with.
func CheckKey(info *signer.KeyInfo) error {
	switch signer.Algorithm(info.Algorithm) {
	case signer.ECDSAP256:
		return nil
	case signer.Ed25519:
		return fmt.Errorf("%w: key %q is Ed25519, and notation signs only with RSA and ECDSA keys: generate an ECDSA key (trustctl keys generate NAME, the default) and have it delegated", ErrUnsupportedKey, info.Name)
	case signer.RSAPSS3072:
		return fmt.Errorf("%w: key %q is RSA 3072, which notation signs with RSASSA-PSS over SHA-384, and a Signet key signs with one scheme only (RSASSA-PSS over SHA-256): use an ECDSA P-256 key", ErrUnsupportedKey, info.Name)
	}
	return fmt.Errorf("%w: key %q is %s", ErrUnsupportedKey, info.Name, info.Algorithm)
}

// NewCertificate makes the key's certificate: self-signed by the key, not a
// CA, for code signing only (key usage digitalSignature, critical; extended
// key usage codeSigning), subject CN = the key's name, valid from now (less a
// little clock skew) for CertificateValidity. Only the public key in it
// matters to Signet; notation needs the rest to accept it as a signing
// certificate.
func NewCertificate(key *signer.Key, now time.Time) (*x509.Certificate, error) {
	if key == nil || key.Signer == nil {
		return nil, errors.New("certificate: a key without its private half (use KeyStore.Load)")
	}
	if err := CheckKey(&key.KeyInfo); err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	notBefore := now.UTC().Add(-clockSkew).Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: key.Name},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(CertificateValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Signer.Public(), key.Signer)
	if err != nil {
		return nil, fmt.Errorf("key %q: making its certificate: %w", key.Name, err)
	}
	return x509.ParseCertificate(der)
}

// CertificatePath is where the certificate of the key name is kept, next to
// the key in the key store's directory.
func CertificatePath(keyDir, name string) string { return filepath.Join(keyDir, name+".crt") }

// ReadCertificate reads the certificate kept for the key name in keyDir and
// checks that it certifies pub: ok is false when there is none (or it
// certifies another key: the key was made again under the same name).
func ReadCertificate(keyDir, name string, pub any) (cert *x509.Certificate, ok bool, err error) {
	b, err := os.ReadFile(CertificatePath(keyDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	cert, err = parseCertificatePEM(b)
	if err != nil {
		return nil, false, fmt.Errorf("key %q: %s: %w", name, CertificatePath(keyDir, name), err)
	}
	if cryptoutils.EqualKeys(cert.PublicKey, pub) != nil {
		return cert, false, nil
	}
	return cert, true, nil
}

// Certificate returns the key's certificate, making it (with the private key,
// which load returns) when the key store holds none, or holds one that
// certifies another key or has expired. The certificate is made once and
// kept: two processes that make one at once keep the first written. renew
// makes a new one even when the kept one is still good.
func Certificate(ctx context.Context, keyDir string, key *signer.Key, now time.Time, renew bool) (*x509.Certificate, error) {
	if err := CheckKey(&key.KeyInfo); err != nil {
		return nil, err
	}
	cert, ok, err := ReadCertificate(keyDir, key.Name, key.Signer.Public())
	if err != nil {
		return nil, err
	}
	if ok && !renew && now.Before(cert.NotAfter) {
		return cert, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fresh, err := NewCertificate(key, now)
	if err != nil {
		return nil, err
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fresh.Raw})
	path := CertificatePath(keyDir, key.Name)
	if cert != nil {
		// Replacing one that is stale or certifies another key: a plain write.
		if err := atomicfile.Write(path, pemBytes, 0o600); err != nil {
			return nil, err
		}
		return fresh, nil
	}
	if err := atomicfile.Create(path, pemBytes, 0o600); errors.Is(err, fs.ErrExist) {
		// Another process made it meanwhile: every signer uses that one.
		if kept, ok, err := ReadCertificate(keyDir, key.Name, key.Signer.Public()); err != nil || ok {
			return kept, err
		}
		return nil, fmt.Errorf("key %q: %s certifies another key", key.Name, path)
	} else if err != nil {
		return nil, err
	}
	return fresh, nil
}

// parseCertificatePEM reads one PEM CERTIFICATE.
func parseCertificatePEM(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}
