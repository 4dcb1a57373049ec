package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

// TestCosign has the real cosign CLI check the signature artifacts signer writes,
// on an open registry (no trust root, no auth), written by plain HTTP: what
// `cosign verify --key` accepts, and what Signet's own check refuses although
// cosign accepts it.
func TestCosign(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	rc := newRegClient(reg.Addr)
	ctx := context.Background()

	// pushImage pushes a fresh image to repo:v1 and returns its digest.
	pushImage := func(t *testing.T, repo string) digest.Digest {
		t.Helper()
		im := newImage(t, repo, newLayer(t, "hello.txt", 512))
		if err := rc.pushImage(repo, "v1", im, uploadMonolithicPost); err != nil {
			t.Fatal(err)
		}
		return digest.Digest(im.ManifestDigest)
	}
	// pushSignature writes an artifact as a publisher would: blobs, then the
	// manifest under cosign's tag.
	pushSignature := func(t *testing.T, repo string, a *signer.CosignArtifact) {
		t.Helper()
		for _, b := range a.Blobs {
			if err := rc.pushBlob(repo, b, uploadMonolithicPost); err != nil {
				t.Fatal(err)
			}
		}
		if err := rc.putManifest(repo, a.Tag, a.MediaType, a.Manifest); err != nil {
			t.Fatal(err)
		}
	}
	// signatureOf reads back what the registry serves under subject's signature tag.
	signatureOf := func(t *testing.T, repo string, subject digest.Digest) (manifest []byte, blob func(digest.Digest) ([]byte, error)) {
		t.Helper()
		m, _, err := rc.getManifest(repo, signer.CosignSignatureTag(subject))
		if err != nil {
			t.Fatal(err)
		}
		return m, func(d digest.Digest) ([]byte, error) { return rc.getBlob(repo, d.String()) }
	}
	newCosign := func(t *testing.T) *tool {
		return newTool(t, "cosign", "COSIGN_PASSWORD=cosign-test-password", "COSIGN_YES=true")
	}
	// cosignVerify runs cosign verify with the key at pubPath on repo@subject.
	cosignVerify := func(t *testing.T, cosign *tool, pubPath, repo string, subject digest.Digest) (string, error) {
		return cosign.try("verify", "--key", pubPath, "--insecure-ignore-tlog", "--offline", "--allow-insecure-registry",
			reg.Addr+"/"+repo+"@"+subject.String())
	}
	writePub := func(t *testing.T, dir string, k *signer.Key) string {
		t.Helper()
		p := filepath.Join(dir, k.Name+".pub")
		if err := os.WriteFile(p, k.PublicPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	layers := func(t *testing.T, manifest []byte) int {
		t.Helper()
		var m ocispec.Manifest
		if err := json.Unmarshal(manifest, &m); err != nil {
			t.Fatal(err)
		}
		return len(m.Layers)
	}

	for _, alg := range signer.Algorithms() {
		t.Run("a signature by a "+string(alg)+" key", func(t *testing.T) {
			t.Parallel()
			repo := "acme/signed-" + string(alg)
			subject := pushImage(t, repo)
			key, err := signer.NewKey("publisher", alg)
			if err != nil {
				t.Fatal(err)
			}
			a, err := signer.SignCosign(reg.Addr+"/"+repo, subject, key, nil)
			if err != nil {
				t.Fatal(err)
			}
			pushSignature(t, repo, a)
			m, blob := signatureOf(t, repo, subject)
			if err := verify.CosignArtifact(ctx, m, blob, verify.NewKeys(key.TUF), repo, subject); err != nil {
				t.Fatalf("Signet's check of what the registry serves: %v", err)
			}
			cosign := newCosign(t)
			out, err := cosignVerify(t, cosign, writePub(t, cosign.dir, key), repo, subject)
			if alg == signer.RSAPSS3072 {
				// cosign loads every RSA public key as PKCS#1 v1.5 and has no
				// flag for PSS: it cannot check these, only Signet can.
				if err == nil {
					t.Fatalf("cosign verified an RSA-PSS signature (update signer's docs):\n%s", out)
				}
				mustMeanNoMatch(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, subject.String()) {
				t.Errorf("cosign verify printed no payload naming %s:\n%s", subject, out)
			}
		})
	}

	t.Run("a key made by cosign generate-key-pair and imported with trustctl", func(t *testing.T) {
		t.Parallel()
		cosign := newCosign(t)
		cosign.run(t, "generate-key-pair")
		home := t.TempDir()
		tctl := &tool{path: trustctlPath(t), dir: cosign.dir, env: append(append([]string{}, cosign.env...),
			"SIGNET_HOME="+home, "SIGNET_PASSPHRASE=signet-test-passphrase")}
		tctl.run(t, "keys", "import", "from-cosign", "--cosign", filepath.Join(cosign.dir, "cosign.key"))
		ks := signer.NewFileKeyStore(filepath.Join(home, "keys"), func(bool) ([]byte, error) { return []byte("signet-test-passphrase"), nil })
		key, err := ks.Load(ctx, "from-cosign")
		if err != nil {
			t.Fatal(err)
		}
		cosignPub, err := os.ReadFile(filepath.Join(cosign.dir, "cosign.pub"))
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := cryptoutils.UnmarshalPEMToPublicKey(cosignPub); cryptoutils.EqualKeys(p, key.Signer.Public()) != nil {
			t.Fatal("the imported key is not cosign's key")
		}
		if _, err := tctl.tryInput("", "keys", "import", "other", "--cosign", filepath.Join(cosign.dir, "cosign.pub")); err == nil {
			t.Error("trustctl imported a public key file as a private key")
		}

		// Signet signs with the imported key; cosign checks with its own .pub.
		repo := "acme/imported"
		subject := pushImage(t, repo)
		a, err := signer.SignCosign(reg.Addr+"/"+repo, subject, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		pushSignature(t, repo, a)
		if _, err := cosignVerify(t, cosign, filepath.Join(cosign.dir, "cosign.pub"), repo, subject); err != nil {
			t.Fatal(err)
		}

		// And the other way: what cosign signs with the key, Signet checks, and a
		// Signet key co-signs it, which cosign checks with either key.
		other := pushImage(t, "acme/by-cosign")
		cosign.run(t, "sign", "--key", filepath.Join(cosign.dir, "cosign.key"), "--tlog-upload=false",
			reg.Addr+"/acme/by-cosign@"+other.String())
		m, blob := signatureOf(t, "acme/by-cosign", other)
		if err := verify.CosignArtifact(ctx, m, blob, verify.NewKeys(key.TUF), "acme/by-cosign", other); err != nil {
			t.Fatalf("Signet's check of cosign's own signature: %v", err)
		}
		cosigner, err := signer.NewKey("cosigner", "")
		if err != nil {
			t.Fatal(err)
		}
		both, err := signer.SignCosign(reg.Addr+"/acme/by-cosign", other, cosigner, m)
		if err != nil {
			t.Fatal(err)
		}
		pushSignature(t, "acme/by-cosign", both)
		for _, pub := range []string{filepath.Join(cosign.dir, "cosign.pub"), writePub(t, cosign.dir, cosigner)} {
			if _, err := cosignVerify(t, cosign, pub, "acme/by-cosign", other); err != nil {
				t.Fatal(err)
			}
		}
		m, blob = signatureOf(t, "acme/by-cosign", other)
		if err := verify.CosignArtifact(ctx, m, blob, verify.NewKeys(key.TUF, cosigner.TUF), "acme/by-cosign", other); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("an artifact co-signed by two keys carries two signatures that each verify", func(t *testing.T) {
		t.Parallel()
		repo := "acme/cosigned"
		subject := pushImage(t, repo)
		alice, err := signer.NewKey("alice", "")
		if err != nil {
			t.Fatal(err)
		}
		bob, err := signer.NewKey("bob", signer.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		first, err := signer.SignCosign(reg.Addr+"/"+repo, subject, alice, nil)
		if err != nil {
			t.Fatal(err)
		}
		pushSignature(t, repo, first)
		prev, _ := signatureOf(t, repo, subject)
		second, err := signer.SignCosign(reg.Addr+"/"+repo, subject, bob, prev)
		if err != nil {
			t.Fatal(err)
		}
		pushSignature(t, repo, second)
		m, blob := signatureOf(t, repo, subject)
		if n := layers(t, m); n != 2 {
			t.Fatalf("the signature manifest has %d layers, want 2", n)
		}
		if err := verify.CosignArtifact(ctx, m, blob, verify.NewKeys(alice.TUF, bob.TUF), repo, subject); err != nil {
			t.Fatal(err)
		}
		if err := verify.CosignArtifact(ctx, m, blob, verify.NewKeys(alice.TUF), repo, subject); err == nil {
			t.Error("Signet accepted a co-signed artifact with one signer's key unknown")
		}
		cosign := newCosign(t)
		for _, k := range []*signer.Key{alice, bob} {
			if _, err := cosignVerify(t, cosign, writePub(t, cosign.dir, k), repo, subject); err != nil {
				t.Errorf("cosign with %s's key: %v", k.Name, err)
			}
		}
	})

	t.Run("a signature over another digest verifies with neither cosign nor Signet", func(t *testing.T) {
		t.Parallel()
		repo := "acme/other-digest"
		subject, elsewhere := pushImage(t, repo), pushImage(t, repo+"-2")
		key, err := signer.NewKey("publisher", "")
		if err != nil {
			t.Fatal(err)
		}
		a, err := signer.SignCosign(reg.Addr+"/"+repo, elsewhere, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		a.Tag = signer.CosignSignatureTag(subject) // placed as the signature of subject
		pushSignature(t, repo, a)
		m, blob := signatureOf(t, repo, subject)
		if err := verify.CosignArtifact(ctx, m, blob, verify.NewKeys(key.TUF), repo, subject); err == nil {
			t.Error("Signet accepted a signature over another digest")
		}
		cosign := newCosign(t)
		out, err := cosignVerify(t, cosign, writePub(t, cosign.dir, key), repo, subject)
		if err == nil {
			t.Fatalf("cosign accepted a signature over another digest:\n%s", out)
		}
		mustMeanNoMatch(t, err)
		if !strings.Contains(err.Error(), "invalid or missing digest in claim") {
			t.Errorf("cosign refused it for another reason than the digest: %v", err)
		}
	})

	t.Run("a payload naming another repository passes cosign but not Signet", func(t *testing.T) {
		t.Parallel()
		repo := "acme/victim"
		subject := pushImage(t, repo)
		key, err := signer.NewKey("publisher", "")
		if err != nil {
			t.Fatal(err)
		}
		// Signed for acme/elsewhere (the same digest pushed there, say) and
		// replayed as the signature of acme/victim.
		a, err := signer.SignCosign(reg.Addr+"/acme/elsewhere", subject, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		pushSignature(t, repo, a)
		cosign := newCosign(t)
		if _, err := cosignVerify(t, cosign, writePub(t, cosign.dir, key), repo, subject); err != nil {
			t.Fatalf("cosign refused it, so it now binds the name (update DESIGN.md §3): %v", err)
		}
		m, blob := signatureOf(t, repo, subject)
		err = verify.CosignArtifact(ctx, m, blob, verify.NewKeys(key.TUF), repo, subject)
		if err == nil || !strings.Contains(err.Error(), "acme/elsewhere") {
			t.Errorf("CosignArtifact = %v, want a refusal naming acme/elsewhere", err)
		}
	})
}

// mustMeanNoMatch checks that cosign verify failed because no signature matched,
// not for a flag or a network error.
func mustMeanNoMatch(t *testing.T, err error) {
	t.Helper()
	if !strings.Contains(err.Error(), "no matching signatures") {
		t.Fatalf("cosign failed, but not for want of a matching signature: %v", err)
	}
}

// trustctlPath is the trustctl binary TestMain built.
func trustctlPath(t *testing.T) string {
	t.Helper()
	if trustctlErr != nil {
		t.Fatal(trustctlErr)
	}
	if trustctlBin == "" {
		t.Skip("trustctl is not built when testing the reference registry")
	}
	return trustctlBin
}
