package signer_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/trustnames"
)

func TestInMemoryKeys(t *testing.T) {
	t.Run("a key made in memory signs a timestamp that verifies from a root naming it", func(t *testing.T) {
		k, err := signer.NewKey("timestamp", "")
		if err != nil {
			t.Fatal(err)
		}
		if k.Algorithm != string(signer.ECDSAP256) || k.TUF.Scheme != metadata.KeySchemeECDSA_SHA2_P256 {
			t.Fatalf("key %+v / TUF scheme %s, want ECDSA P-256", k.KeyInfo, k.TUF.Scheme)
		}
		expires := time.Now().Add(time.Hour)
		root := metadata.Root(expires)
		if err := root.Signed.AddKey(k.TUF, trustnames.RoleTimestamp); err != nil {
			t.Fatal(err)
		}
		ts := metadata.Timestamp(expires)
		if err := signer.SignMetadata(ts, true, k); err != nil {
			t.Fatal(err)
		}
		if err := root.VerifyDelegate(trustnames.RoleTimestamp, ts); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("an ECDSA key on another curve than P-256 is refused", func(t *testing.T) {
		p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := signer.KeyFromSigner("p384", p384); !errors.Is(err, signer.ErrUnsupportedAlgorithm) {
			t.Fatalf("KeyFromSigner(P-384) = %v, want ErrUnsupportedAlgorithm", err)
		}
	})
	t.Run("a key without its private half cannot sign", func(t *testing.T) {
		if err := signer.SignMetadata(metadata.Targets(time.Now()), true, &signer.Key{}); err == nil {
			t.Fatal("SignMetadata with an empty key succeeded")
		}
	})
}
