package signer

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// NewFastFileKeyStore is a file key store whose key files are sealed with
// AES-GCM under sha256(passphrase) instead of scrypt: the same files, names,
// modes and passphrase rules, at a thousandth of the cost, so the shared suite
// runs quickly. The real format is tested against sigstore's loader separately.
func NewFastFileKeyStore(dir string, passphrase func(confirm bool) ([]byte, error)) KeyStore {
	return &fileKeyStore{dir: dir, passphrase: passphrase, seal: fastSeal, unseal: fastUnseal}
}

func fastAEAD(passphrase []byte) cipher.AEAD {
	k := sha256.Sum256(passphrase)
	b, _ := aes.NewCipher(k[:])
	a, _ := cipher.NewGCM(b)
	return a
}

func fastSeal(priv crypto.PrivateKey, passphrase []byte) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	a := fastAEAD(passphrase)
	nonce := make([]byte, a.NonceSize())
	rand.Read(nonce)
	return cryptoutils.PEMEncode(cryptoutils.EncryptedSigstorePrivateKeyPEMType, a.Seal(nonce, nonce, der, nil)), nil
}

func fastUnseal(keyPEM, passphrase []byte) (crypto.PrivateKey, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	a := fastAEAD(passphrase)
	if len(block.Bytes) < a.NonceSize() {
		return nil, errors.New("short")
	}
	der, err := a.Open(nil, block.Bytes[:a.NonceSize()], block.Bytes[a.NonceSize():], nil)
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	return x509.ParsePKCS8PrivateKey(der)
}
