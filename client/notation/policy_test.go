package notation_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-oss/signet/client/notation"
	"github.com/signet-oss/signet/signer"
)

// trusted makes a key and its certificate, as Collect returns them.
func trusted(t *testing.T, name string) notation.Trusted {
	t.Helper()
	key, err := signer.NewKey(name, "")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := notation.NewCertificate(key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return notation.Trusted{KeyID: key.ID, Certificate: cert, From: "test"}
}

type policyDoc struct {
	Version       string `json:"version"`
	TrustPolicies []struct {
		Name                  string            `json:"name"`
		RegistryScopes        []string          `json:"registryScopes"`
		SignatureVerification map[string]string `json:"signatureVerification"`
		TrustStores           []string          `json:"trustStores"`
		TrustedIdentities     []string          `json:"trustedIdentities"`
	} `json:"trustPolicies"`
}

func readPolicy(t *testing.T, dir string) policyDoc {
	t.Helper()
	b, err := os.ReadFile(notation.PolicyPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	var doc policyDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func storeFiles(t *testing.T, dir, scope string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "truststore", "x509", "ca", notation.StoreName(scope)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteTrustPolicy(t *testing.T) {
	t.Parallel()
	const scope = "127.0.0.1:5000/acme/app"
	alice, bob := trusted(t, "alice"), trusted(t, "bob")
	dir := t.TempDir()
	own := `{"version":"1.0","trustPolicies":[{"name":"mine","registryScopes":["example.com/team/tool"],"signatureVerification":{"level":"audit"},"trustStores":["ca:mine"],"trustedIdentities":["*"]}]}`
	if err := os.WriteFile(notation.PolicyPath(dir), []byte(own), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("one strict statement per repository, its store holding exactly the certificates by TUF key ID", func(t *testing.T) {
		if err := notation.WriteTrustPolicy(dir, []notation.Repository{{Scope: scope, Certificates: []notation.Trusted{alice, bob}}}); err != nil {
			t.Fatal(err)
		}
		doc := readPolicy(t, dir)
		if doc.Version != "1.0" || len(doc.TrustPolicies) != 2 || doc.TrustPolicies[0].Name != "mine" {
			t.Fatalf("policy %+v, want the user's statement kept and Signet's added", doc)
		}
		s := doc.TrustPolicies[1]
		if s.Name != "signet:"+scope || !slices.Equal(s.RegistryScopes, []string{scope}) || s.SignatureVerification["level"] != "strict" ||
			!slices.Equal(s.TrustStores, []string{"ca:" + notation.StoreName(scope)}) || !slices.Equal(s.TrustedIdentities, []string{"*"}) {
			t.Errorf("statement %+v", s)
		}
		want := slices.Sorted(slices.Values([]string{alice.KeyID + ".crt", bob.KeyID + ".crt"}))
		if got := storeFiles(t, dir, scope); !slices.Equal(got, want) {
			t.Errorf("store %v, want %v", got, want)
		}
	})
	t.Run("written again after bob is revoked, the store holds alice alone and the statement is not repeated", func(t *testing.T) {
		if err := notation.WriteTrustPolicy(dir, []notation.Repository{{Scope: scope, Certificates: []notation.Trusted{alice}}}); err != nil {
			t.Fatal(err)
		}
		if got := storeFiles(t, dir, scope); !slices.Equal(got, []string{alice.KeyID + ".crt"}) {
			t.Errorf("store %v, want alice's certificate alone", got)
		}
		if n := len(readPolicy(t, dir).TrustPolicies); n != 2 {
			t.Errorf("%d statements, want 2", n)
		}
	})
	t.Run("a repository with no certificate gets an empty store: notation then trusts nothing there", func(t *testing.T) {
		if err := notation.WriteTrustPolicy(dir, []notation.Repository{{Scope: scope}}); err != nil {
			t.Fatal(err)
		}
		if got := storeFiles(t, dir, scope); len(got) != 0 {
			t.Errorf("store %v, want empty", got)
		}
	})
	t.Run("a statement of the user's own for the same scope is an error, and nothing is written", func(t *testing.T) {
		before, _ := os.ReadFile(notation.PolicyPath(dir))
		err := notation.WriteTrustPolicy(dir, []notation.Repository{{Scope: "example.com/team/tool", Certificates: []notation.Trusted{alice}}})
		if err == nil || !strings.Contains(err.Error(), `statement "mine" already covers example.com/team/tool`) {
			t.Fatalf("err %v", err)
		}
		if after, _ := os.ReadFile(notation.PolicyPath(dir)); string(after) != string(before) {
			t.Error("the policy changed")
		}
	})
	t.Run("a scope that is not HOST/REPO is refused", func(t *testing.T) {
		for _, bad := range []string{"", "acme", "127.0.0.1:5000/acme/app@sha256:00", "*"} {
			if err := notation.WriteTrustPolicy(t.TempDir(), []notation.Repository{{Scope: bad}}); err == nil {
				t.Errorf("scope %q accepted", bad)
			}
		}
	})
}

func TestCollectTakesOnlyDelegatedSigningCertificates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	keyDir := t.TempDir()
	keys := map[string]*signer.Key{}
	var local []signer.KeyInfo
	for _, name := range []string{"alice", "mallory", "nocert"} {
		k, err := signer.NewKey(name, "")
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = k
		local = append(local, k.KeyInfo)
		if name != "nocert" {
			if _, err := notation.Certificate(ctx, keyDir, k, time.Now(), false); err != nil {
				t.Fatal(err)
			}
		}
	}
	aliceID, nocertID := keys["alice"].ID, keys["nocert"].ID
	c := &notation.Collector{KeyDir: keyDir, Local: local}
	got, missing, err := c.Collect(ctx, []string{aliceID, nocertID}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].KeyID != aliceID || got[0].From != "key store (alice)" {
		t.Errorf("trusted %+v, want alice's certificate alone (mallory's key is not delegated)", got)
	}
	if !slices.Equal(missing, []string{nocertID}) {
		t.Errorf("missing %v, want the delegated key without a certificate", missing)
	}

	t.Run("a CA certificate for a delegated key is not taken", func(t *testing.T) {
		k := keys["nocert"]
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nocert"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Signer.Public(), k.Signer)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(notation.CertificatePath(keyDir, "nocert"), pemCert(der), 0o600); err != nil {
			t.Fatal(err)
		}
		got, missing, err := c.Collect(ctx, []string{nocertID}, nil, nil)
		if err != nil || len(got) != 0 || !slices.Equal(missing, []string{nocertID}) {
			t.Errorf("a CA certificate: trusted %+v, missing %v, %v", got, missing, err)
		}
	})
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
