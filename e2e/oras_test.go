package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOras pushes and pulls an artifact with oras, attaches an SBOM to an image as a
// referrer and discovers it through the referrers API.
func TestOras(t *testing.T) {
	t.Parallel()
	runOras(t, startRegistry(t))
}

// runOras is TestOras's sequence against a started registry.
func runOras(t *testing.T, reg *registry) {
	oras := newTool(t, "oras")
	rc := newRegClient(reg.Addr)
	repo := reg.Addr + "/e2e/oras"
	const artifactType = "application/vnd.signet.e2e.bundle"
	const sbomType = "application/spdx+json"

	files := map[string][]byte{
		"notes.txt":  []byte("signet e2e artifact\n"),
		"random.bin": randomBytes(300 << 10),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(oras.dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sbom := []byte(`{"spdxVersion":"SPDX-2.3","name":"e2e","packages":[{"name":"random.bin"}]}`)
	if err := os.WriteFile(filepath.Join(oras.dir, "sbom.spdx.json"), sbom, 0o644); err != nil {
		t.Fatal(err)
	}
	img := newImage(t, "oras-subject", newLayer(t, "app/bin", 64<<10))
	var artifactDigest, sbomDigest string

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"push files with an artifact type", func(t *testing.T) {
			out := oras.run(t, "push", "--plain-http", "--artifact-type", artifactType, "--format", "json",
				repo+":bundle", "notes.txt:text/plain", "random.bin")
			var desc descriptor
			if err := json.Unmarshal([]byte(out), &desc); err != nil || desc.Digest == "" {
				t.Fatalf("oras push --format json: %v\n%s", err, out)
			}
			artifactDigest = desc.Digest
		}},
		{"manifest fetch returns the artifact manifest with its type", func(t *testing.T) {
			raw := oras.run(t, "manifest", "fetch", "--plain-http", repo+":bundle")
			if got := sha256Digest([]byte(raw)); got != artifactDigest {
				t.Fatalf("fetched manifest hashes to %s, oras push reported %s", got, artifactDigest)
			}
			var m manifest
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				t.Fatal(err)
			}
			if m.ArtifactType != artifactType || len(m.Layers) != 2 {
				t.Fatalf("manifest artifactType %q with %d layers, want %q with 2:\n%s", m.ArtifactType, len(m.Layers), artifactType, raw)
			}
			body, hdr, err := rc.getManifest("e2e/oras", artifactDigest)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != raw || hdr.Get("Content-Type") != mediaTypeOCIManifest {
				t.Fatalf("GET by digest: Content-Type %q, body equal %v", hdr.Get("Content-Type"), string(body) == raw)
			}
		}},
		{"pull writes files equal to those pushed", func(t *testing.T) {
			out := t.TempDir()
			oras.run(t, "pull", "--plain-http", "-o", out, repo+":bundle")
			for name, want := range files {
				got, err := os.ReadFile(filepath.Join(out, name))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("pulled %s differs from the pushed file (%d vs %d bytes)", name, len(got), len(want))
				}
			}
		}},
		{"attach an SBOM to an image through the referrers API", func(t *testing.T) {
			if err := rc.pushImage("e2e/oras", "app", img, uploadPostPut); err != nil {
				t.Fatal(err)
			}
			out := oras.run(t, "attach", "--plain-http", "--distribution-spec", "v1.1-referrers-api",
				"--artifact-type", sbomType, "--format", "json",
				repo+":app", "sbom.spdx.json:"+sbomType)
			var desc descriptor
			if err := json.Unmarshal([]byte(out), &desc); err != nil || desc.Digest == "" {
				t.Fatalf("oras attach --format json: %v\n%s", err, out)
			}
			sbomDigest = desc.Digest
			body, _, err := rc.getManifest("e2e/oras", sbomDigest)
			if err != nil {
				t.Fatal(err)
			}
			var m manifest
			json.Unmarshal(body, &m)
			if m.Subject == nil || m.Subject.Digest != img.ManifestDigest {
				t.Fatalf("the SBOM manifest's subject is %+v, want %s:\n%s", m.Subject, img.ManifestDigest, body)
			}
		}},
		{"discover lists the SBOM with its artifact type", func(t *testing.T) {
			out := oras.run(t, "discover", "--plain-http", "--distribution-spec", "v1.1-referrers-api",
				"--format", "json", repo+":app")
			var tree struct {
				Digest    string       `json:"digest"`
				Referrers []descriptor `json:"referrers"`
			}
			if err := json.Unmarshal([]byte(out), &tree); err != nil {
				t.Fatalf("oras discover --format json: %v\n%s", err, out)
			}
			if tree.Digest != img.ManifestDigest {
				t.Errorf("oras discover root %s, want the image %s", tree.Digest, img.ManifestDigest)
			}
			refs := tree.Referrers
			if len(refs) != 1 || refs[0].Digest != sbomDigest || refs[0].ArtifactType != sbomType {
				t.Fatalf("oras discover found %+v, want exactly %s with artifactType %s\n%s", refs, sbomDigest, sbomType, out)
			}
		}},
		{"the referrers API lists the SBOM and filters by artifact type", func(t *testing.T) {
			cases := []struct {
				query    string
				want     int
				filtered bool
			}{
				{"", 1, false},
				{"?artifactType=" + url.QueryEscape(sbomType), 1, true},
				{"?artifactType=" + url.QueryEscape("application/vnd.example.none"), 0, true},
			}
			for _, c := range cases {
				req := rc.newRequest("GET", "/v2/e2e/oras/referrers/"+img.ManifestDigest+c.query, nil)
				resp, body, err := rc.do(req, http.StatusOK)
				if err != nil {
					t.Fatal(err)
				}
				var idx index
				if err := json.Unmarshal(body, &idx); err != nil {
					t.Fatalf("referrers%s: %v\n%s", c.query, err, body)
				}
				if len(idx.Manifests) != c.want || (c.want == 1 && (idx.Manifests[0].Digest != sbomDigest || idx.Manifests[0].ArtifactType != sbomType)) {
					t.Errorf("referrers%s: %+v, want %d entries (%s, %s)", c.query, idx.Manifests, c.want, sbomDigest, sbomType)
				}
				if c.filtered && !strings.Contains(resp.Header.Get("OCI-Filters-Applied"), "artifactType") {
					t.Errorf("referrers%s: OCI-Filters-Applied %q, want artifactType", c.query, resp.Header.Get("OCI-Filters-Applied"))
				}
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.FailNow()
		}
	}
}
