package e2e

import (
	"slices"
	"strings"
	"testing"
)

// TestRegctl copies an image between repositories with regctl and reads it back:
// tags, manifest, digest and blobs.
func TestRegctl(t *testing.T) {
	t.Parallel()
	runRegctl(t, startRegistry(t))
}

// runRegctl is TestRegctl's sequence against a started registry.
func runRegctl(t *testing.T, reg *registry) {
	regctl := newTool(t, "regctl")
	rc := newRegClient(reg.Addr)
	img := newImage(t, "regctl", newLayer(t, "a/one.bin", 200<<10), newLayer(t, "b/two.bin", 50<<10))
	if err := rc.pushImage("e2e/regctl-src", "v1", img, uploadChunked); err != nil {
		t.Fatal(err)
	}
	src := reg.Addr + "/e2e/regctl-src:v1"
	dstRepo := reg.Addr + "/e2e/regctl-dst"

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"registry set disables TLS for the test registry", func(t *testing.T) {
			regctl.run(t, "registry", "set", "--tls", "disabled", reg.Addr)
		}},
		{"image copy to another repository", func(t *testing.T) {
			regctl.run(t, "image", "copy", src, dstRepo+":v1")
			regctl.run(t, "image", "copy", src, dstRepo+":v1.0")
		}},
		{"tag ls lists the copied tags", func(t *testing.T) {
			got := strings.Fields(regctl.run(t, "tag", "ls", dstRepo))
			slices.Sort(got)
			if want := []string{"v1", "v1.0"}; !slices.Equal(got, want) {
				t.Fatalf("regctl tag ls: %v, want %v", got, want)
			}
		}},
		{"manifest get returns the pushed bytes", func(t *testing.T) {
			got := regctl.run(t, "manifest", "get", "--format", "raw-body", dstRepo+":v1")
			if got != string(img.Manifest) {
				t.Fatalf("regctl manifest get:\n%s\nwant:\n%s", got, img.Manifest)
			}
		}},
		{"image digest equals the pushed digest", func(t *testing.T) {
			for _, ref := range []string{src, dstRepo + ":v1", dstRepo + ":v1.0"} {
				if got := strings.TrimSpace(regctl.run(t, "image", "digest", ref)); got != img.ManifestDigest {
					t.Errorf("regctl image digest %s: %s, want %s", ref, got, img.ManifestDigest)
				}
			}
		}},
		{"blob get returns every blob byte for byte", func(t *testing.T) {
			for d, want := range img.blobs() {
				if got := regctl.run(t, "blob", "get", dstRepo, d); got != string(want) {
					t.Errorf("regctl blob get %s: %d bytes hashing to %s, want %d bytes", d, len(got), sha256Digest([]byte(got)), len(want))
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
