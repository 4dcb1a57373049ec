package tuf

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/storage/driver"
)

// onlineKey is one of trustd's online keys (snapshot, timestamp): ECDSA P-256,
// signing with SHA-256 as TUF's ecdsa-sha2-nistp256 scheme requires.
type onlineKey struct {
	signer signature.Signer
	key    *metadata.Key
	id     string
}

// loadOnlineKey reads the key at p, making it on first start. Two replicas starting
// together race with put-if-absent: the loser reads the winner's key, so every
// replica signs with the key the root names.
func loadOnlineKey(ctx context.Context, d driver.Driver, p string) (*onlineKey, error) {
	data, _, err := d.GetContent(ctx, p)
	if errors.Is(err, driver.ErrNotFound) {
		priv, gerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if gerr != nil {
			return nil, gerr
		}
		der, gerr := x509.MarshalPKCS8PrivateKey(priv)
		if gerr != nil {
			return nil, gerr
		}
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		_, err = d.PutContentIf(ctx, p, pemBytes, driver.Condition{IfAbsent: true})
		switch {
		case err == nil:
			data = pemBytes
		case errors.Is(err, driver.ErrPreconditionFailed):
			data, _, err = d.GetContent(ctx, p)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading the online key %s: %w", p, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("the online key %s is not a PKCS#8 PEM private key", p)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the online key %s: %w", p, err)
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the online key %s is not an ECDSA P-256 key", p)
	}
	return newOnlineKey(priv)
}

func newOnlineKey(priv *ecdsa.PrivateKey) (*onlineKey, error) {
	signer, err := signature.LoadSigner(priv, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	key, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	id, err := key.ID()
	if err != nil {
		return nil, err
	}
	return &onlineKey{signer: signer, key: key, id: id}, nil
}

// signWith replaces md's signatures with one by k and returns md's bytes.
// ClearSignatures first: go-tuf's Sign appends.
func signWith[T metadata.Roles](md *metadata.Metadata[T], k *onlineKey) ([]byte, error) {
	md.ClearSignatures()
	if _, err := md.Sign(k.signer); err != nil {
		return nil, err
	}
	return md.ToBytes(false)
}
