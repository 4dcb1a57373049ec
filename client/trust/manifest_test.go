package trust

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		name, in, repo, tag, path string
		ok                        bool
	}{
		{"a tag of a two-component repository", "127.0.0.1:5000/acme/app:v1", "acme/app", "v1", "acme/app:v1", true},
		{"a tag of a four-component repository", "reg.example.com/acme/a/b/c:latest", "acme/a/b/c", "latest", "acme/a/b/c:latest", true},
		{"a digest", "localhost/acme/app@sha256:" + sha256Hex(nil), "acme/app", "", "acme/app@sha256:" + sha256Hex(nil), true},
		{"no host", "acme/app:v1", "", "", "", false},
		{"no tag or digest", "127.0.0.1:5000/acme/app", "", "", "", false},
		{"a repository outside any org", "127.0.0.1:5000/app:v1", "", "", "", false},
		{"five components", "127.0.0.1:5000/acme/a/b/c/d:v1", "", "", "", false},
		{"an invalid tag", "127.0.0.1:5000/acme/app:-bad", "", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRef(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseRef(%q) = %+v, %v", tc.in, r, err)
			}
			if tc.ok && (r.Repo != tc.repo || r.Tag != tc.tag || r.TargetPath() != tc.path) {
				t.Errorf("ParseRef(%q) = %+v (target %s)", tc.in, r, r.TargetPath())
			}
		})
	}
}

// writeLayout writes an OCI layout holding an index of two images, tagged v1.
func writeLayout(t *testing.T) (dir string, index digest.Digest, children []digest.Digest) {
	t.Helper()
	dir = t.TempDir()
	blob := func(b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		p := filepath.Join(dir, "blobs", "sha256", d.Encoded())
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return ocispec.Descriptor{Digest: d, Size: int64(len(b))}
	}
	var idx ocispec.Index
	idx.SchemaVersion = 2
	idx.MediaType = ocispec.MediaTypeImageIndex
	for _, arch := range []string{"amd64", "arm64"} {
		m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest, "arch": arch})
		d := blob(m)
		d.MediaType = ocispec.MediaTypeImageManifest
		idx.Manifests = append(idx.Manifests, d)
		children = append(children, d.Digest)
	}
	ib, _ := json.Marshal(idx)
	top := blob(ib)
	top.MediaType = ocispec.MediaTypeImageIndex
	top.Annotations = map[string]string{ocispec.AnnotationRefName: "v1"}
	layout, _ := json.Marshal(ocispec.Index{Versioned: idx.Versioned, Manifests: []ocispec.Descriptor{top}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), layout, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, top.Digest, children
}

func TestManifestFromLayoutNamesTheIndexAndItsClosure(t *testing.T) {
	dir, index, children := writeLayout(t)
	m, err := ManifestFromLayout(dir, "v1", "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != index || m.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("got %s %s, want the index %s", m.Digest, m.MediaType, index)
	}
	if len(m.Closure) != 2 || m.Closure[0] != children[0] || m.Closure[1] != children[1] {
		t.Errorf("closure %v, want %v", m.Closure, children)
	}
	// A child picked by digest is an image: no closure.
	c, err := ManifestFromLayout(dir, "", children[1])
	if err != nil {
		t.Fatal(err)
	}
	if c.Digest != children[1] || c.MediaType != ocispec.MediaTypeImageManifest || len(c.Closure) != 0 {
		t.Errorf("child: %+v", c)
	}
	if _, err := ManifestFromLayout(dir, "v2", ""); err == nil {
		t.Error("a tag the layout does not name was found")
	}
	// A corrupt blob is refused.
	os.WriteFile(filepath.Join(dir, "blobs", "sha256", children[0].Encoded()), []byte("{}"), 0o644)
	if _, err := ManifestFromLayout(dir, "", children[0]); err == nil {
		t.Error("a blob that does not hash to its name was read")
	}
}

func TestTargetFileCarriesHashLengthAndCustom(t *testing.T) {
	m := &Manifest{Digest: digest.FromString("x"), Length: 1, MediaType: ocispec.MediaTypeImageIndex, Closure: []digest.Digest{digest.FromString("c")}}
	tf, err := targetFile(m)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := digestOf(tf); got != m.Digest || tf.Length != 1 {
		t.Errorf("target names %s, %d bytes", got, tf.Length)
	}
	var custom struct {
		MediaType string   `json:"mediaType"`
		Closure   []string `json:"closure"`
	}
	if err := json.Unmarshal(*tf.Custom, &custom); err != nil || custom.MediaType != m.MediaType || len(custom.Closure) != 1 || custom.Closure[0] != m.Closure[0].String() {
		t.Errorf("custom %s: %v", *tf.Custom, err)
	}
}
