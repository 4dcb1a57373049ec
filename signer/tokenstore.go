package signer

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/signet-oss/signet/internal/atomicfile"
)

// A key in a PKCS#11 token is an entry of two files in the key store's
// directory, beside the file keys:
//
//	<name>.pkcs11  0600  {"uri":"pkcs11:token=...;object=...;id=...;type=private?module-path=..."}
//	<name>.pub     0600  PEM "PUBLIC KEY", read from the token when the entry was made
//
// The URI names the token and exactly one key in it; it never holds the PIN
// (pin-value is dropped; a pin-source, the name of a file, is kept) and the
// store never holds private material: the token signs, and was told at
// generation that the key is sensitive and not extractable. A name is taken
// when either its .key or its .pkcs11 exists; .pkcs11 is created exclusively,
// then the .pub.

func tokenPath(dir, name string) string { return filepath.Join(dir, name+".pkcs11") }

type tokenEntry struct {
	URI string `json:"uri"`
}

// TokenKeyStore is a KeyStore that also keeps keys held in PKCS#11 tokens
// (NewFileKeyStore's stores are). Load of such a key logs in to the token, once
// per token for the process, and returns a Key whose Signer asks the token to
// sign.
type TokenKeyStore interface {
	KeyStore
	// GenerateInToken makes a key pair of alg ("" means DefaultAlgorithm; see
	// TokenAlgorithms) inside the token uri names, labelled by the URI's object
	// or else name, and stores the entry under name. The PIN comes from
	// PKCS11URI.PIN.
	GenerateInToken(ctx context.Context, name, uri string, alg Algorithm) (*KeyInfo, error)
	// ImportFromToken stores under name an entry for a key pair already in the
	// token, which uri names by object label and/or id.
	ImportFromToken(ctx context.Context, name, uri string) (*KeyInfo, error)
}

func (s *fileKeyStore) GenerateInToken(ctx context.Context, name, uri string, alg Algorithm) (*KeyInfo, error) {
	if alg == "" {
		alg = DefaultAlgorithm
	}
	if !slices.Contains(TokenAlgorithms(), alg) {
		return nil, fmt.Errorf("%w %q in a token (supported there: %v)", ErrUnsupportedAlgorithm, alg, TokenAlgorithms())
	}
	u, err := s.tokenFree(ctx, name, uri)
	if err != nil {
		return nil, err
	}
	priv, full, err := tokenGenerate(u, name, alg)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	return s.storeToken(name, full, priv.Public())
}

func (s *fileKeyStore) ImportFromToken(ctx context.Context, name, uri string) (*KeyInfo, error) {
	u, err := s.tokenFree(ctx, name, uri)
	if err != nil {
		return nil, err
	}
	priv, full, err := tokenFind(u)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	if _, err := algorithmOf(priv.Public()); err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	return s.storeToken(name, full, priv.Public())
}

// tokenFree parses uri and checks that name may take a token key.
func (s *fileKeyStore) tokenFree(ctx context.Context, name, uri string) (*PKCS11URI, error) {
	if strings.HasPrefix(name, DevelopmentPrefix) {
		return nil, fmt.Errorf("key %q: names starting %q are development keys, made by trustctl up; a key in a token needs another name", name, DevelopmentPrefix)
	}
	u, err := ParsePKCS11URI(uri)
	if err != nil {
		return nil, err
	}
	if err := s.free(ctx, name); err != nil {
		return nil, err
	}
	return u, nil
}

// storeToken writes the entry of a token key: the URI that names it exactly,
// and its public key.
func (s *fileKeyStore) storeToken(name string, u *PKCS11URI, pub crypto.PublicKey) (*KeyInfo, error) {
	info, _, err := publicInfo(name, pub, false)
	if err != nil {
		return nil, err
	}
	info.PKCS11 = u.String()
	b, err := json.Marshal(tokenEntry{URI: info.PKCS11})
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Create(tokenPath(s.dir, name), append(b, '\n'), 0o600); err != nil {
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

// tokenURI reads a token key's entry: the URI, or ok false when name is not a
// token key.
func (s *fileKeyStore) tokenURI(name string) (u *PKCS11URI, ok bool, err error) {
	b, err := os.ReadFile(tokenPath(s.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var e tokenEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, false, fmt.Errorf("key %q: %s: %w", name, tokenPath(s.dir, name), err)
	}
	if u, err = ParsePKCS11URI(e.URI); err != nil {
		return nil, false, fmt.Errorf("key %q: %s: %w", name, tokenPath(s.dir, name), err)
	}
	return u, true, nil
}

// loadToken opens the token of a token key and finds the key in it, refusing
// one whose public key is not the .pub others were given.
func (s *fileKeyStore) loadToken(name string, u *PKCS11URI) (*Key, error) {
	want, err := s.Public(context.Background(), name)
	if err != nil {
		return nil, err
	}
	if s.pin != nil {
		u = u.withPIN(s.pin)
	}
	priv, _, err := tokenFind(u)
	if errors.Is(err, ErrKeyNotFound) {
		// The entry exists; the token lost the key (or another token answers).
		return nil, fmt.Errorf("key %q: its token does not hold it (%v): plug in the right token, or remove %s", name, err, tokenPath(s.dir, name))
	}
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	info, tk, err := publicInfo(name, priv.Public(), false)
	if err != nil {
		return nil, err
	}
	if info.ID != want.ID {
		return nil, fmt.Errorf("key %q: the key %s in the token is not the one whose public key is %s", name, u, publicPath(s.dir, name))
	}
	info.PKCS11 = u.String()
	return &Key{KeyInfo: *info, Signer: priv, TUF: tk}, nil
}
