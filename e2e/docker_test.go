package e2e

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocker pushes and pulls through a real docker daemon: an image is loaded from
// a tarball (made by crane from the registry), tagged, pushed, removed and pulled.
func TestDocker(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	rc := newRegClient(reg.Addr)
	crane := newTool(t, "crane")
	docker := dockerClient(t)

	img := newImage(t, "docker", newLayer(t, "d/one.bin", 512<<10), newLayer(t, "d/two.bin", 64<<10))
	if err := rc.pushImage("e2e/docker-src", "v1", img, uploadStreamed); err != nil {
		t.Fatal(err)
	}
	srcRef := reg.Addr + "/e2e/docker-src:v1"
	ref := reg.Addr + "/e2e/docker:v1"
	var pushedDigest string
	t.Cleanup(func() { docker.try("rmi", "-f", srcRef, ref) })

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"load a tarball pulled by crane", func(t *testing.T) {
			tarball := filepath.Join(t.TempDir(), "image.tar")
			crane.run(t, "pull", "--insecure", srcRef, tarball)
			out := docker.run(t, "load", "-i", tarball)
			if !strings.Contains(out, srcRef) {
				t.Fatalf("docker load did not load %s:\n%s", srcRef, out)
			}
			if id := strings.TrimSpace(docker.run(t, "image", "inspect", "--format", "{{.Id}}", srcRef)); id != img.ConfigDigest {
				t.Fatalf("loaded image ID %s, want the config digest %s", id, img.ConfigDigest)
			}
		}},
		{"tag and push", func(t *testing.T) {
			docker.run(t, "tag", srcRef, ref)
			out := docker.run(t, "push", ref)
			m := regexp.MustCompile(`digest: (sha256:[0-9a-f]{64}) size: (\d+)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("docker push printed no digest:\n%s", out)
			}
			pushedDigest = m[1]
			body, hdr, err := rc.getManifest("e2e/docker", "v1")
			if err != nil {
				t.Fatal(err)
			}
			if got := sha256Digest(body); got != pushedDigest || hdr.Get("Docker-Content-Digest") != pushedDigest {
				t.Fatalf("registry serves a manifest hashing to %s (Docker-Content-Digest %s), docker pushed %s",
					got, hdr.Get("Docker-Content-Digest"), pushedDigest)
			}
			var mf manifest
			if err := json.Unmarshal(body, &mf); err != nil {
				t.Fatal(err)
			}
			if mf.Config.Digest != img.ConfigDigest || len(mf.Layers) != len(img.Layers) {
				t.Fatalf("pushed manifest has config %s and %d layers, want %s and %d:\n%s",
					mf.Config.Digest, len(mf.Layers), img.ConfigDigest, len(img.Layers), body)
			}
			for _, d := range append([]descriptor{mf.Config}, mf.Layers...) {
				if _, err := rc.getBlob("e2e/docker", d.Digest); err != nil {
					t.Error(err)
				}
			}
		}},
		{"remove the local images", func(t *testing.T) {
			docker.run(t, "rmi", ref, srcRef)
			docker.mustFail(t, "image", "inspect", ref)
		}},
		{"pull brings back the same image", func(t *testing.T) {
			out := docker.run(t, "pull", ref)
			if !strings.Contains(out, pushedDigest) {
				t.Errorf("docker pull did not report digest %s:\n%s", pushedDigest, out)
			}
			if id := strings.TrimSpace(docker.run(t, "image", "inspect", "--format", "{{.Id}}", ref)); id != img.ConfigDigest {
				t.Errorf("pulled image ID %s, want %s", id, img.ConfigDigest)
			}
			var digests []string
			raw := docker.run(t, "image", "inspect", "--format", "{{json .RepoDigests}}", ref)
			if err := json.Unmarshal([]byte(raw), &digests); err != nil {
				t.Fatalf("RepoDigests %q: %v", raw, err)
			}
			if want := reg.Addr + "/e2e/docker@" + pushedDigest; !slices.Contains(digests, want) {
				t.Errorf("pulled RepoDigests %v, want %s", digests, want)
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.FailNow()
		}
	}
}
