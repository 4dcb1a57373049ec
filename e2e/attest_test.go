package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

// slsaPredicate is the SLSA provenance v1 predicate the attestation tests attest.
const slsaPredicate = `{"buildDefinition":{"buildType":"https://example.com/build/v1","externalParameters":{"source":"git+https://example.com/acme/app@refs/heads/main"}},"runDetails":{"builder":{"id":"https://example.com/builder"}}}`

// The predicate types cosign writes for `--type slsaprovenance1`, and for a
// cosign v3 signature.
const (
	slsaProvenanceV1 = "https://slsa.dev/provenance/v1"
	cosignSignV1     = "https://sigstore.dev/cosign/sign/v1"
)

// cosignKeys is a key pair cosign generate-key-pair made, with the predicate
// file, in one directory both cosign versions read.
type cosignKeys struct {
	dir, key, pub, predicate string
	tuf                      *metadata.Key
}

// newCosignKeys has cosign v2 make a key pair, and writes the SLSA predicate
// beside it.
func newCosignKeys(t *testing.T) *cosignKeys {
	t.Helper()
	c := newTool(t, "cosign", "COSIGN_PASSWORD="+cosignPassword)
	c.run(t, "generate-key-pair")
	k := &cosignKeys{dir: c.dir, key: filepath.Join(c.dir, "cosign.key"), pub: filepath.Join(c.dir, "cosign.pub"), predicate: filepath.Join(c.dir, "slsa.json")}
	if err := os.WriteFile(k.predicate, []byte(slsaPredicate), 0o644); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	if k.tuf, err = metadata.KeyFromPublicKey(pub); err != nil {
		t.Fatal(err)
	}
	return k
}

// cosignClients are cosign v2 and v3, with flags for a registry on plain HTTP
// and without Sigstore's public services: v2 signs without a Rekor upload and
// verifies ignoring the log; v3 also ignores Sigstore's signing config.
type cosignClients struct{ v2, v3 *tool }

func newCosignClients(t *testing.T, env ...string) cosignClients {
	env = append(env, "COSIGN_PASSWORD="+cosignPassword, "COSIGN_YES=true")
	return cosignClients{v2: newTool(t, "cosign", env...), v3: newTool(t, "cosign3", env...)}
}

func (c cosignClients) attestV2(k *cosignKeys, ref string) (string, error) {
	return c.v2.try("attest", "--key", k.key, "--type", "slsaprovenance1", "--predicate", k.predicate, "--tlog-upload=false", "--allow-insecure-registry", ref)
}

func (c cosignClients) verifyAttestationV2(k *cosignKeys, ref string) (string, error) {
	return c.v2.try("verify-attestation", "--key", k.pub, "--type", "slsaprovenance1", "--insecure-ignore-tlog", "--allow-insecure-registry", ref)
}

var cosign3Offline = []string{"--use-signing-config=false", "--tlog-upload=false", "--allow-insecure-registry"}

func (c cosignClients) signV3(k *cosignKeys, ref string) (string, error) {
	return c.v3.try(append(append([]string{"sign", "--key", k.key}, cosign3Offline...), ref)...)
}

func (c cosignClients) attestV3(k *cosignKeys, ref string) (string, error) {
	return c.v3.try(append(append([]string{"attest", "--key", k.key, "--type", "slsaprovenance1", "--predicate", k.predicate}, cosign3Offline...), ref)...)
}

