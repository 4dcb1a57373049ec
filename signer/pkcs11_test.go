//go:build cgo

package signer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/internal/cosigntest"
	"github.com/signet-oss/signet/internal/softhsmtest"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

// withObject adds object=label to a URI naming a token.
func withObject(uri, label string) string {
	return strings.Replace(uri, "?", ";object="+label+"?", 1)
}

// TestTokenKeys drives keys in a real PKCS#11 token (SoftHSM2): generated in
// it and imported from it, they sign TUF metadata, cosign artifacts and DSSE
// envelopes; the store keeps no private material or PIN; the token will not
// reveal the key; a wrong PIN fails once, clearly, without the PIN in the
// message, and the right one works after it.
func TestTokenKeys(t *testing.T) {
	ctx := context.Background()
	hsm := softhsmtest.New(t)
	t.Setenv("SOFTHSM2_CONF", hsm.Conf)
	const pin = "4711-token-pin"
	uri := hsm.InitToken(t, "signet", pin)
	t.Setenv(signer.PKCS11PINEnv, pin)
	t.Cleanup(func() { signer.CloseTokens() })
	dir := filepath.Join(t.TempDir(), "keys")
	// No passphrase source: a token key never asks for one.
	ks := signer.NewFastFileKeyStore(dir, nil).(signer.TokenKeyStore)

	info, err := ks.GenerateInToken(ctx, "release", uri+"&pin-value="+pin, "")
	if err != nil {
		t.Fatal(err)
	}
	if info.Algorithm != string(signer.ECDSAP256) || !strings.HasPrefix(info.PKCS11, "pkcs11:token=signet;object=release;id=") {
		t.Fatalf("generated %+v, want an ECDSA P-256 key named by a URI with its object and id", info)
	}
	t.Run("the store keeps the URI without the PIN and the public key, nothing private", func(t *testing.T) {
		checkTokenEntry(t, ks, dir, info, pin)
	})

	key, err := ks.Load(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the token key signs TUF metadata, a cosign artifact and a DSSE envelope that verify", func(t *testing.T) {
		checkSigns(t, key)
	})
	t.Run("the token refuses to reveal the private key", func(t *testing.T) {
		v, err := signer.TokenPrivateValue(key)
		if err == nil {
			t.Fatalf("the token gave out CKA_VALUE (%d bytes)", len(v))
		}
		if !strings.Contains(err.Error(), "CKR_ATTRIBUTE_SENSITIVE") {
			t.Errorf("reading CKA_VALUE failed with %v, want CKR_ATTRIBUTE_SENSITIVE", err)
		}
	})
	t.Run("importing the key by its label names the same key", func(t *testing.T) {
		imp, err := ks.ImportFromToken(ctx, "release-again", withObject(uri, "release"))
		if err != nil {
			t.Fatal(err)
		}
		if imp.ID != info.ID || imp.PKCS11 != info.PKCS11 {
			t.Errorf("imported %+v, want the key of %+v", imp, info)
		}
		if _, err := ks.ImportFromToken(ctx, "nothing", withObject(uri, "no-such-key")); !errors.Is(err, signer.ErrKeyNotFound) {
			t.Errorf("importing a label the token lacks: %v, want ErrKeyNotFound", err)
		}
	})
	t.Run("a taken name, a taken label and Ed25519 are refused", func(t *testing.T) {
		if _, err := ks.GenerateInToken(ctx, "release", uri, ""); !errors.Is(err, signer.ErrKeyExists) {
			t.Errorf("a second release: %v, want ErrKeyExists", err)
		}
		if _, err := ks.GenerateInToken(ctx, "other", withObject(uri, "release"), ""); err == nil || !strings.Contains(err.Error(), "already holds") {
			t.Errorf("a second key labelled release: %v, want a refusal", err)
		}
		if _, err := ks.GenerateInToken(ctx, "edwards", uri, signer.Ed25519); !errors.Is(err, signer.ErrUnsupportedAlgorithm) {
			t.Errorf("an Ed25519 token key: %v, want ErrUnsupportedAlgorithm", err)
		}
	})
	t.Run("an RSA 3072 key in the token signs with PSS", func(t *testing.T) {
		rsaInfo, err := ks.GenerateInToken(ctx, "rsa", uri, signer.RSAPSS3072)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ks.Load(ctx, rsaInfo.Name)
		if err != nil {
			t.Fatal(err)
		}
		checkSigns(t, k)
	})
	t.Run("a wrong PIN fails once, clearly, without the PIN; the right one works after it", func(t *testing.T) {
		signer.CloseTokens()
		const wrong = "9999-wrong-pin"
		t.Setenv(signer.PKCS11PINEnv, wrong)
		_, err := ks.Load(ctx, "release")
		if !errors.Is(err, signer.ErrWrongPIN) {
			t.Fatalf("Load with a wrong PIN: %v, want ErrWrongPIN", err)
		}
		if strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), `token "signet"`) {
			t.Errorf("the error quotes the PIN or names no token: %v", err)
		}
		t.Setenv(signer.PKCS11PINEnv, pin)
		if _, err := ks.Load(ctx, "release"); err != nil {
			t.Fatalf("the right PIN after one wrong one: %v", err)
		}
	})
}

// checkSigns signs with k each way Signet signs and verifies each signature
// with k's public key alone.
func checkSigns(t *testing.T, k *signer.Key) {
	t.Helper()
	expires := time.Now().Add(time.Hour)
	root := metadata.Root(expires)
	if err := root.Signed.AddKey(k.TUF, metadata.TARGETS); err != nil {
		t.Fatal(err)
	}
	targets := metadata.Targets(expires)
	if err := signer.SignMetadata(targets, true, k); err != nil {
		t.Fatal(err)
	}
	if err := root.VerifyDelegate(metadata.TARGETS, targets); err != nil {
		t.Errorf("TUF: %v", err)
	}
	a, err := signer.SignCosign(cosigntest.Ref, cosigntest.Digest, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify.CosignArtifact(context.Background(), a.Manifest, cosigntest.Blobs{}.Add(a).Get, verify.NewKeys(k.TUF), "acme/app", cosigntest.Digest); err != nil {
		t.Errorf("cosign: %v", err)
	}
	raw, err := signer.SignDSSE(k.Signer, "application/vnd.in-toto+json", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var env dsse.Envelope
	if err := json.Unmarshal(raw, &env); err != nil || len(env.Signatures) != 1 {
		t.Fatalf("DSSE envelope %s: %v", raw, err)
	}
	sig, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	check, err := signer.SchemeVerifier(k.Signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	if !check(dsse.PAE("application/vnd.in-toto+json", []byte(`{}`)), sig) {
		t.Error("DSSE: the signature does not verify")
	}
}

// checkTokenEntry checks that the store's directory holds only the token key's
// entry and public key, with no PIN and nothing private, and that List shows it.
func checkTokenEntry(t *testing.T, ks signer.KeyStore, dir string, info *signer.KeyInfo, pin string) {
	t.Helper()
	ctx := context.Background()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), pin) || strings.Contains(string(b), "PRIVATE") || strings.Contains(string(b), "pin-value") {
			t.Errorf("%s holds a PIN or private material:\n%s", e.Name(), b)
		}
	}
	if strings.Join(names, " ") != "release.pkcs11 release.pub" {
		t.Errorf("key directory holds %v, want release.pkcs11 release.pub", names)
	}
	list, err := ks.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != info.ID || list[0].PKCS11 != info.PKCS11 {
		t.Errorf("List = %+v, %v; want the token key with its URI", list, err)
	}
}
