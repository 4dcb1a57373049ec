// Package keystoretest is the behaviour every signer.KeyStore must show, as one
// suite each implementation runs from its own test:
//
//	keystoretest.Run(t, func(t *testing.T) keystoretest.Open {
//		dir := t.TempDir()
//		return func(pass func(bool) ([]byte, error)) signer.KeyStore {
//			return signer.NewFileKeyStore(dir, pass)
//		}
//	})
//
// A store is done when the suite passes. What only one implementation has (file
// permissions, say) is tested next to it.
package keystoretest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/trustnames"
)

// Open returns a handle on one key store that asks for passphrases with
// passphrase. Every Open made by one NewStore call sees the same keys: the suite
// opens a store twice to try a wrong passphrase on a key made with another.
type Open func(passphrase func(confirm bool) ([]byte, error)) signer.KeyStore

// NewStore makes a fresh, empty key store for one test case.
type NewStore func(t *testing.T) Open

// Passphrase is the passphrase the suite's keys are made with.
const Passphrase = "correct horse battery staple"

// fixed returns a passphrase function that always answers p.
func fixed(p string) func(bool) ([]byte, error) {
	return func(bool) ([]byte, error) { return []byte(p), nil }
}

// refuse is a passphrase function for calls that must not ask.
func refuse(t *testing.T) func(bool) ([]byte, error) {
	return func(bool) ([]byte, error) {
		t.Error("the passphrase was asked for, and should not have been")
		return nil, errors.New("no passphrase here")
	}
}

// Run runs the suite against the stores newStore makes: the cases that depend on
// the key type once per algorithm of signer.Algorithms(), then the rest.
func Run(t *testing.T, newStore NewStore) {
	for _, alg := range signer.Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			runAlgorithm(t, newStore, alg)
		})
	}
	runCommon(t, newStore)
}

