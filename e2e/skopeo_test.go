package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSkopeo copies an OCI layout to the registry and back with skopeo, and inspects
// and lists what it pushed.
func TestSkopeo(t *testing.T) {
	t.Parallel()
	runSkopeo(t, startRegistry(t))
}

// runSkopeo is TestSkopeo's sequence against a started registry.
func runSkopeo(t *testing.T, reg *registry) {
	skopeo := newTool(t, "skopeo")
	// skopeo reads a signature policy and registries.conf; give it its own.
	policy := filepath.Join(skopeo.dir, "policy.json")
	os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644)
	regConf := filepath.Join(skopeo.dir, "registries.conf")
	os.WriteFile(regConf, []byte("unqualified-search-registries = []\n"), 0o644)
	skopeo.env = append(skopeo.env, "CONTAINERS_REGISTRIES_CONF="+regConf,
		"REGISTRY_AUTH_FILE="+filepath.Join(skopeo.dir, "auth.json"))
	global := []string{"--policy", policy}

	img := newImage(t, "skopeo", newLayer(t, "s/one.bin", 128<<10), newLayer(t, "s/two.bin", 32<<10))
	layout := filepath.Join(t.TempDir(), "layout")
	writeOCILayout(t, layout, "v1", img)
	ref := "docker://" + reg.Addr + "/e2e/skopeo"

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"copy from an OCI layout to the registry keeps the manifest", func(t *testing.T) {
			skopeo.run(t, append(global, "copy", "--preserve-digests", "--dest-tls-verify=false", "oci:"+layout+":v1", ref+":v1")...)
			skopeo.run(t, append(global, "copy", "--preserve-digests", "--dest-tls-verify=false", "oci:"+layout+":v1", ref+":v2")...)
			rc := newRegClient(reg.Addr)
			body, hdr, err := rc.getManifest("e2e/skopeo", "v1")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, img.Manifest) || hdr.Get("Docker-Content-Digest") != img.ManifestDigest {
				t.Fatalf("registry serves %s (Docker-Content-Digest %s), want the layout's manifest %s",
					sha256Digest(body), hdr.Get("Docker-Content-Digest"), img.ManifestDigest)
			}
		}},
		{"inspect reports the digest and layers", func(t *testing.T) {
			out := skopeo.run(t, append(global, "inspect", "--tls-verify=false", ref+":v1")...)
			var info struct {
				Digest string
				Layers []string
			}
			if err := json.Unmarshal([]byte(out), &info); err != nil {
				t.Fatalf("skopeo inspect: %v\n%s", err, out)
			}
			want := []string{img.Layers[0].Digest, img.Layers[1].Digest}
			if info.Digest != img.ManifestDigest || !slices.Equal(info.Layers, want) {
				t.Fatalf("skopeo inspect: digest %s layers %v, want %s %v", info.Digest, info.Layers, img.ManifestDigest, want)
			}
			raw := skopeo.run(t, append(global, "inspect", "--raw", "--tls-verify=false", ref+":v1")...)
			if raw != string(img.Manifest) {
				t.Fatalf("skopeo inspect --raw:\n%s\nwant:\n%s", raw, img.Manifest)
			}
		}},
		{"list-tags lists both tags", func(t *testing.T) {
			out := skopeo.run(t, append(global, "list-tags", "--tls-verify=false", ref)...)
			var tl struct{ Tags []string }
			if err := json.Unmarshal([]byte(out), &tl); err != nil {
				t.Fatalf("skopeo list-tags: %v\n%s", err, out)
			}
			slices.Sort(tl.Tags)
			if want := []string{"v1", "v2"}; !slices.Equal(tl.Tags, want) {
				t.Fatalf("skopeo list-tags: %v, want %v", tl.Tags, want)
			}
		}},
		{"copy back to a new OCI layout returns the same blobs", func(t *testing.T) {
			back := filepath.Join(t.TempDir(), "back")
			skopeo.run(t, append(global, "copy", "--preserve-digests", "--src-tls-verify=false", ref+":v1", "oci:"+back+":v1")...)
			var idx index
			readJSON(t, filepath.Join(back, "index.json"), &idx)
			if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != img.ManifestDigest {
				t.Fatalf("copied-back index %+v, want manifest %s", idx.Manifests, img.ManifestDigest)
			}
			want := img.blobs()
			want[img.ManifestDigest] = img.Manifest
			for d, content := range want {
				got, err := os.ReadFile(filepath.Join(back, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, content) {
					t.Errorf("copied-back blob %s differs (%d vs %d bytes)", d, len(got), len(content))
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

// writeOCILayout writes img as an OCI image layout with one tagged manifest.
func writeOCILayout(t *testing.T, dir, tag string, img image) {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	all := img.blobs()
	all[img.ManifestDigest] = img.Manifest
	for d, b := range all {
		if err := os.WriteFile(filepath.Join(blobs, strings.TrimPrefix(d, "sha256:")), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx := index{SchemaVersion: 2, MediaType: mediaTypeOCIIndex, Manifests: []descriptor{{
		MediaType:   mediaTypeOCIManifest,
		Digest:      img.ManifestDigest,
		Size:        int64(len(img.Manifest)),
		Annotations: map[string]string{"org.opencontainers.image.ref.name": tag},
	}}}
	b, _ := json.Marshal(idx)
	os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}
