package signer

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-oss/signet/internal/atomicfile"
)

// A file key store keeps each key as up to three files in one directory:
//
//	<dir>/                 0700
//	├── <name>.key         0600  PEM "ENCRYPTED SIGSTORE PRIVATE KEY": the PKCS#8 key
//	│                            encrypted by sigstore's cryptoutils (scrypt +
//	│                            secretbox), the format `cosign generate-key-pair` writes
//	├── <name>.pub         0600  PEM "PUBLIC KEY" (PKIX), what `keys export` prints
//	└── <name>.json        0600  {"development":true}, for development keys only
//
// <name>.key is the key: it is created last-but-one, exclusively (a hard link of a
// finished temporary file), so a name is taken exactly when its .key exists and two
// racing Generates cannot both win. The sidecar is written before it, the .pub after.
// A key held in a PKCS#11 token has a <name>.pkcs11 entry instead of a .key
// (tokenstore.go).

// Paths of a key's files in dir.
func privatePath(dir, name string) string { return filepath.Join(dir, name+".key") }
func publicPath(dir, name string) string  { return filepath.Join(dir, name+".pub") }
func sidecarPath(dir, name string) string { return filepath.Join(dir, name+".json") }

type sidecar struct {
	Development bool `json:"development"`
}

type fileKeyStore struct {
	dir        string
	passphrase func(confirm bool) ([]byte, error)
	// seal encrypts a PKCS#8 key into the .key file's PEM; unseal reverses it.
	// Always sigstore's, except in this package's tests, where scrypt's deliberate
	// cost (about half a second a key) would make the shared suite crawl.
	seal   func(priv crypto.PrivateKey, passphrase []byte) ([]byte, error)
	unseal func(keyPEM, passphrase []byte) (crypto.PrivateKey, error)
	// pin, when set, is the PIN a token key is loaded with, whatever its URI,
	// its pin-source or the environment say (NewUnlockingKeyStore).
	pin []byte
}

// NewFileKeyStore returns the key store kept in dir (created 0700 on the first
// Generate). passphrase is called only when a private key is created (confirm true)
// or used (confirm false), never for development keys; Passphrase is the usual one.
func NewFileKeyStore(dir string, passphrase func(confirm bool) ([]byte, error)) KeyStore {
	return &fileKeyStore{dir: dir, passphrase: passphrase, seal: sigstoreSeal, unseal: sigstoreUnseal}
}

// NewUnlockingKeyStore returns the key store kept in dir, opening keys with
// secret: a file key's passphrase, or a token key's PIN. It is how a signing
// agent unlocks the one key it is asked to add, with the secret its user gave
// for that key.
func NewUnlockingKeyStore(dir string, secret []byte) KeyStore {
	secret = append([]byte{}, secret...)
	return &fileKeyStore{dir: dir, passphrase: func(bool) ([]byte, error) { return secret, nil },
		seal: sigstoreSeal, unseal: sigstoreUnseal, pin: secret}
}

// sigstoreSeal writes priv as cosign does: PKCS#8, encrypted by go-securesystemslib
// (scrypt, nacl/secretbox), PEM "ENCRYPTED SIGSTORE PRIVATE KEY".
func sigstoreSeal(priv crypto.PrivateKey, passphrase []byte) ([]byte, error) {
	der, err := cryptoutils.MarshalPrivateKeyToEncryptedDER(priv, cryptoutils.StaticPasswordFunc(passphrase))
	if err != nil {
		return nil, err
	}
	return cryptoutils.PEMEncode(cryptoutils.EncryptedSigstorePrivateKeyPEMType, der), nil
}

func sigstoreUnseal(keyPEM, passphrase []byte) (crypto.PrivateKey, error) {
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(keyPEM, cryptoutils.StaticPasswordFunc(passphrase))
	if err != nil && strings.Contains(err.Error(), "decryption failed") {
		return nil, ErrWrongPassphrase
	}
	return priv, err
}

func (s *fileKeyStore) Generate(ctx context.Context, name string, alg Algorithm) (*KeyInfo, error) {
	if alg == "" {
		alg = DefaultAlgorithm
	}
	if err := s.free(ctx, name); err != nil {
		return nil, err
	}
	priv, err := newPrivateKey(alg)
	if err != nil {
		return nil, err
	}
	return s.store(name, priv)
}

func (s *fileKeyStore) Import(ctx context.Context, name string, priv crypto.Signer) (*KeyInfo, error) {
	if priv == nil {
		return nil, fmt.Errorf("key %q: no private key to import", name)
	}
	if _, err := algorithmOf(priv.Public()); err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	if err := s.free(ctx, name); err != nil {
		return nil, err
	}
	return s.store(name, priv)
}

// free checks that name is valid and not taken, creating the key directory.
func (s *fileKeyStore) free(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.ensureDir(); err != nil {
		return err
	}
	for _, p := range []string{privatePath(s.dir, name), tokenPath(s.dir, name)} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%w: %q (in %s)", ErrKeyExists, name, s.dir)
		}
	}
	return nil
}