// runAlgorithm runs the cases every algorithm must pass, with keys of alg.
func runAlgorithm(t *testing.T, newStore NewStore, alg signer.Algorithm) {
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, open Open)
	}{
		{"a generated key reads back the same through Public, List and Load", func(t *testing.T, open Open) {
			ks := open(fixed(Passphrase))
			made, err := ks.Generate(ctx, "alice", alg)
			if err != nil {
				t.Fatal(err)
			}
			checkInfo(t, made, "alice", false, alg)
			pub, err := open(refuse(t)).Public(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			list, err := open(refuse(t)).List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 {
				t.Fatalf("List = %d keys, want 1", len(list))
			}
			key, err := ks.Load(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			for what, got := range map[string]*signer.KeyInfo{"Public": pub, "List": &list[0], "Load": &key.KeyInfo} {
				if got.Name != made.Name || got.ID != made.ID || got.Algorithm != made.Algorithm ||
					string(got.PublicPEM) != string(made.PublicPEM) || got.Development != made.Development {
					t.Errorf("%s = %+v, want %+v", what, got, made)
				}
			}
			if id, _ := key.TUF.ID(); id != made.ID {
				t.Errorf("Load: TUF key ID %s, want %s", id, made.ID)
			}
		}},
		{"the passphrase is asked with confirmation to generate, without to load, and never to read public parts", func(t *testing.T, open Open) {
			var confirms, plain atomic.Int32
			ks := open(func(confirm bool) ([]byte, error) {
				if confirm {
					confirms.Add(1)
				} else {
					plain.Add(1)
				}
				return []byte(Passphrase), nil
			})
			if _, err := ks.Generate(ctx, "bob", alg); err != nil {
				t.Fatal(err)
			}
			if _, err := ks.Public(ctx, "bob"); err != nil {
				t.Fatal(err)
			}
			if _, err := ks.List(ctx); err != nil {
				t.Fatal(err)
			}
			if c, p := confirms.Load(), plain.Load(); c != 1 || p != 0 {
				t.Fatalf("after Generate, Public, List: %d confirmed and %d plain asks, want 1 and 0", c, p)
			}
			if _, err := ks.Load(ctx, "bob"); err != nil {
				t.Fatal(err)
			}
			if c, p := confirms.Load(), plain.Load(); c != 1 || p != 1 {
				t.Fatalf("after Load: %d confirmed and %d plain asks, want 1 and 1", c, p)
			}
		}},
		{"a wrong passphrase is refused with ErrWrongPassphrase naming the key", func(t *testing.T, open Open) {
			if _, err := open(fixed(Passphrase)).Generate(ctx, "carol", alg); err != nil {
				t.Fatal(err)
			}
			_, err := open(fixed("not it")).Load(ctx, "carol")
			if !errors.Is(err, signer.ErrWrongPassphrase) {
				t.Fatalf("Load with a wrong passphrase = %v, want ErrWrongPassphrase", err)
			}
			if !strings.Contains(err.Error(), `"carol"`) {
				t.Errorf("error %q does not name the key", err)
			}
		}},
		{"a failing passphrase prompt fails Generate and leaves the name free", func(t *testing.T, open Open) {
			boom := errors.New("no terminal")
			_, err := open(func(bool) ([]byte, error) { return nil, boom }).Generate(ctx, "dave", alg)
			if !errors.Is(err, boom) {
				t.Fatalf("Generate = %v, want the prompt's error", err)
			}
			if _, err := open(fixed(Passphrase)).Generate(ctx, "dave", alg); err != nil {
				t.Fatalf("Generate after a failed one: %v", err)
			}
		}},
		{"a name that exists is refused and the first key is kept", func(t *testing.T, open Open) {
			ks := open(fixed(Passphrase))
			first, err := ks.Generate(ctx, "erin", alg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := open(fixed("another")).Generate(ctx, "erin", alg); !errors.Is(err, signer.ErrKeyExists) {
				t.Fatalf("second Generate = %v, want ErrKeyExists", err)
			}
			key, err := ks.Load(ctx, "erin")
			if err != nil {
				t.Fatalf("the first key no longer loads with its passphrase: %v", err)
			}
			if key.ID != first.ID {
				t.Errorf("key ID changed from %s to %s", first.ID, key.ID)
			}
		}},
		{"a signature made with a loaded key verifies with its public key", func(t *testing.T, open Open) {
			ks := open(fixed(Passphrase))
			info, err := ks.Generate(ctx, "frank", alg)
			if err != nil {
				t.Fatal(err)
			}
			key, err := ks.Load(ctx, "frank")
			if err != nil {
				t.Fatal(err)
			}
			pub, err := cryptoutils.UnmarshalPEMToPublicKey(info.PublicPEM)
			if err != nil {
				t.Fatal(err)
			}
			if !verifies(t, alg, pub, []byte("hello"), sign(t, alg, key.Signer, []byte("hello"))) {
				t.Error("the signature does not verify with the public key")
			}
			if verifies(t, alg, pub, []byte("hellO"), sign(t, alg, key.Signer, []byte("hello"))) {
				t.Error("the signature verifies over other bytes")
			}
		}},
		{"targets signed with SignMetadata verify through go-tuf from a root that names the key", func(t *testing.T, open Open) {
			ks := open(fixed(Passphrase))
			for _, n := range []string{"targets-1", "targets-2"} {
				if _, err := ks.Generate(ctx, n, alg); err != nil {
					t.Fatal(err)
				}
			}
			k1, err := ks.Load(ctx, "targets-1")
			if err != nil {
				t.Fatal(err)
			}
			k2, err := ks.Load(ctx, "targets-2")
			if err != nil {
				t.Fatal(err)
			}
			expires := time.Now().Add(time.Hour)
			root := metadata.Root(expires)
			for _, k := range []*signer.Key{k1, k2} {
				if err := root.Signed.AddKey(k.TUF, trustnames.RoleTargets); err != nil {
					t.Fatal(err)
				}
			}
			root.Signed.Roles[trustnames.RoleTargets].Threshold = 2
			targets := metadata.Targets(expires)

			if err := signer.SignMetadata(targets, true, k1); err != nil {
				t.Fatal(err)
			}
			if err := root.VerifyDelegate(trustnames.RoleTargets, targets); err == nil {
				t.Fatal("1 of 2 signatures met a threshold of 2")
			}
			// Co-signing adds; signing again with the same key does not duplicate.
			if err := signer.SignMetadata(targets, false, k2, k1); err != nil {
				t.Fatal(err)
			}
			if len(targets.Signatures) != 2 {
				t.Fatalf("%d signatures after co-signing, want 2", len(targets.Signatures))
			}
			if err := root.VerifyDelegate(trustnames.RoleTargets, targets); err != nil {
				t.Fatalf("2 of 2 signatures: %v", err)
			}
			// The bytes go-tuf parses verify too (a duplicate key ID would be refused).
			b, err := targets.ToBytes(false)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := metadata.Targets().FromBytes(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := root.VerifyDelegate(trustnames.RoleTargets, parsed); err != nil {
				t.Fatalf("parsed: %v", err)
			}
			// Editing and re-signing with replace drops the stale signatures.
			targets.Signed.Version++
			if err := signer.SignMetadata(targets, true, k1); err != nil {
				t.Fatal(err)
			}
			if len(targets.Signatures) != 1 {
				t.Fatalf("%d signatures after replace, want 1", len(targets.Signatures))
			}
			root.Signed.Roles[trustnames.RoleTargets].Threshold = 1
			if err := root.VerifyDelegate(trustnames.RoleTargets, targets); err != nil {
				t.Fatalf("re-signed: %v", err)
			}
			targets.Signed.Version++ // tampered after signing
			if err := root.VerifyDelegate(trustnames.RoleTargets, targets); err == nil {
				t.Fatal("metadata changed after signing still verifies")
			}
		}},
		{"a key made elsewhere imports under the passphrase rules of Generate and reads back as itself", func(t *testing.T, open Open) {
			made, err := signer.NewKey("elsewhere", alg)
			if err != nil {
				t.Fatal(err)
			}
			var confirms atomic.Int32
			ks := open(func(confirm bool) ([]byte, error) {
				if confirm {
					confirms.Add(1)
				}
				return []byte(Passphrase), nil
			})
			info, err := ks.Import(ctx, "imported", made.Signer)
			if err != nil {
				t.Fatal(err)
			}
			checkInfo(t, info, "imported", false, alg)
			if info.ID != made.ID || string(info.PublicPEM) != string(made.PublicPEM) {
				t.Errorf("imported as %s, want the key's own ID %s", info.ID, made.ID)
			}
			if c := confirms.Load(); c != 1 {
				t.Errorf("the passphrase was asked with confirmation %d times, want 1", c)
			}
			key, err := ks.Load(ctx, "imported")
			if err != nil {
				t.Fatal(err)
			}
			pub, err := cryptoutils.UnmarshalPEMToPublicKey(made.PublicPEM)
			if err != nil {
				t.Fatal(err)
			}
			if !verifies(t, alg, pub, []byte("imported"), sign(t, alg, key.Signer, []byte("imported"))) {
				t.Error("the loaded key does not sign as the imported one")
			}
			if _, err := open(fixed(Passphrase)).Import(ctx, "imported", made.Signer); !errors.Is(err, signer.ErrKeyExists) {
				t.Errorf("a second Import of the name = %v, want ErrKeyExists", err)
			}
			other, err := signer.NewKey("other", alg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ks.Generate(ctx, "generated", alg); err != nil {
				t.Fatal(err)
			}
			if _, err := ks.Import(ctx, "generated", other.Signer); !errors.Is(err, signer.ErrKeyExists) {
				t.Errorf("Import over a generated key = %v, want ErrKeyExists", err)
			}
			if _, err := open(fixed("not it")).Load(ctx, "imported"); !errors.Is(err, signer.ErrWrongPassphrase) {
				t.Errorf("Load of the imported key with a wrong passphrase = %v, want ErrWrongPassphrase", err)
			}
		}},
		{"development keys need no passphrase and say so", func(t *testing.T, open Open) {
			ks := open(refuse(t))
			info, err := ks.Generate(ctx, "dev-org-acme", alg)
			if err != nil {
				t.Fatal(err)
			}
			checkInfo(t, info, "dev-org-acme", true, alg)
			if info.DevelopmentWarning() == "" {
				t.Error("a development key has no warning")
			}
			key, err := ks.Load(ctx, "dev-org-acme")
			if err != nil {
				t.Fatal(err)
			}
			if !key.Development {
				t.Error("Load: the key is not marked development")
			}
			list, err := ks.List(ctx)
			if err != nil || len(list) != 1 || !list[0].Development {
				t.Errorf("List = %+v, %v; want the key marked development", list, err)
			}
			normal, err := open(fixed(Passphrase)).Generate(ctx, "prod", alg)
			if err != nil {
				t.Fatal(err)
			}
			if normal.Development || normal.DevelopmentWarning() != "" {
				t.Error("a key made with a passphrase is marked development")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}

}

// runCommon runs the cases that do not depend on the key type.
func runCommon(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, open Open)
	}{
		{"the empty algorithm means ECDSA P-256", func(t *testing.T, open Open) {
			info, err := open(fixed(Passphrase)).Generate(ctx, "default", "")
			if err != nil {
				t.Fatal(err)
			}
			if info.Algorithm != string(signer.ECDSAP256) {
				t.Errorf("algorithm %q, want %q", info.Algorithm, signer.ECDSAP256)
			}
		}},
		{"an unknown algorithm is refused and stores nothing", func(t *testing.T, open Open) {
			ks := open(fixed(Passphrase))
			if _, err := ks.Generate(ctx, "odd", "dsa-1024"); !errors.Is(err, signer.ErrUnsupportedAlgorithm) {
				t.Fatalf("Generate(dsa-1024) = %v, want ErrUnsupportedAlgorithm", err)
			}
			if _, err := ks.Public(ctx, "odd"); !errors.Is(err, signer.ErrKeyNotFound) {
				t.Errorf("Public after a refused Generate = %v, want ErrKeyNotFound", err)
			}
		}},
		{"of two racing generates of one name exactly one wins", func(t *testing.T, open Open) {
			ks := open(fixed(Passphrase))
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() { _, errs[i] = ks.Generate(ctx, "race", "") })
			}
			wg.Wait()
			wins := 0
			for _, err := range errs {
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, signer.ErrKeyExists):
					t.Errorf("a losing Generate = %v, want ErrKeyExists", err)
				}
			}
			if wins != 1 {
				t.Fatalf("%d generates won, want 1", wins)
			}
			pub, err := ks.Public(ctx, "race")
			if err != nil {
				t.Fatal(err)
			}
			key, err := ks.Load(ctx, "race")
			if err != nil {
				t.Fatal(err)
			}
			if key.ID != pub.ID {
				t.Errorf("the public key (%s) is not the winner's private key (%s)", pub.ID, key.ID)
			}
		}},
		{"an unknown key is ErrKeyNotFound", func(t *testing.T, open Open) {
			ks := open(refuse(t))
			if _, err := ks.Load(ctx, "nobody"); !errors.Is(err, signer.ErrKeyNotFound) {
				t.Errorf("Load = %v, want ErrKeyNotFound", err)
			}
			if _, err := ks.Public(ctx, "nobody"); !errors.Is(err, signer.ErrKeyNotFound) {
				t.Errorf("Public = %v, want ErrKeyNotFound", err)
			}
		}},
		{"an empty store lists no keys and List sorts by name", func(t *testing.T, open Open) {
			ks := open(fixed(Passphrase))
			list, err := ks.List(ctx)
			if err != nil || len(list) != 0 {
				t.Fatalf("List of an empty store = %v, %v; want no keys", list, err)
			}
			for _, n := range []string{"zed", "amy", "dev-root", "mia"} {
				if _, err := ks.Generate(ctx, n, ""); err != nil {
					t.Fatal(err)
				}
			}
			list, err = ks.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, k := range list {
				names = append(names, k.Name)
			}
			if want := []string{"amy", "dev-root", "mia", "zed"}; !slices.Equal(names, want) {
				t.Errorf("List = %v, want %v", names, want)
			}
		}},
		{"a key of a type no algorithm names is refused by Import, which stores nothing", func(t *testing.T, open Open) {
			ks := open(refuse(t))
			p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			for what, priv := range map[string]crypto.Signer{"ECDSA P-384": p384, "RSA 2048": rsa2048} {
				if _, err := ks.Import(ctx, "odd", priv); !errors.Is(err, signer.ErrUnsupportedAlgorithm) {
					t.Errorf("Import(%s) = %v, want ErrUnsupportedAlgorithm", what, err)
				}
			}
			if _, err := ks.Import(ctx, "odd", nil); err == nil {
				t.Error("Import(nil) succeeded")
			}
			if _, err := ks.Public(ctx, "odd"); !errors.Is(err, signer.ErrKeyNotFound) {
				t.Errorf("Public after refused imports = %v, want ErrKeyNotFound", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}

	t.Run("invalid names are refused", func(t *testing.T) {
		t.Parallel()
		open := newStore(t)
		ks := open(refuse(t))
		key, err := signer.NewKey("k", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ why, name string }{
			{"a path that climbs out of the store", "../x"},
			{"the empty name", ""},
			{"a slash", "/"},
			{"a path with a directory", "a/b"},
			{"a dot", "."},
			{"a hidden file", ".key"},
			{"upper case, which case-insensitive file systems confuse", "Alice"},
			{"a space", "a b"},
			{"a name over 64 characters", strings.Repeat("k", 65)},
		} {
			t.Run(tc.why, func(t *testing.T) {
				if _, err := ks.Generate(ctx, tc.name, ""); !errors.Is(err, signer.ErrInvalidName) {
					t.Errorf("Generate(%q) = %v, want ErrInvalidName", tc.name, err)
				}
				if _, err := ks.Import(ctx, tc.name, key.Signer); !errors.Is(err, signer.ErrInvalidName) {
					t.Errorf("Import(%q) = %v, want ErrInvalidName", tc.name, err)
				}
				if _, err := ks.Load(ctx, tc.name); !errors.Is(err, signer.ErrInvalidName) {
					t.Errorf("Load(%q) = %v, want ErrInvalidName", tc.name, err)
				}
				if _, err := ks.Public(ctx, tc.name); !errors.Is(err, signer.ErrInvalidName) {
					t.Errorf("Public(%q) = %v, want ErrInvalidName", tc.name, err)
				}
			})
		}
	})
}

// checkInfo checks what Generate or Import returned: the name, a key of alg whose
// TUF key ID is go-tuf's for the PEM, with the scheme TUF names for alg, and the
// development mark.
func checkInfo(t *testing.T, info *signer.KeyInfo, name string, development bool, alg signer.Algorithm) {
	t.Helper()
	if info.Name != name || info.Development != development || info.Algorithm != string(alg) {
		t.Errorf("KeyInfo = %+v, want name %q, development %v, algorithm %s", info, name, development, alg)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(info.PublicPEM)
	if err != nil {
		t.Fatalf("PublicPEM: %v", err)
	}
	tk, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := tk.ID(); id != info.ID {
		t.Errorf("ID %s, want go-tuf's %s", info.ID, id)
	}
	if want := tufScheme[alg]; tk.Scheme != want {
		t.Errorf("TUF scheme %s, want %s", tk.Scheme, want)
	}
}

// tufScheme is the scheme go-tuf v2.4.2 names for each algorithm's keys.
var tufScheme = map[signer.Algorithm]string{
	signer.ECDSAP256:  metadata.KeySchemeECDSA_SHA2_P256,
	signer.Ed25519:    metadata.KeySchemeEd25519,
	signer.RSAPSS3072: metadata.KeySchemeRSASSA_PSS_SHA256,
}

// sign signs msg with priv in alg's scheme, as TUF verifies it.
func sign(t *testing.T, alg signer.Algorithm, priv crypto.Signer, msg []byte) []byte {
	t.Helper()
	d := sha256.Sum256(msg)
	var sig []byte
	var err error
	switch alg {
	case signer.ECDSAP256:
		sig, err = priv.Sign(rand.Reader, d[:], crypto.SHA256)
	case signer.Ed25519:
		sig, err = priv.Sign(rand.Reader, msg, crypto.Hash(0))
	case signer.RSAPSS3072:
		sig, err = priv.Sign(rand.Reader, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	default:
		t.Fatalf("no signing scheme for %s in the suite", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// verifies checks sig over msg with pub in alg's scheme.
func verifies(t *testing.T, alg signer.Algorithm, pub crypto.PublicKey, msg, sig []byte) bool {
	t.Helper()
	d := sha256.Sum256(msg)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return alg == signer.ECDSAP256 && ecdsa.VerifyASN1(k, d[:], sig)
	case ed25519.PublicKey:
		return alg == signer.Ed25519 && ed25519.Verify(k, msg, sig)
	case *rsa.PublicKey:
		return alg == signer.RSAPSS3072 && rsa.VerifyPSS(k, crypto.SHA256, d[:], sig, nil) == nil
	}
	t.Fatalf("a public key of type %T for %s", pub, alg)
	return false
}
