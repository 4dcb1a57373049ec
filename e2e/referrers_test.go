package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// attachedResult is one artifact of trustctl verify --output json's
// "referrers".
type attachedResult struct {
	Digest       string   `json:"digest"`
	ArtifactType string   `json:"artifactType"`
	FoundBy      []string `json:"foundBy"`
	Format       string   `json:"format"`
	Verified     bool     `json:"verified"`
	Reason       string   `json:"reason"`
	Target       string   `json:"target"`
	Signatures   []struct {
		Key           string `json:"key"`
		KeyID         string `json:"keyID"`
		Delegated     bool   `json:"delegated"`
		PredicateType string `json:"predicateType"`
		Verified      bool   `json:"verified"`
		Reason        string `json:"reason"`
	} `json:"signatures"`
}

// verifyReferrers runs trustctl verify --output json on ref, which must
// verify, and returns the artifacts it lists.
func (st *stack) verifyReferrers(t *testing.T, ref string) []attachedResult {
	t.Helper()
	code, out := st.trustctlCode(t, nil, "verify", st.Addr+"/"+ref, "--output", "json")
	if code != 0 {
		t.Fatalf("trustctl verify %s exited %d, want 0 (an attached artifact never changes the image's verdict):\n%s", ref, code, out)
	}
	var res struct {
		verifyResult
		Referrers      []attachedResult `json:"referrers"`
		ReferrersError string           `json:"referrersError"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("trustctl verify --output json printed %q: %v", out, err)
	}
	if !res.Verified || res.ReferrersError != "" {
		t.Fatalf("verify %s: %+v", ref, res)
	}
	return res.Referrers
}

// TestVerifyListsSignaturesAndAttestations drives the built trustctl verify
// against trustctl up, with signatures written by trustctl and by the real
// cosign and an SBOM attached by the real oras: every artifact is listed with
// its format, the key that signed it by its name in the key store, and its own
// verdict, while the image's verdict (the exit code) stays the target's.
// acme/forged is an open repository, where the registry admits anything: the
// listing must then sort out what the trust graph vouches for by itself.
func TestVerifyListsSignaturesAndAttestations(t *testing.T) {
	t.Parallel()
	st := startStack(t, "--open", "acme/forged", "--open", "acme/attested")
	for _, k := range []string{"alice", "bob", "mallory"} {
		st.trustctl(t, "keys", "generate", k)
	}
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice", "--key", "bob")
	st.trustctl(t, "org", "delegate", "acme/forged", "--key", "alice")
	st.trustctl(t, "org", "delegate", "acme/attested", "--key", "alice", "--key", "bob")

	t.Run("signatures by two delegated keys in an enforced repository, by name", func(t *testing.T) {
		t.Parallel()
		img := newImage(t, "listed-app", newLayer(t, "app.bin", 4<<10))
		st.pushLayout(t, "acme/app:v1", "alice", img)
		st.trustctl(t, "sign", st.Addr+"/acme/app:v1", "--key", "bob", "--digest", img.ManifestDigest)
		refs := st.verifyReferrers(t, "acme/app:v1")
		if len(refs) != 1 {
			t.Fatalf("listed %d artifacts, want the one .sig: %+v", len(refs), refs)
		}
		a := refs[0]
		if a.Format != "cosign" || !a.Verified || len(a.Signatures) != 2 || !strings.HasSuffix(a.FoundBy[0], ".sig") {
			t.Fatalf("%+v, want a verified cosign .sig with two signatures", a)
		}
		for i, want := range []string{"alice", "bob"} {
			if s := a.Signatures[i]; s.Key != want || !s.Verified || !s.Delegated || len(s.KeyID) != 64 {
				t.Errorf("signature %d: %+v, want %s's, verified", i, s, want)
			}
		}
		out := st.trustctl(t, "verify", st.Addr+"/acme/app:v1")
		if !strings.Contains(out, "FORMAT") || !regexp.MustCompile(`\(\.sig\)\s+cosign\s+bob\s+-\s+yes`).MatchString(out) {
			t.Errorf("the table lists no signature by bob:\n%s", out)
		}
	})

	t.Run("a forged signature and an unsigned SBOM beside a good signature", func(t *testing.T) {
		t.Parallel()
		img := newImage(t, "listed-forged", newLayer(t, "forged.bin", 4<<10))
		st.pushLayout(t, "acme/forged:v1", "alice", img)
		ref := st.Addr + "/acme/forged@" + img.ManifestDigest
		// mallory, whose key is in the store but not delegated, and a key
		// that cosign made, unknown here, co-sign with the real cosign.
		cosign := newTool(t, "cosign", "DOCKER_CONFIG="+st.Home, "COSIGN_PASSWORD="+e2ePassphrase, "COSIGN_YES=true")
		cosign.run(t, "sign", "--key", filepath.Join(st.Home, "keys", "mallory.key"), "--tlog-upload=false", "--allow-insecure-registry", ref)
		other := newTool(t, "cosign", "DOCKER_CONFIG="+st.Home, "COSIGN_PASSWORD="+cosignPassword, "COSIGN_YES=true")
		other.run(t, "generate-key-pair")
		other.run(t, "sign", "--key", filepath.Join(other.dir, "cosign.key"), "--tlog-upload=false", "--allow-insecure-registry", ref)
		// oras attaches an SBOM with no target through the referrers API.
		sbom := filepath.Join(t.TempDir(), "sbom.spdx.json")
		os.WriteFile(sbom, []byte(`{"spdxVersion":"SPDX-2.3"}`), 0o644)
		oras := newTool(t, "oras", "DOCKER_CONFIG="+st.Home)
		oras.dir = filepath.Dir(sbom)
		oras.run(t, "attach", "--plain-http", "--distribution-spec", "v1.1-referrers-api",
			"--artifact-type", "application/spdx+json", ref, "sbom.spdx.json:application/spdx+json")

		refs := st.verifyReferrers(t, "acme/forged:v1")
		if len(refs) != 2 {
			t.Fatalf("listed %d artifacts, want the .sig and the SBOM: %+v", len(refs), refs)
		}
		var sig, unsigned attachedResult
		for _, a := range refs {
			if a.Format == "cosign" {
				sig = a
			} else {
				unsigned = a
			}
		}
		if sig.Verified || len(sig.Signatures) != 3 {
			t.Fatalf("the .sig: %+v, want three signatures, not verifying as a whole", sig)
		}
		alice, mallory, stranger := sig.Signatures[0], sig.Signatures[1], sig.Signatures[2]
		if alice.Key != "alice" || !alice.Verified || !alice.Delegated {
			t.Errorf("alice's signature: %+v, want verified", alice)
		}
		if mallory.Key != "mallory" || mallory.Verified || mallory.Delegated || !strings.Contains(mallory.Reason, "mallory, a key not delegated for acme/forged") {
			t.Errorf("mallory's signature: %+v, want named, not delegated, not verified", mallory)
		}
		if stranger.Key != "" || stranger.Verified || !strings.Contains(stranger.Reason, "does not verify") {
			t.Errorf("the unknown key's signature: %+v, want no key, not verified", stranger)
		}
		if unsigned.Format != "" || unsigned.Verified || unsigned.ArtifactType != "application/spdx+json" ||
			unsigned.FoundBy[0] != "referrers" || !strings.Contains(unsigned.Reason, "no target") {
			t.Errorf("the SBOM: %+v, want unsigned, found by the referrers API, not verified for want of a target", unsigned)
		}
		out := st.trustctl(t, "verify", st.Addr+"/acme/forged:v1")
		if !strings.Contains(out, "no: signed by mallory") || !strings.Contains(out, "unsigned application/spdx+json") {
			t.Errorf("the table does not show mallory's signature and the SBOM as not verifying:\n%s", out)
		}
	})

	t.Run("three attestations by cosign attest --key, each with its predicate type", func(t *testing.T) {
		t.Parallel()
		img := newImage(t, "listed-attested", newLayer(t, "attested.bin", 4<<10))
		st.pushLayout(t, "acme/attested:v1", "alice", img)
		ref := st.Addr + "/acme/attested@" + img.ManifestDigest
		cosign := newTool(t, "cosign", "DOCKER_CONFIG="+st.Home, "COSIGN_PASSWORD="+e2ePassphrase, "COSIGN_YES=true")
		predicates := map[string]string{
			"slsa.json":   `{"buildDefinition":{"buildType":"https://example.com/build/v1","externalParameters":{}},"runDetails":{"builder":{"id":"https://example.com/builder"}}}`,
			"spdx.json":   `{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"app","dataLicense":"CC0-1.0"}`,
			"custom.json": `{"reviewed":true}`,
		}
		for name, body := range predicates {
			os.WriteFile(filepath.Join(cosign.dir, name), []byte(body), 0o644)
		}
		attest := func(key, typ, predicate string) {
			t.Helper()
			cosign.run(t, "attest", "--key", filepath.Join(st.Home, "keys", key+".key"), "--tlog-upload=false", "--allow-insecure-registry",
				"--type", typ, "--predicate", filepath.Join(cosign.dir, predicate), ref)
		}
		attest("alice", "slsaprovenance1", "slsa.json")
		attest("bob", "spdxjson", "spdx.json")
		attest("alice", "https://example.com/review/v1", "custom.json")
		refs := st.verifyReferrers(t, "acme/attested:v1")
		var att attachedResult
		for _, a := range refs {
			if len(a.FoundBy) > 0 && strings.HasSuffix(a.FoundBy[0], ".att") {
				att = a
			}
		}
		if len(refs) != 2 || att.Format != "cosign-attestation" || !att.Verified || len(att.Signatures) != 3 {
			t.Fatalf("listed %+v, want the .sig and a verified .att of three attestations", refs)
		}
		want := [][2]string{
			{"alice", "https://slsa.dev/provenance/v1"},
			{"bob", "https://spdx.dev/Document"},
			{"alice", "https://example.com/review/v1"},
		}
		for i, w := range want {
			if s := att.Signatures[i]; s.Key != w[0] || s.PredicateType != w[1] || !s.Verified || !s.Delegated {
				t.Errorf("attestation %d: %+v, want %s's %s, verified", i, s, w[0], w[1])
			}
		}
		// An attestation by mallory, appended by cosign: listed with the
		// predicate type it claims, not verifying; the .att as a whole then
		// does not verify, and the image still does.
		attest("mallory", "https://example.com/review/v1", "custom.json")
		for _, a := range st.verifyReferrers(t, "acme/attested:v1") {
			if a.Format != "cosign-attestation" {
				continue
			}
			if a.Verified || len(a.Signatures) != 4 {
				t.Fatalf("the .att: %+v, want four attestations, not verifying as a whole", a)
			}
			if s := a.Signatures[3]; s.Key != "mallory" || s.Verified || s.Delegated || s.PredicateType != "https://example.com/review/v1" || !strings.Contains(s.Reason, "not delegated") {
				t.Errorf("mallory's attestation: %+v, want named, not delegated, not verified", s)
			}
		}
		out := st.trustctl(t, "verify", st.Addr+"/acme/attested:v1")
		if !regexp.MustCompile(`\(\.att\)\s+cosign-attestation\s+bob\s+https://spdx.dev/Document\s+yes`).MatchString(out) {
			t.Errorf("the table does not list bob's SPDX attestation:\n%s", out)
		}
	})

	t.Run("a cosign v3 Sigstore bundle, found by the referrers API in an enforced repository", func(t *testing.T) {
		t.Parallel()
		img := newImage(t, "listed-bundle", newLayer(t, "bundle.bin", 4<<10))
		st.pushLayout(t, "acme/app:bundled", "alice", img)
		cosign3 := newTool(t, "cosign3", "DOCKER_CONFIG="+st.Home, "COSIGN_PASSWORD="+e2ePassphrase, "COSIGN_YES=true")
		cosign3.run(t, append(append([]string{"sign", "--key", filepath.Join(st.Home, "keys", "bob.key")}, cosign3Offline...),
			st.Addr+"/acme/app@"+img.ManifestDigest)...)
		refs := st.verifyReferrers(t, "acme/app:bundled")
		var bundle attachedResult
		for _, a := range refs {
			if a.Format == "sigstore-bundle" {
				bundle = a
			}
		}
		if !bundle.Verified || len(bundle.Signatures) != 1 || !slices.Contains(bundle.FoundBy, "referrers") {
			t.Fatalf("listed %+v, want a verified Sigstore bundle found by the referrers API", refs)
		}
		if s := bundle.Signatures[0]; s.Key != "bob" || !s.Verified || !s.Delegated {
			t.Errorf("the bundle's signature: %+v, want bob's, verified", s)
		}
	})
}