// store encrypts priv and writes the key's files, refusing a name taken meanwhile.
func (s *fileKeyStore) store(name string, priv crypto.Signer) (*KeyInfo, error) {
	dev := strings.HasPrefix(name, DevelopmentPrefix)
	pass := []byte{}
	var err error
	if !dev {
		if pass, err = s.ask(name, true); err != nil {
			return nil, err
		}
	}
	info, _, err := publicInfo(name, priv.Public(), dev)
	if err != nil {
		return nil, err
	}
	keyPEM, err := s.seal(priv, pass)
	if err != nil {
		return nil, fmt.Errorf("encrypting key %q: %w", name, err)
	}

	if dev {
		// Harmless if a racing Generate of the same name wins: its sidecar says the same.
		b, _ := json.Marshal(sidecar{Development: true})
		if err := atomicfile.Write(sidecarPath(s.dir, name), append(b, '\n'), 0o600); err != nil {
			return nil, err
		}
	}
	if err := atomicfile.Create(privatePath(s.dir, name), keyPEM, 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w: %q (in %s)", ErrKeyExists, name, s.dir)
		}
		return nil, err
	}
	if err := atomicfile.Write(publicPath(s.dir, name), info.PublicPEM, 0o600); err != nil {
		return nil, err
	}
	return info, nil
}

func (s *fileKeyStore) Load(ctx context.Context, name string) (*Key, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if u, ok, err := s.tokenURI(name); err != nil || ok {
		if err != nil {
			return nil, err
		}
		return s.loadToken(name, u)
	}
	path := privatePath(s.dir, name)
	keyPEM, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q (in %s)", ErrKeyNotFound, name, s.dir)
	}
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != string(cryptoutils.EncryptedSigstorePrivateKeyPEMType) {
		return nil, fmt.Errorf("key %q: %s is not an %q PEM file", name, path, cryptoutils.EncryptedSigstorePrivateKeyPEMType)
	}
	dev, err := s.development(name)
	if err != nil {
		return nil, err
	}
	pass := []byte{}
	if !dev {
		if pass, err = s.ask(name, false); err != nil {
			return nil, err
		}
	}
	priv, err := s.unseal(keyPEM, pass)
	if errors.Is(err, ErrWrongPassphrase) {
		return nil, fmt.Errorf("key %q: %w (%s does not decrypt with it)", name, ErrWrongPassphrase, path)
	}
	if err != nil {
		return nil, fmt.Errorf("key %q: reading %s: %w", name, path, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key %q: %w: %T", name, ErrUnsupportedAlgorithm, priv)
	}
	info, tk, err := publicInfo(name, signer.Public(), dev)
	if err != nil {
		return nil, err
	}
	// The .pub is what others were given (keys export): refuse to sign with a
	// private key that does not match it.
	if pubPEM, err := os.ReadFile(publicPath(s.dir, name)); err == nil && !bytes.Equal(bytes.TrimSpace(pubPEM), bytes.TrimSpace(info.PublicPEM)) {
		return nil, fmt.Errorf("key %q: %s does not match the private key in %s", name, publicPath(s.dir, name), path)
	}
	return &Key{KeyInfo: *info, Signer: signer, TUF: tk}, nil
}

func (s *fileKeyStore) Public(ctx context.Context, name string) (*KeyInfo, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := publicPath(s.dir, name)
	pubPEM, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		for _, p := range []string{privatePath(s.dir, name), tokenPath(s.dir, name)} {
			if _, kerr := os.Lstat(p); kerr == nil {
				return nil, fmt.Errorf("key %q: %s is missing (an interrupted generate?): remove %s and generate it again", name, path, p)
			}
		}
		return nil, fmt.Errorf("%w: %q (in %s)", ErrKeyNotFound, name, s.dir)
	}
	if err != nil {
		return nil, err
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return nil, fmt.Errorf("key %q: %s: %w", name, path, err)
	}
	dev, err := s.development(name)
	if err != nil {
		return nil, err
	}
	info, _, err := publicInfo(name, pub, dev)
	if err != nil {
		return nil, err
	}
	u, ok, err := s.tokenURI(name)
	if err != nil {
		return nil, err
	}
	if ok {
		info.PKCS11 = u.String()
	}
	return info, nil
}

func (s *fileKeyStore) List(ctx context.Context) ([]KeyInfo, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return []KeyInfo{}, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".key")
		if !ok {
			name, ok = strings.CutSuffix(e.Name(), ".pkcs11")
		}
		if ok && e.Type().IsRegular() && ValidateName(name) == nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	names = slices.Compact(names)
	keys := make([]KeyInfo, 0, len(names))
	for _, name := range names {
		info, err := s.Public(ctx, name)
		if err != nil {
			return nil, err
		}
		keys = append(keys, *info)
	}
	return keys, nil
}

// ask calls the passphrase function, refusing a missing one: a nil passphrase would
// make sigstore store or read the key unencrypted.
func (s *fileKeyStore) ask(name string, confirm bool) ([]byte, error) {
	if s.passphrase == nil {
		return nil, fmt.Errorf("key %q: no passphrase source", name)
	}
	p, err := s.passphrase(confirm)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	if p == nil {
		return nil, fmt.Errorf("key %q: no passphrase given", name)
	}
	return p, nil
}

// development reads the sidecar: a key without one is not a development key.
func (s *fileKeyStore) development(name string) (bool, error) {
	b, err := os.ReadFile(sidecarPath(s.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var sc sidecar
	if err := json.Unmarshal(b, &sc); err != nil {
		return false, fmt.Errorf("key %q: %s: %w", name, sidecarPath(s.dir, name), err)
	}
	return sc.Development, nil
}

// ensureDir creates the key directory 0700, and takes group and other access away
// from an existing one: it holds private keys.
func (s *fileKeyStore) ensureDir() error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("creating the key directory: %w", err)
	}
	fi, err := os.Stat(s.dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(s.dir, fi.Mode().Perm()&0o700); err != nil {
			return fmt.Errorf("restricting the key directory %s to its owner: %w", s.dir, err)
		}
	}
	return nil
}
