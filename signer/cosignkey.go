package signer

import (
	"crypto"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"golang.org/x/term"
)

// CosignPasswordEnv names the environment variable cosign reads a key's password
// from; CosignPassphrase reads it too.
const CosignPasswordEnv = "COSIGN_PASSWORD"

// cosignPEMTypes are the PEM types of a private key `cosign generate-key-pair`
// writes: "ENCRYPTED SIGSTORE PRIVATE KEY" since cosign 2.0, "ENCRYPTED COSIGN
// PRIVATE KEY" before. Both hold the same thing: the PKCS#8 key encrypted by
// go-securesystemslib's encrypted package (scrypt, then nacl/secretbox).
var cosignPEMTypes = []string{
	string(cryptoutils.EncryptedSigstorePrivateKeyPEMType),
	"ENCRYPTED COSIGN PRIVATE KEY",
}

// ParseCosignPrivateKey decrypts a cosign private key file (cosign.key) with its
// password. An unencrypted or foreign PEM file is refused, so is a key of a type
// Algorithms() does not list (cosign can make ECDSA P-384 keys, say), with
// ErrUnsupportedAlgorithm; a wrong password fails with ErrWrongPassphrase.
func ParseCosignPrivateKey(keyPEM, password []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("not a PEM file: a cosign key starts with -----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
	}
	known := false
	for _, t := range cosignPEMTypes {
		known = known || block.Type == t
	}
	if !known {
		return nil, fmt.Errorf("a %q PEM block is not a cosign key (want %q)", block.Type, cosignPEMTypes[0])
	}
	if password == nil {
		password = []byte{} // nil would make sigstore skip the decryption
	}
	priv, err := sigstoreUnseal(keyPEM, password)
	if errors.Is(err, ErrWrongPassphrase) {
		return nil, fmt.Errorf("%w: the cosign key does not decrypt with it", ErrWrongPassphrase)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the cosign key: %w", err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedAlgorithm, priv)
	}
	if _, err := algorithmOf(s.Public()); err != nil {
		return nil, err
	}
	return s, nil
}

// CosignPassphrase returns $COSIGN_PASSWORD if it is set (even to ""), else asks
// on the terminal without echo, else fails saying to set COSIGN_PASSWORD. It is
// the password of a cosign key being imported, never a Signet key's passphrase.
func CosignPassphrase() ([]byte, error) {
	if p, ok := os.LookupEnv(CosignPasswordEnv); ok {
		return append([]byte{}, p...), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, fmt.Errorf("no terminal to ask for the cosign key's password on: set %s", CosignPasswordEnv)
	}
	fmt.Fprint(os.Stderr, "Password of the cosign key: ")
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, fmt.Errorf("reading the cosign key's password: %w", err)
	}
	return append([]byte{}, p...), nil
}