func (c cosignClients) verifyV3(k *cosignKeys, ref string) (string, error) {
	return c.v3.try("verify", "--key", k.pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", ref)
}

func (c cosignClients) verifyAttestationV3(k *cosignKeys, ref string) (string, error) {
	return c.v3.try("verify-attestation", "--key", k.pub, "--type", "slsaprovenance1", "--insecure-ignore-tlog=true", "--allow-insecure-registry", ref)
}

// storedArtifact reads manifest ref of repo back from the registry, with its
// blobs read from there too, as the gate reads them.
func storedArtifact(t *testing.T, rc *regClient, repo, ref string) verify.Artifact {
	t.Helper()
	m, h, err := rc.getManifest(repo, ref)
	if err != nil {
		t.Fatal(err)
	}
	return verify.Artifact{MediaType: h.Get("Content-Type"), Manifest: m, Blob: func(d digest.Digest) ([]byte, error) { return rc.getBlob(repo, d.String()) }}
}

// referrers lists the manifests the registry's referrers API gives for
// subject, by artifact type.
func referrers(t *testing.T, rc *regClient, repo string, subject digest.Digest) map[string][]digest.Digest {
	t.Helper()
	_, body, err := rc.do(rc.newRequest("GET", "/v2/"+repo+"/referrers/"+subject.String(), nil), http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Manifests []struct {
			Digest       digest.Digest `json:"digest"`
			ArtifactType string        `json:"artifactType"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatal(err)
	}
	out := map[string][]digest.Digest{}
	for _, m := range idx.Manifests {
		out[m.ArtifactType] = append(out[m.ArtifactType], m.Digest)
	}
	return out
}

// edited returns a's manifest decoded, edited by edit and encoded again.
func edited(t *testing.T, a verify.Artifact, edit func(m map[string]any)) verify.Artifact {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	a.Manifest = b
	return a
}

// withCosignConfig sets a cosign artifact's config to the one cosign derives
// from its (edited) layers, so an edit is checked for what it changed.
func withCosignConfig(t *testing.T, m map[string]any) {
	t.Helper()
	var layers []json.RawMessage
	for _, l := range m["layers"].([]any) {
		b, _ := json.Marshal(l)
		layers = append(layers, b)
	}
	config, err := signer.CosignConfig(layers)
	if err != nil {
		t.Fatal(err)
	}
	c := m["config"].(map[string]any)
	c["digest"], c["size"] = digest.FromBytes(config).String(), len(config)
}

// mustRefuse checks CheckReferrer refuses a for subject in repo with keys,
// saying want.
func mustRefuse(t *testing.T, a verify.Artifact, keys verify.Keys, repo string, subject digest.Digest, want string) {
	t.Helper()
	r, err := verify.CheckReferrer(context.Background(), a, keys, repo, subject)
	if err == nil {
		err = r.Verified()
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("CheckReferrer = %v, want a refusal saying %q", err, want)
	}
}

// mustAdmit checks CheckReferrer admits a for subject in repo with keys, in
// format, each signature by key with the predicate types given, in order.
func mustAdmit(t *testing.T, a verify.Artifact, keys verify.Keys, repo string, subject digest.Digest, format verify.Format, key *metadata.Key, predicateTypes ...string) {
	t.Helper()
	r, err := verify.CheckReferrer(context.Background(), a, keys, repo, subject)
	if err != nil || r.Verified() != nil {
		t.Fatalf("CheckReferrer: %v, %v", err, r.Verified())
	}
	if r.Format != format || len(r.Signatures) != len(predicateTypes) {
		t.Fatalf("a %s referrer with %d signatures, want a %s one with %d", r.Format, len(r.Signatures), format, len(predicateTypes))
	}
	id, _ := key.ID()
	for i, s := range r.Signatures {
		if s.KeyID != id || s.PredicateType != predicateTypes[i] {
			t.Errorf("signature %d by %s of %q, want by %s of %q", i, s.KeyID, s.PredicateType, id, predicateTypes[i])
		}
	}
}

// TestAttest has the real cosign v2 and v3 attach attestations and Sigstore
// bundles to images of an open repository, verify them with cosign itself, and
// checks what the registry stored with Signet's check (verify.CheckReferrer)
// against a TUF key made from the same public key: admitted with that key,
// refused with another, for another image, and in each forged variant.
func TestAttest(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	rc := newRegClient(reg.Addr)
	alice := newCosignKeys(t)
	aliceKeys := verify.NewKeys(alice.tuf)
	mallory, err := signer.NewKey("mallory", "")
	if err != nil {
		t.Fatal(err)
	}
	// pushImage pushes a fresh image to repo:label, and returns its digest
	// and its config, a blob in repo that no one signed.
	pushImage := func(t *testing.T, repo, label string) (digest.Digest, descriptor) {
		t.Helper()
		im := newImage(t, label, newLayer(t, label+".txt", 256))
		if err := rc.pushImage(repo, label, im, uploadMonolithicPost); err != nil {
			t.Fatal(err)
		}
		return digest.Digest(im.ManifestDigest), descriptor{MediaType: mediaTypeOCIConfig, Digest: im.ConfigDigest, Size: int64(len(im.Config))}
	}

	t.Run("cosign v2 attest --key of a SLSA provenance", func(t *testing.T) {
		t.Parallel()
		const repo = "acme/attested"
		c := newCosignClients(t)
		subject, unsigned := pushImage(t, repo, "attested")
		other, _ := pushImage(t, repo, "other")
		for _, d := range []digest.Digest{subject, other} {
			if _, err := c.attestV2(alice, reg.Addr+"/"+repo+"@"+d.String()); err != nil {
				t.Fatal(err)
			}
		}
		out, err := c.verifyAttestationV2(alice, reg.Addr+"/"+repo+"@"+subject.String())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, `"payloadType":"application/vnd.in-toto+json"`) {
			t.Errorf("cosign verify-attestation printed no envelope:\n%s", out)
		}
		att := storedArtifact(t, rc, repo, strings.TrimSuffix(signer.CosignSignatureTag(subject), ".sig")+".att")
		otherAtt := storedArtifact(t, rc, repo, strings.TrimSuffix(signer.CosignSignatureTag(other), ".sig")+".att")

		mustAdmit(t, att, aliceKeys, repo, subject, verify.FormatCosignAttestation, alice.tuf, slsaProvenanceV1)
		mustAdmit(t, att, aliceKeys, reg.Addr+"/"+repo, subject, verify.FormatCosignAttestation, alice.tuf, slsaProvenanceV1)
		mustRefuse(t, att, verify.NewKeys(mallory.TUF), repo, subject, "does not verify with any of the 1 keys")
		mustRefuse(t, att, aliceKeys, repo, other, "not "+other.String())
		mustRefuse(t, att, aliceKeys, "acme/elsewhere", subject, "not acme/elsewhere")

		otherLayer := func() map[string]any {
			var m map[string]any
			json.Unmarshal(otherAtt.Manifest, &m)
			return m["layers"].([]any)[0].(map[string]any)
		}
		// The other image's envelope, which alice signed, placed as this one's.
		mustRefuse(t, edited(t, att, func(m map[string]any) {
			m["layers"] = []any{otherLayer()}
			withCosignConfig(t, m)
		}), aliceKeys, repo, subject, "not "+subject.String())
		// ... or beside this one's.
		mustRefuse(t, edited(t, att, func(m map[string]any) {
			m["layers"] = append(m["layers"].([]any), otherLayer())
			withCosignConfig(t, m)
		}), aliceKeys, repo, subject, "signature 1") // the layer that does not verify
		// An extra layer naming a blob no one signed (the image's config).
		mustRefuse(t, edited(t, att, func(m map[string]any) {
			m["layers"] = append(m["layers"].([]any), map[string]any{"mediaType": verify.DSSEEnvelopeMediaType, "size": unsigned.Size, "digest": unsigned.Digest,
				"annotations": map[string]any{signer.CosignSignatureAnnotation: "", verify.PredicateTypeAnnotation: slsaProvenanceV1}})
			withCosignConfig(t, m)
		}), aliceKeys, repo, subject, `the envelope has a field "architecture"`)
		// The same layers, with a config of the pusher's choosing.
		mustRefuse(t, edited(t, att, func(m map[string]any) {
			m["config"].(map[string]any)["digest"], m["config"].(map[string]any)["size"] = unsigned.Digest, unsigned.Size
		}), aliceKeys, repo, subject, "not the one cosign derives")
		// A subject field, as a referrer of another image.
		mustRefuse(t, edited(t, att, func(m map[string]any) {
			m["subject"] = map[string]any{"mediaType": mediaTypeOCIManifest, "size": 2, "digest": other.String()}
		}), aliceKeys, repo, subject, `field "subject"`)
	})

	t.Run("cosign v3 signs and attests with Sigstore bundles", func(t *testing.T) {
		t.Parallel()
		const repo = "acme/bundled"
		c := newCosignClients(t)
		subject, unsigned := pushImage(t, repo, "bundled")
		other, _ := pushImage(t, repo, "other")
		for _, d := range []digest.Digest{subject, other} {
			ref := reg.Addr + "/" + repo + "@" + d.String()
			if _, err := c.signV3(alice, ref); err != nil {
				t.Fatal(err)
			}
			if _, err := c.attestV3(alice, ref); err != nil {
				t.Fatal(err)
			}
		}
		ref := reg.Addr + "/" + repo + "@" + subject.String()
		if _, err := c.verifyV3(alice, ref); err != nil {
			t.Fatal(err)
		}
		if _, err := c.verifyAttestationV3(alice, ref); err != nil {
			t.Fatal(err)
		}

		// bundles reads the two bundle referrers of d: the signature's and the
		// attestation's, told apart by predicate type.
		bundles := func(d digest.Digest) (sig, att verify.Artifact) {
			t.Helper()
			found := referrers(t, rc, repo, d)[verify.SigstoreBundleMediaType]
			if len(found) != 2 {
				t.Fatalf("%d bundle referrers of %s, want 2: %v", len(found), d, found)
			}
			for _, m := range found {
				a := storedArtifact(t, rc, repo, m.String())
				if strings.Contains(string(a.Manifest), cosignSignV1) {
					sig = a
				} else {
					att = a
				}
			}
			return sig, att
		}
		sig, att := bundles(subject)
		otherSig, _ := bundles(other)

		mustAdmit(t, sig, aliceKeys, repo, subject, verify.FormatSigstoreBundle, alice.tuf, cosignSignV1)
		mustAdmit(t, att, aliceKeys, repo, subject, verify.FormatSigstoreBundle, alice.tuf, slsaProvenanceV1)
		// A signature bundle binds only the digest: the same key delegated
		// for another repository would admit it there too (documented).
		mustAdmit(t, sig, aliceKeys, "acme/elsewhere", subject, verify.FormatSigstoreBundle, alice.tuf, cosignSignV1)
		mustRefuse(t, att, aliceKeys, "acme/elsewhere", subject, "not acme/elsewhere")
		for _, a := range []verify.Artifact{sig, att} {
			mustRefuse(t, a, verify.NewKeys(mallory.TUF), repo, subject, "does not verify with any of the 1 keys")
			mustRefuse(t, a, aliceKeys, repo, other, "subject is "+subject.String())
		}

		otherLayer := func() any {
			var m map[string]any
			json.Unmarshal(otherSig.Manifest, &m)
			return m["layers"].([]any)[0]
		}
		// The other image's bundle, which alice signed, placed as this one's.
		mustRefuse(t, edited(t, sig, func(m map[string]any) { m["layers"] = []any{otherLayer()} }), aliceKeys, repo, subject, "does not verify")
		// ... or beside it: an extra layer, and so an extra blob.
		mustRefuse(t, edited(t, sig, func(m map[string]any) { m["layers"] = append(m["layers"].([]any), otherLayer()) }), aliceKeys, repo, subject, "2 layers")
		// A swapped subject: this image's bundle as a referrer of the other.
		mustRefuse(t, edited(t, sig, func(m map[string]any) { m["subject"].(map[string]any)["digest"] = other.String() }), aliceKeys, repo, other, "does not verify")
		// A config that is a blob of the pusher's choosing.
		mustRefuse(t, edited(t, sig, func(m map[string]any) {
			m["config"].(map[string]any)["digest"], m["config"].(map[string]any)["size"] = unsigned.Digest, unsigned.Size
		}), aliceKeys, repo, subject, "not the OCI empty config")
	})
}

// TestAttestGate has the real cosign v2 and v3 attach attestations and
// Sigstore bundles to a signed image in an enforced repository, through
// `trustctl up`: with alice's key, delegated for acme/app, the registry admits
// them and cosign verifies them there; with an undelegated key it refuses
// them, and cosign still finds only alice's.
func TestAttestGate(t *testing.T) {
	t.Parallel()
	st := startStack(t)
	alice, mallory := newCosignKeys(t), newCosignKeys(t)
	if code, out := st.trustctlCode(t, []string{"COSIGN_PASSWORD=" + cosignPassword}, "keys", "import", "alice", "--cosign", alice.key); code != 0 {
		t.Fatalf("trustctl keys import alice --cosign exited %d:\n%s", code, out)
	}
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")
	// One image for each cosign: cosign v2's verify-attestation, finding
	// bundles among an image's referrers, would ask for Sigstore's trusted root.
	pushSigned := func(tag string) string {
		img := newImage(t, "attest-gate-"+tag, newLayer(t, tag+".bin", 4<<10))
		st.trustctl(t, "push", writeLayout(t, img), st.Addr+"/acme/app:"+tag, "--key", "alice")
		return st.Addr + "/acme/app@" + img.ManifestDigest
	}
	refV2, refV3 := pushSigned("v2"), pushSigned("v3")
	c := newCosignClients(t, "DOCKER_CONFIG="+st.Home)
	mustBeDenied := func(t *testing.T, out string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("the registry admitted it:\n%s", out)
		}
		if !strings.Contains(err.Error(), "DENIED") {
			t.Errorf("cosign failed, but not with the registry's DENIED: %v", err)
		}
	}

	t.Run("cosign v2: alice's attestation is admitted and verifies, an undelegated key's is DENIED", func(t *testing.T) {
		t.Parallel()
		if _, err := c.attestV2(alice, refV2); err != nil {
			t.Fatal(err)
		}
		if _, err := c.verifyAttestationV2(alice, refV2); err != nil {
			t.Fatal(err)
		}
		out, err := c.attestV2(mallory, refV2)
		mustBeDenied(t, out, err)
		if _, err := c.verifyAttestationV2(alice, refV2); err != nil {
			t.Fatalf("alice's attestation after the refusal: %v", err)
		}
		if out, err := c.verifyAttestationV2(mallory, refV2); err == nil {
			t.Errorf("cosign verified an attestation by the undelegated key:\n%s", out)
		}
	})

	t.Run("cosign v3: alice's bundles are admitted and verify, an undelegated key's are DENIED", func(t *testing.T) {
		t.Parallel()
		for _, step := range []func(*cosignKeys, string) (string, error){c.signV3, c.attestV3} {
			if _, err := step(alice, refV3); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.verifyV3(alice, refV3); err != nil {
			t.Fatal(err)
		}
		if _, err := c.verifyAttestationV3(alice, refV3); err != nil {
			t.Fatal(err)
		}
		for _, step := range []func(*cosignKeys, string) (string, error){c.signV3, c.attestV3} {
			out, err := step(mallory, refV3)
			mustBeDenied(t, out, err)
		}
		if out, err := c.verifyV3(mallory, refV3); err == nil {
			t.Errorf("cosign verified a bundle by the undelegated key:\n%s", out)
		}
	})

	t.Run("oras: an unsigned SBOM is DENIED without a target of its own, admitted with one", func(t *testing.T) {
		t.Parallel()
		img := newImage(t, "attest-gate-sbom", newLayer(t, "sbom.bin", 4<<10))
		st.trustctl(t, "push", writeLayout(t, img), st.Addr+"/acme/app:sbom", "--key", "alice")
		oras := newTool(t, "oras", "DOCKER_CONFIG="+st.Home)
		if err := os.WriteFile(filepath.Join(oras.dir, "sbom.spdx.json"), []byte(`{"spdxVersion":"SPDX-2.3","name":"attest-gate"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		// A fixed creation time: the same attach makes the same manifest.
		attach := func(target string, extra ...string) (string, error) {
			args := append([]string{"attach", "--artifact-type", "application/spdx+json",
				"--annotation", "org.opencontainers.image.created=2026-01-01T00:00:00Z"}, extra...)
			return oras.try(append(args, target, "sbom.spdx.json:application/spdx+json")...)
		}
		registryAttach := func() (string, error) {
			return attach(st.Addr+"/acme/app@"+img.ManifestDigest, "--plain-http", "--distribution-spec", "v1.1-referrers-api")
		}
		out, err := registryAttach()
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "denied") {
			t.Fatalf("oras attach of an SBOM without a target: %v, want the registry's denial\n%s", err, out)
		}

		// The publisher makes the same SBOM in a layout, signs it as a target
		// of acme/app, and attaches it again.
		layout := filepath.Join(oras.dir, "layout")
		writeOCILayout(t, layout, "", img)
		// The subject as the registry describes it: no layout annotations.
		writeIndex := func(dir string, d descriptor) {
			t.Helper()
			b, _ := json.Marshal(index{SchemaVersion: 2, MediaType: mediaTypeOCIIndex, Manifests: []descriptor{d}})
			if err := os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		writeIndex(layout, descriptor{MediaType: mediaTypeOCIManifest, Digest: img.ManifestDigest, Size: int64(len(img.Manifest))})
		if out, err := attach(layout+"@"+img.ManifestDigest, "--oci-layout", "--export-manifest", "sbom.manifest.json"); err != nil {
			t.Fatalf("oras attach into a layout: %v\n%s", err, out)
		}
		m, err := os.ReadFile(filepath.Join(oras.dir, "sbom.manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		sbomDigest := digest.FromBytes(m)
		only := filepath.Join(oras.dir, "only-sbom")
		if err := os.CopyFS(only, os.DirFS(layout)); err != nil {
			t.Fatal(err)
		}
		writeIndex(only, descriptor{MediaType: mediaTypeOCIManifest, Digest: sbomDigest.String(), Size: int64(len(m))})
		if out, err := st.tryTrustctl("sign", st.Addr+"/acme/app:sbom-spdx", "--key", "alice", "--layout", only); err != nil {
			t.Fatalf("trustctl sign of the SBOM: %v\n%s", err, out)
		}
		if out, err := registryAttach(); err != nil {
			t.Fatalf("oras attach of the SBOM with a target: %v\n%s", err, out)
		}
		out, err = oras.try("discover", "--plain-http", "--distribution-spec", "v1.1-referrers-api", "--format", "json", st.Addr+"/acme/app@"+img.ManifestDigest)
		if err != nil || !strings.Contains(out, sbomDigest.String()) {
			t.Errorf("oras discover does not find the admitted SBOM %s: %v\n%s", sbomDigest, err, out)
		}
	})
}
