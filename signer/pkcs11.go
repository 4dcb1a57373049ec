//go:build cgo

package signer

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// PKCS11Supported reports whether this build can use keys in a token.
const PKCS11Supported = true

// tokens holds one logged-in context per token for the process: a command that
// signs with several keys of one token, or one key many times, asks for the PIN
// and logs in once.
var tokens = struct {
	sync.Mutex
	m map[string]*crypto11.Context
}{m: map[string]*crypto11.Context{}}

// openToken loads u's module and logs in to u's token, or returns the context
// this process already has for it. The login is one attempt: a wrong PIN fails
// with ErrWrongPIN and is not retried.
func openToken(u *PKCS11URI) (*crypto11.Context, error) {
	key := strings.Join([]string{u.ModulePath(), u.Serial(), u.Token(), u.SlotID()}, "\x00")
	tokens.Lock()
	defer tokens.Unlock()
	if c := tokens.m[key]; c != nil {
		return c, nil
	}
	if _, err := os.Stat(u.ModulePath()); err != nil {
		return nil, fmt.Errorf("token %q: the PKCS#11 module: %w", u.TokenName(), err)
	}
	pin, err := u.PIN()
	if err != nil {
		return nil, err
	}
	cfg := &crypto11.Config{Path: u.ModulePath(), Pin: string(pin)}
	switch {
	case u.Serial() != "":
		cfg.TokenSerial = u.Serial()
	case u.Token() != "":
		cfg.TokenLabel = u.Token()
	default:
		n, _ := strconv.Atoi(u.SlotID()) // checked by ParsePKCS11URI
		cfg.SlotNumber = &n
	}
	c, err := crypto11.Configure(cfg)
	if err != nil {
		return nil, tokenError(u, err)
	}
	tokens.m[key] = c
	return c, nil
}

// CloseTokens logs out of every token this process logged in to and forgets
// the sessions, so the next use of a token key asks for its PIN again: a
// signing agent that locks must hold no session that would sign without it.
func CloseTokens() error {
	tokens.Lock()
	defer tokens.Unlock()
	var errs []error
	for k, c := range tokens.m {
		errs = append(errs, c.Close())
		delete(tokens.m, k)
	}
	return errors.Join(errs...)
}

// tokenError says what went wrong with a token in words, never quoting the PIN
// (crypto11's errors do not hold it either).
func tokenError(u *PKCS11URI, err error) error {
	var p11 pkcs11.Error
	if errors.As(err, &p11) {
		switch p11 {
		case pkcs11.CKR_PIN_INCORRECT:
			return fmt.Errorf("token %q: %w: the token refused the PIN (one login was attempted and not retried; a token locks after a few wrong PINs in a row)", u.TokenName(), ErrWrongPIN)
		case pkcs11.CKR_PIN_LOCKED:
			return fmt.Errorf("token %q: its PIN is locked after too many wrong PINs: unlock it with the security officer's PIN (the token vendor's tool)", u.TokenName())
		case pkcs11.CKR_PIN_LEN_RANGE:
			return fmt.Errorf("token %q: %w: the PIN is too short or too long for this token", u.TokenName(), ErrWrongPIN)
		}
	}
	if strings.Contains(err.Error(), "could not find PKCS#11 token") {
		return fmt.Errorf("token %q: no such token in module %s (initialised? softhsm2-util --show-slots or the vendor's tool lists them)", u.TokenName(), u.ModulePath())
	}
	return fmt.Errorf("token %q (module %s): %w", u.TokenName(), u.ModulePath(), err)
}

// tokenGenerate makes a key pair of alg inside u's token, labelled label (the
// URI's object, else the key's name) with the URI's id or a random one. The
// private half is generated sensitive and not extractable: the token signs
// with it and never reveals it. It refuses a label or id the token already
// holds a key under.
func tokenGenerate(u *PKCS11URI, label string, alg Algorithm) (crypto.Signer, *PKCS11URI, error) {
	c, err := openToken(u)
	if err != nil {
		return nil, nil, err
	}
	if u.Object() != "" {
		label = u.Object()
	}
	id := u.ID()
	if len(id) == 0 {
		id = make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return nil, nil, err
		}
	}
	for _, q := range [][2][]byte{{nil, []byte(label)}, {id, nil}} {
		existing, err := c.FindKeyPairs(q[0], q[1])
		if err != nil {
			return nil, nil, tokenError(u, err)
		}
		if len(existing) > 0 {
			return nil, nil, fmt.Errorf("token %q already holds a key with label %q or this id: use it with `trustctl keys import NAME --pkcs11 URI`, or pick another object=LABEL", u.TokenName(), label)
		}
	}
	var s crypto.Signer
	switch alg {
	case ECDSAP256:
		s, err = c.GenerateECDSAKeyPairWithLabel(id, []byte(label), elliptic.P256())
	case RSAPSS3072:
		s, err = c.GenerateRSAKeyPairWithLabel(id, []byte(label), rsaBits)
	default:
		return nil, nil, fmt.Errorf("%w %q in a token (supported there: %v)", ErrUnsupportedAlgorithm, alg, TokenAlgorithms())
	}
	if err != nil {
		return nil, nil, tokenError(u, err)
	}
	return s, u.withKey(label, id), nil
}

// tokenFind returns the one key pair in u's token that u names by object
// label and/or id, and the URI that names exactly it.
func tokenFind(u *PKCS11URI) (crypto.Signer, *PKCS11URI, error) {
	var id, label []byte
	if len(u.ID()) > 0 {
		id = u.ID()
	}
	if u.Object() != "" {
		label = []byte(u.Object())
	}
	if id == nil && label == nil {
		return nil, nil, fmt.Errorf("PKCS#11 URI: no key named: add object=LABEL (or id=...) for the key in token %q", u.TokenName())
	}
	c, err := openToken(u)
	if err != nil {
		return nil, nil, err
	}
	found, err := c.FindKeyPairs(id, label)
	if err != nil {
		return nil, nil, tokenError(u, err)
	}
	switch len(found) {
	case 0:
		return nil, nil, fmt.Errorf("%w: token %q holds no key pair %s (a key needs its public key object in the token too)", ErrKeyNotFound, u.TokenName(), u)
	case 1:
	default:
		return nil, nil, fmt.Errorf("token %q holds %d key pairs matching %s: add id=... to name one", u.TokenName(), len(found), u)
	}
	s := found[0]
	gotID, err := c.GetAttribute(s, crypto11.CkaId)
	if err != nil {
		return nil, nil, tokenError(u, err)
	}
	gotLabel, err := c.GetAttribute(s, crypto11.CkaLabel)
	if err != nil {
		return nil, nil, tokenError(u, err)
	}
	return s, u.withKey(string(gotLabel.Value), gotID.Value), nil
}
