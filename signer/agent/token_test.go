//go:build cgo

package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/signet-oss/signet/internal/softhsmtest"
	"github.com/signet-oss/signet/signer"
)

// An agent holding a key in a PKCS#11 token holds a logged-in session, not a
// key: it is added with the token's PIN (never retried), signs in the token,
// and locking it logs out, so adding it again needs the PIN again.
func TestAgentHoldsATokenSessionUntilLocked(t *testing.T) {
	hsm := softhsmtest.New(t)
	t.Setenv("SOFTHSM2_CONF", hsm.Conf)
	const pin = "agent-token-pin"
	uri := hsm.InitToken(t, "agent", pin)
	// The PIN comes only from what add sends.
	if v, ok := os.LookupEnv(signer.PKCS11PINEnv); ok {
		os.Unsetenv(signer.PKCS11PINEnv)
		t.Cleanup(func() { os.Setenv(signer.PKCS11PINEnv, v) })
	}
	keys := filepath.Join(t.TempDir(), "keys")
	ks := signer.NewUnlockingKeyStore(keys, []byte(pin)).(signer.TokenKeyStore)
	if _, err := ks.GenerateInToken(context.Background(), "release", uri+"&pin-value="+pin, ""); err != nil {
		t.Fatal(err)
	}
	// A new process holds no session: neither does this one from here on.
	if err := signer.CloseTokens(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { signer.CloseTokens() })

	log := &syncBuffer{}
	sock := filepath.Join(t.TempDir(), "agent", "sock")
	a, err := Listen(Config{Socket: sock, Open: func(secret []byte) signer.KeyStore { return signer.NewUnlockingKeyStore(keys, secret) },
		Log: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c := dial(t, a.Socket())

	if _, err := c.Add("release", []byte("not-the-pin")); err == nil {
		t.Fatal("the agent added a token key with a wrong PIN")
	}
	if _, err := c.Add("release", []byte(pin)); err != nil {
		t.Fatalf("adding with the right PIN after one wrong one: %v", err)
	}
	k, err := c.Key("release")
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("signed in the token"))
	sig, err := k.Signer.Sign(nil, d[:], cryptoSHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(k.Signer.Public().(*ecdsa.PublicKey), d[:], sig) {
		t.Fatal("the token's signature through the agent does not verify")
	}
	if err := c.Lock(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add("release", []byte("not-the-pin")); err == nil {
		t.Fatal("after lock, the agent added the token key with a wrong PIN: its session outlived the lock")
	}
	if _, err := c.Add("release", []byte(pin)); err != nil {
		t.Fatalf("adding again with the PIN after lock: %v", err)
	}
}
