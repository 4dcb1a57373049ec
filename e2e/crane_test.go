package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCrane drives crane through push, pull, copy (a cross-repository mount), tag,
// list, catalog, digest, manifest and delete, as a named sequence of steps on one
// registry.
func TestCrane(t *testing.T) {
	t.Parallel()
	runCrane(t, startRegistry(t))
}

// runCrane is TestCrane's sequence against a started registry.
func runCrane(t *testing.T, reg *registry) {
	crane := newTool(t, "crane")
	rc := newRegClient(reg.Addr)
	src := reg.Addr + "/e2e/crane"
	dst := reg.Addr + "/e2e/crane-copy"

	work := t.TempDir()
	l := newLayer(t, "hello/random.bin", 256<<10)
	layerPath := filepath.Join(work, "layer.tar.gz")
	if err := os.WriteFile(layerPath, l.Blob, 0o644); err != nil {
		t.Fatal(err)
	}
	var manifestDigest string
	var mf manifest

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"append pushes an image built on scratch", func(t *testing.T) {
			crane.run(t, "append", "--insecure", "--oci-empty-base", "-f", layerPath, "-t", src+":v1")
		}},
		{"digest equals the sha256 of the manifest bytes", func(t *testing.T) {
			manifestDigest = strings.TrimSpace(crane.run(t, "digest", "--insecure", src+":v1"))
			raw := crane.run(t, "manifest", "--insecure", src+":v1")
			if got := sha256Digest([]byte(raw)); got != manifestDigest {
				t.Fatalf("crane digest %s, but the manifest bytes hash to %s", manifestDigest, got)
			}
			if err := json.Unmarshal([]byte(raw), &mf); err != nil {
				t.Fatalf("manifest: %v\n%s", err, raw)
			}
			if len(mf.Layers) != 1 || mf.Layers[0].Digest != l.Digest || mf.Layers[0].Size != int64(len(l.Blob)) {
				t.Fatalf("manifest layers %+v, want one layer %s of %d bytes", mf.Layers, l.Digest, len(l.Blob))
			}
			body, _, err := rc.getManifest("e2e/crane", manifestDigest)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != raw {
				t.Fatalf("GET by digest served different bytes than crane manifest by tag:\n%s\n%s", body, raw)
			}
		}},
		{"pull as a tarball holds the same layer bytes", func(t *testing.T) {
			tarball := filepath.Join(work, "image.tar")
			crane.run(t, "pull", "--insecure", src+":v1", tarball)
			files := readTar(t, tarball)
			var save []struct {
				Config string
				Layers []string
			}
			if err := json.Unmarshal(files["manifest.json"], &save); err != nil || len(save) != 1 {
				t.Fatalf("tarball manifest.json %q: %v", files["manifest.json"], err)
			}
			if got := sha256Digest(files[save[0].Config]); got != mf.Config.Digest {
				t.Errorf("tarball config hashes to %s, manifest says %s", got, mf.Config.Digest)
			}
			if len(save[0].Layers) != 1 || !bytes.Equal(files[save[0].Layers[0]], l.Blob) {
				t.Errorf("tarball layers %v do not hold the pushed layer bytes", save[0].Layers)
			}
		}},
		{"pull in OCI layout holds the same manifest and blobs", func(t *testing.T) {
			dir := filepath.Join(work, "oci")
			crane.run(t, "pull", "--insecure", "--format", "oci", src+":v1", dir)
			var idx index
			readJSON(t, filepath.Join(dir, "index.json"), &idx)
			if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != manifestDigest {
				t.Fatalf("OCI layout index %+v, want manifest %s", idx.Manifests, manifestDigest)
			}
			for _, d := range []string{manifestDigest, mf.Config.Digest, l.Digest} {
				b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
				if err != nil {
					t.Fatal(err)
				}
				if got := sha256Digest(b); got != d {
					t.Errorf("OCI layout blob %s hashes to %s", d, got)
				}
			}
		}},
		{"copy to another repository mounts the blobs there", func(t *testing.T) {
			crane.run(t, "copy", "--insecure", src+":v1", dst+":v1")
			if got := strings.TrimSpace(crane.run(t, "digest", "--insecure", dst+":v1")); got != manifestDigest {
				t.Fatalf("copied digest %s, want %s", got, manifestDigest)
			}
			for _, d := range []string{mf.Config.Digest, l.Digest} {
				if _, err := rc.getBlob("e2e/crane-copy", d); err != nil {
					t.Error(err)
				}
			}
		}},
		{"tag adds a second tag to the same digest", func(t *testing.T) {
			crane.run(t, "tag", "--insecure", src+":v1", "v2")
			if got := strings.TrimSpace(crane.run(t, "digest", "--insecure", src+":v2")); got != manifestDigest {
				t.Fatalf("v2 digest %s, want %s", got, manifestDigest)
			}
		}},
		{"ls lists both tags", func(t *testing.T) {
			got := strings.Fields(crane.run(t, "ls", "--insecure", src))
			slices.Sort(got)
			if want := []string{"v1", "v2"}; !slices.Equal(got, want) {
				t.Fatalf("crane ls: %v, want %v", got, want)
			}
		}},
		{"catalog lists both repositories", func(t *testing.T) {
			got := strings.Fields(crane.run(t, "catalog", "--insecure", reg.Addr))
			for _, want := range []string{"e2e/crane", "e2e/crane-copy"} {
				if !slices.Contains(got, want) {
					t.Errorf("crane catalog: %v lacks %s", got, want)
				}
			}
		}},
		{"delete removes the manifest and its tags resolve no more", func(t *testing.T) {
			crane.run(t, "delete", "--insecure", src+"@"+manifestDigest)
			req := rc.newRequest("GET", "/v2/e2e/crane/manifests/"+manifestDigest, nil)
			if _, _, err := rc.do(req, 404); err != nil {
				t.Errorf("deleted manifest: %v", err)
			}
			crane.mustFail(t, "manifest", "--insecure", src+"@"+manifestDigest)
			for _, tag := range []string{"v1", "v2"} {
				crane.mustFail(t, "manifest", "--insecure", src+":"+tag)
			}
		}},
		{"the copy in the other repository is untouched", func(t *testing.T) {
			if got := strings.TrimSpace(crane.run(t, "digest", "--insecure", dst+":v1")); got != manifestDigest {
				t.Fatalf("copy digest after delete %s, want %s", got, manifestDigest)
			}
			if b, err := rc.getBlob("e2e/crane-copy", l.Digest); err != nil || !bytes.Equal(b, l.Blob) {
				t.Fatalf("copy's layer after delete: %v", err)
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.FailNow()
		}
	}
}

// readTar returns every regular file of a tar archive by name.
func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[hdr.Name] = b
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
}
