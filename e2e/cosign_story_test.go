package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

// cosignPassword encrypts the keys cosign generate-key-pair writes in these tests.
const cosignPassword = "cosign-test-password-not-secret"

// TestCosignStory checks cosign interop through an enforcing `trustctl up`
// (DESIGN.md §3): the real cosign verifies what trustctl push, copy and sign
// sign, with a Signet key and with a key cosign made; the gate refuses a
// signature artifact by an undelegated key, or naming another repository, and
// stores nothing of it.
func TestCosignStory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := startStack(t, "--trust-refresh", "1s")
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "keys", "generate", "bob")
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice", "--key", "bob")
	st.trustctl(t, "org", "delegate", "acme/copied", "--key", "alice")
	st.trustctl(t, "org", "delegate", "acme/moved", "--key", "alice")
	admin := st.admin()
	cosign := newTool(t, "cosign", "DOCKER_CONFIG="+st.Home, "COSIGN_PASSWORD="+cosignPassword, "COSIGN_YES=true")
	alicePub, bobPub := st.exportKey(t, "alice", cosign.dir), st.exportKey(t, "bob", cosign.dir)
	cosignVerify := func(t *testing.T, pub, ref string) (string, error) {
		t.Helper()
		return cosign.try("verify", "--key", pub, "--insecure-ignore-tlog", "--offline", "--allow-insecure-registry", st.Addr+"/"+ref)
	}
	mustVerify := func(t *testing.T, pub, ref string, d string) {
		t.Helper()
		out, err := cosignVerify(t, pub, ref)
		if err != nil {
			t.Fatalf("cosign verify --key %s %s: %v", filepath.Base(pub), ref, err)
		}
		if !strings.Contains(out, d) {
			t.Errorf("cosign verify %s printed no payload naming %s:\n%s", ref, d, out)
		}
	}
	signatureLayers := func(t *testing.T, repo, d string) int {
		t.Helper()
		raw, _, err := admin.getManifest(repo, signer.CosignSignatureTag(digest.Digest(d)))
		if err != nil {
			t.Fatal(err)
		}
		var m manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return len(m.Layers)
	}

	v1 := newImage(t, "cosign-story-v1", newLayer(t, "app/v1.bin", 32<<10))
	t.Run("cosign verifies an image trustctl pushed, with the key trustctl keys export prints", func(t *testing.T) {
		out := st.trustctl(t, "push", writeLayout(t, v1), st.Addr+"/acme/app:v1", "--key", "alice")
		if tag := signer.CosignSignatureTag(digest.Digest(v1.ManifestDigest)); !strings.Contains(out, "Wrote the cosign signature "+tag) {
			t.Fatalf("trustctl push did not say it wrote %s:\n%s", tag, out)
		}
		mustVerify(t, alicePub, "acme/app:v1", v1.ManifestDigest)
		if out, err := cosignVerify(t, bobPub, "acme/app:v1"); err == nil {
			t.Fatalf("cosign verified alice's signature with bob's key:\n%s", out)
		} else {
			mustMeanNoMatch(t, err)
		}
	})

	t.Run("trustctl sign co-signs the artifact of a pushed manifest, and says push writes it for one not pushed", func(t *testing.T) {
		out := st.trustctl(t, "sign", st.Addr+"/acme/app:stable", "--key", "bob", "--digest", v1.ManifestDigest)
		if !strings.Contains(out, "Wrote the cosign signature") {
			t.Fatalf("trustctl sign --digest did not write the cosign signature:\n%s", out)
		}
		if n := signatureLayers(t, "acme/app", v1.ManifestDigest); n != 2 {
			t.Fatalf("the signature artifact has %d signatures after bob co-signed, want 2", n)
		}
		// By digest: the new tag resolves once the registry refreshes.
		mustVerify(t, alicePub, "acme/app@"+v1.ManifestDigest, v1.ManifestDigest)
		mustVerify(t, bobPub, "acme/app@"+v1.ManifestDigest, v1.ManifestDigest)
		// Signing again with a key that signed already adds nothing.
		st.trustctl(t, "sign", st.Addr+"/acme/app:stable", "--key", "bob", "--digest", v1.ManifestDigest)
		if n := signatureLayers(t, "acme/app", v1.ManifestDigest); n != 2 {
			t.Errorf("the signature artifact has %d signatures after bob signed twice, want 2", n)
		}

		v2 := newImage(t, "cosign-story-v2", newLayer(t, "app/v2.bin", 8<<10))
		layout := writeLayout(t, v2)
		out = st.trustctl(t, "sign", st.Addr+"/acme/app:v2", "--key", "alice", "--layout", layout)
		if !strings.Contains(out, "is not in the registry yet") || !strings.Contains(out, "trustctl push") {
			t.Errorf("trustctl sign --layout of a manifest not pushed: want a note that trustctl push writes the signature, got:\n%s", out)
		}
		sig := "/v2/acme/app/manifests/" + signer.CosignSignatureTag(digest.Digest(v2.ManifestDigest))
		if _, _, err := admin.do(admin.newRequest("GET", sig, nil), http.StatusNotFound); err != nil {
			t.Errorf("a signature was written for a manifest not in the registry: %v", err)
		}
		st.trustctl(t, "push", layout, st.Addr+"/acme/app:v2", "--key", "alice")
		mustVerify(t, alicePub, "acme/app:v2", v2.ManifestDigest)
	})

	t.Run("an artifact by an undelegated key, or naming another repository, is DENIED and nothing is stored", func(t *testing.T) {
		subject := digest.Digest(v1.ManifestDigest)
		tag := signer.CosignSignatureTag(subject)
		admitted := manifestDigest(t, admin, "acme/app", tag)
		ks := signer.NewFileKeyStore(filepath.Join(st.Home, "keys"), func(bool) ([]byte, error) { return []byte(e2ePassphrase), nil })
		alice, err := ks.Load(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		mallory, err := signer.NewKey("mallory", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name, ref string
			key       *signer.Key
			want      string
		}{
			{"signed by a key not delegated for acme/app", st.Addr + "/acme/app", mallory, "does not verify with a key delegated for acme/app"},
			{"signed by alice for acme/other", st.Addr + "/acme/other", alice, `the payload names \"` + st.Addr + `/acme/other\", not acme/app`},
		} {
			t.Run(c.name, func(t *testing.T) {
				art, err := signer.SignCosign(c.ref, subject, c.key, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := verify.CosignArtifact(ctx, art.Manifest, func(d digest.Digest) ([]byte, error) { return art.Blobs[d], nil },
					verify.NewKeys(c.key.TUF), strings.TrimPrefix(c.ref, st.Addr+"/"), subject); err != nil {
					t.Fatalf("the artifact is not well formed for %s: %v", c.ref, err)
				}
				if err := pushBlobsOf(admin, "acme/app", art.Blobs); err != nil {
					t.Fatal(err)
				}
				putDenied(t, admin, "acme/app", tag, art.Manifest, c.want)
				if _, _, err := admin.do(admin.newRequest("GET", "/v2/acme/app/manifests/"+art.Digest.String(), nil), http.StatusNotFound); err != nil {
					t.Errorf("the refused artifact is served by digest: %v", err)
				}
				if _, err := os.Stat(filepath.Join(st.registryData(), "repos", "acme", "app", "_manifests", "sha256", art.Digest.Encoded())); !os.IsNotExist(err) {
					t.Errorf("the refused artifact %s is in storage (%v)", art.Digest, err)
				}
				if got := manifestDigest(t, admin, "acme/app", tag); got != admitted {
					t.Errorf("%s now resolves to %s, want the admitted %s", tag, got, admitted)
				}
			})
		}
		mustVerify(t, alicePub, "acme/app:v1", v1.ManifestDigest)
	})

	t.Run("a key made by cosign, imported and delegated, signs a push that trustctl verify and cosign verify accept", func(t *testing.T) {
		cosign.run(t, "generate-key-pair")
		env := []string{"COSIGN_PASSWORD=" + cosignPassword}
		if code, out := st.trustctlCode(t, env, "keys", "import", "carol", "--cosign", filepath.Join(cosign.dir, "cosign.key")); code != 0 {
			t.Fatalf("trustctl keys import carol --cosign exited %d:\n%s", code, out)
		}
		st.trustctl(t, "org", "delegate", "acme/app2", "--key", "carol")
		img := newImage(t, "cosign-story-carol", newLayer(t, "app2/bin", 16<<10))
		st.trustctl(t, "push", writeLayout(t, img), st.Addr+"/acme/app2:v1", "--key", "carol")
		if res := st.verifyJSON(t, nil, "acme/app2:v1", 0); res.Digest != img.ManifestDigest {
			t.Errorf("trustctl verify: %s, want %s", res.Digest, img.ManifestDigest)
		}
		mustVerify(t, filepath.Join(cosign.dir, "cosign.pub"), "acme/app2:v1", img.ManifestDigest)
	})

	t.Run("trustctl copy from an open registry into the enforcing stack verifies", func(t *testing.T) {
		plain := startRegistry(t)
		img := newImage(t, "cosign-story-upstream", newLayer(t, "up/a.bin", 24<<10), newLayer(t, "up/b.bin", 4<<10))
		if err := newRegClient(plain.Addr).pushImage("library/app", "v1", img, uploadMonolithicPost); err != nil {
			t.Fatal(err)
		}
		out := st.trustctl(t, "copy", plain.Addr+"/library/app:v1", st.Addr+"/acme/copied:v1", "--key", "alice")
		if !strings.Contains(out, "Pushed "+st.Addr+"/acme/copied:v1") {
			t.Fatalf("trustctl copy said:\n%s", out)
		}
		if res := st.verifyJSON(t, nil, "acme/copied:v1", 0); res.Digest != img.ManifestDigest {
			t.Errorf("trustctl verify: %s, want %s", res.Digest, img.ManifestDigest)
		}
		mustVerify(t, alicePub, "acme/copied:v1", img.ManifestDigest)
	})

	t.Run("after a key is revoked, a push replaces the artifact whose signature no longer verifies", func(t *testing.T) {
		img := newImage(t, "cosign-story-moved", newLayer(t, "moved/bin", 4<<10))
		layout := writeLayout(t, img)
		st.trustctl(t, "push", layout, st.Addr+"/acme/moved:v1", "--key", "alice")
		st.trustctl(t, "org", "delegate", "acme/moved", "--key", "bob")
		// Once the registry has seen the revocation (the tag stops resolving),
		// the artifact alice's push left no longer verifies with the keys
		// delegated for acme/moved, so it cannot be co-signed.
		waitUnresolved(t, admin, "acme/moved", "v1")
		code, out := st.trustctlCode(t, nil, "push", layout, st.Addr+"/acme/moved:v1", "--key", "bob")
		if code != 0 {
			t.Fatalf("trustctl push by bob after alice's key was revoked exited %d:\n%s", code, out)
		}
		mustVerify(t, bobPub, "acme/moved:v1", img.ManifestDigest)
		if n := signatureLayers(t, "acme/moved", img.ManifestDigest); n != 1 {
			t.Errorf("the signature artifact has %d signatures, want bob's alone", n)
		}
	})
}

// waitUnresolved waits until repo:tag stops resolving, as it does within a
// refresh of the registry's trust metadata once its target is gone.
func waitUnresolved(t *testing.T, rc *regClient, repo, tag string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, _, err := rc.do(rc.newRequest("GET", "/v2/"+repo+"/manifests/"+tag, nil), http.StatusNotFound, http.StatusOK)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusNotFound {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s:%s still resolves 15s after its target was removed", repo, tag)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// exportKey writes the public key trustctl keys export prints for name into
// dir and returns its path.
func (st *stack) exportKey(t *testing.T, name, dir string) string {
	t.Helper()
	p := filepath.Join(dir, name+".pub.pem")
	if err := os.WriteFile(p, []byte(st.trustctl(t, "keys", "export", name)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// pushBlobsOf uploads blobs, which any pusher may.
func pushBlobsOf(rc *regClient, repo string, blobs map[digest.Digest][]byte) error {
	for _, b := range blobs {
		if err := rc.pushBlob(repo, b, uploadMonolithicPost); err != nil {
			return err
		}
	}
	return nil
}
