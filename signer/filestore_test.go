package signer_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"golang.org/x/term"

	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/signer/keystoretest"
)

func fixed(p string) func(bool) ([]byte, error) {
	return func(bool) ([]byte, error) { return []byte(p), nil }
}

// The suite runs on the fast variant of the file store (AES-GCM instead of scrypt,
// see export_test.go); TestFileKeyStoreFiles covers the real format.
func TestFileKeyStore(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) keystoretest.Open {
		dir := filepath.Join(t.TempDir(), "keys")
		return func(pass func(bool) ([]byte, error)) signer.KeyStore {
			return signer.NewFastFileKeyStore(dir, pass)
		}
	})
}

func TestFileKeyStoreFiles(t *testing.T) {
	ctx := context.Background()
	t.Parallel()
	cases := []struct {
		name string
		run  func(t *testing.T, dir string)
	}{
		{"keys are files 0600 in a directory 0700 and no temporary file is left", func(t *testing.T, dir string) {
			ks := signer.NewFastFileKeyStore(dir, fixed(keystoretest.Passphrase))
			if _, err := ks.Generate(ctx, "alice", ""); err != nil {
				t.Fatal(err)
			}
			if _, err := ks.Generate(ctx, "dev-root", ""); err != nil {
				t.Fatal(err)
			}
			checkMode(t, dir, 0o700)
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
				checkMode(t, filepath.Join(dir, e.Name()), 0o600)
			}
			want := "alice.key alice.pub dev-root.json dev-root.key dev-root.pub"
			if got := strings.Join(names, " "); got != want {
				t.Errorf("files %q, want %q", got, want)
			}
		}},
		{"an existing key directory open to others is restricted to its owner", func(t *testing.T, dir string) {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if _, err := signer.NewFastFileKeyStore(dir, fixed(keystoretest.Passphrase)).Generate(ctx, "bob", ""); err != nil {
				t.Fatal(err)
			}
			checkMode(t, dir, 0o700)
		}},
		{"sigstore's own loader reads the key file with the passphrase, as cosign does", func(t *testing.T, dir string) {
			ks := signer.NewFileKeyStore(dir, fixed(keystoretest.Passphrase))
			info, err := ks.Generate(ctx, "cosign-ready", "")
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "cosign-ready.key"))
			if err != nil {
				t.Fatal(err)
			}
			if block, _ := pem.Decode(b); block == nil || block.Type != "ENCRYPTED SIGSTORE PRIVATE KEY" {
				t.Fatalf("the key file is not an ENCRYPTED SIGSTORE PRIVATE KEY PEM:\n%s", b)
			}
			priv, err := cryptoutils.UnmarshalPEMToPrivateKey(b, cryptoutils.StaticPasswordFunc([]byte(keystoretest.Passphrase)))
			if err != nil {
				t.Fatalf("sigstore cannot read the key: %v", err)
			}
			pub, err := cryptoutils.UnmarshalPEMToPublicKey(info.PublicPEM)
			if err != nil {
				t.Fatal(err)
			}
			if err := cryptoutils.EqualKeys(priv.(*ecdsa.PrivateKey).Public(), pub); err != nil {
				t.Errorf("sigstore's key is not the exported public key: %v", err)
			}
			_, err = signer.NewFileKeyStore(dir, fixed("wrong")).Load(ctx, "cosign-ready")
			if !errors.Is(err, signer.ErrWrongPassphrase) {
				t.Errorf("Load with a wrong passphrase = %v, want ErrWrongPassphrase", err)
			}
		}},
		{"a development key is encrypted with the empty passphrase cosign accepts", func(t *testing.T, dir string) {
			ks := signer.NewFileKeyStore(dir, nil)
			if _, err := ks.Generate(ctx, "dev-targets", ""); err != nil {
				t.Fatal(err)
			}
			// Load reads it with sigstore's loader and the empty passphrase, as
			// COSIGN_PASSWORD= cosign would.
			if _, err := ks.Load(ctx, "dev-targets"); err != nil {
				t.Fatalf("the development key does not load with the empty passphrase: %v", err)
			}
			side, err := os.ReadFile(filepath.Join(dir, "dev-targets.json"))
			if err != nil || strings.TrimSpace(string(side)) != `{"development":true}` {
				t.Errorf("sidecar = %q, %v; want {\"development\":true}", side, err)
			}
		}},
		{"a public key file that does not match the private key stops Load", func(t *testing.T, dir string) {
			ks := signer.NewFastFileKeyStore(dir, fixed(keystoretest.Passphrase))
			for _, n := range []string{"one", "two"} {
				if _, err := ks.Generate(ctx, n, ""); err != nil {
					t.Fatal(err)
				}
			}
			other, err := os.ReadFile(filepath.Join(dir, "two.pub"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "one.pub"), other, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := ks.Load(ctx, "one"); err == nil || !strings.Contains(err.Error(), "does not match") {
				t.Errorf("Load = %v, want a mismatch error", err)
			}
		}},
		{"a key file that is not encrypted is refused", func(t *testing.T, dir string) {
			ks := signer.NewFastFileKeyStore(dir, fixed(keystoretest.Passphrase))
			if _, err := ks.Generate(ctx, "plain", ""); err != nil {
				t.Fatal(err)
			}
			key, err := ks.Load(ctx, "plain")
			if err != nil {
				t.Fatal(err)
			}
			clear, err := cryptoutils.MarshalPrivateKeyToPEM(key.Signer)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "plain.key"), clear, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := ks.Load(ctx, "plain"); err == nil || !strings.Contains(err.Error(), "ENCRYPTED SIGSTORE PRIVATE KEY") {
				t.Errorf("Load = %v, want a refusal naming the format", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, filepath.Join(t.TempDir(), "keys"))
		})
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %o, want %o", filepath.Base(path), got, want)
	}
}

func TestPassphrase(t *testing.T) {
	t.Run("SIGNET_PASSPHRASE answers, even when empty", func(t *testing.T) {
		for _, v := range []string{"s3cret", ""} {
			t.Setenv(signer.PassphraseEnv, v)
			p, err := signer.Passphrase(true)
			if err != nil || string(p) != v || p == nil {
				t.Errorf("Passphrase with %s=%q = %q, %v", signer.PassphraseEnv, v, p, err)
			}
		}
	})
	t.Run("without it and without a terminal the error says to set it", func(t *testing.T) {
		if term.IsTerminal(int(os.Stdin.Fd())) {
			t.Skip("stdin is a terminal")
		}
		t.Setenv(signer.PassphraseEnv, "")
		os.Unsetenv(signer.PassphraseEnv)
		if _, err := signer.Passphrase(false); err == nil || !strings.Contains(err.Error(), signer.PassphraseEnv) {
			t.Errorf("Passphrase = %v, want an error naming %s", err, signer.PassphraseEnv)
		}
	})
}
