//go:build !cgo

package signer

import "crypto"

// PKCS11Supported reports whether this build can use keys in a token: the
// PKCS#11 library loads modules through cgo.
const PKCS11Supported = false

func tokenGenerate(*PKCS11URI, string, Algorithm) (crypto.Signer, *PKCS11URI, error) {
	return nil, nil, ErrNoPKCS11
}

func tokenFind(*PKCS11URI) (crypto.Signer, *PKCS11URI, error) { return nil, nil, ErrNoPKCS11 }

// CloseTokens has no session to close in a build without PKCS#11.
func CloseTokens() error { return nil }
