//go:build cgo

package signer

import (
	"errors"

	"github.com/ThalesGroup/crypto11"
)

// TokenPrivateValue asks k's token for the key's private value (CKA_VALUE),
// as a program trying to copy the key out would.
func TokenPrivateValue(k *Key) ([]byte, error) {
	if k.PKCS11 == "" {
		return nil, errors.New("not a token key")
	}
	u, err := ParsePKCS11URI(k.PKCS11)
	if err != nil {
		return nil, err
	}
	c, err := openToken(u)
	if err != nil {
		return nil, err
	}
	a, err := c.GetAttribute(k.Signer, crypto11.CkaValue)
	if err != nil {
		return nil, err
	}
	return a.Value, nil
}
