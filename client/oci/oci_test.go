package oci_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/registry"
)

// startRegistry runs Signet's registry in the test process (no auth), behind
// wrap, and returns its host:port.
func startRegistry(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	cfg := registry.Defaults()
	cfg.Data = t.TempDir()
	store, err := registry.OpenStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := registry.NewServer(store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(srv)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return strings.TrimPrefix(ts.URL, "http://")
}

func randomBlob(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// writeLayout writes an image of the given layers as an OCI layout.
func writeLayout(t *testing.T, layers ...[]byte) (string, ocispec.Manifest, []byte) {
	t.Helper()
	dir := t.TempDir()
	put := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		p := oci.BlobPath(dir, d)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: put(cfg), Size: int64(len(cfg))}}
	m.SchemaVersion = 2
	for _, l := range layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: put(l), Size: int64(len(l))})
	}
	mb, _ := json.Marshal(m)
	md := put(mb)
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(mb))}}}
	idx.SchemaVersion = 2
	ib, _ := json.Marshal(idx)
	os.WriteFile(filepath.Join(dir, "index.json"), ib, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	return dir, m, mb
}

func loadLayout(t *testing.T, dir string) (*oci.Layout, *oci.Image) {
	t.Helper()
	l, err := oci.OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	root, err := oci.Select(l.Index, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := oci.LoadImage(context.Background(), l, root)
	if err != nil {
		t.Fatal(err)
	}
	return l, im
}

// breakFirstPatch cuts the connection of the first PATCH after it has passed
// half of its body on, as a network failure would.
func breakFirstPatch(broken *atomic.Int32, resumedAt *atomic.Value) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPatch && broken.Load() == 1 {
				resumedAt.Store(r.Header.Get("Content-Range"))
			}
			if r.Method == http.MethodPatch && broken.Add(1) == 1 {
				half := r.ContentLength / 2
				r.Body = io.NopCloser(io.MultiReader(io.LimitReader(r.Body, half), errReader{}))
				r.ContentLength = -1
				r.Header.Del("Content-Length")
				// The registry sees a broken body; its answer never reaches the
				// client, whose connection is cut.
				next.ServeHTTP(discard{header: http.Header{}}, r)
				panic(http.ErrAbortHandler)
			}
			next.ServeHTTP(w, r)
		})
	}
}

type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestPushResumesABrokenUploadAndPullChecksEveryBlob(t *testing.T) {
	var broken atomic.Int32
	var resumedAt atomic.Value
	host := startRegistry(t, breakFirstPatch(&broken, &resumedAt))
	big := randomBlob(t, 3<<20)
	dir, _, mb := writeLayout(t, big)
	l, im := loadLayout(t, dir)
	ctx := context.Background()
	repo, err := oci.NewRepository(context.Background(), host, "acme/app", oci.Options{Push: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := oci.PushBlobs(ctx, l, im, repo, oci.PushOptions{Jobs: 1})
	if err != nil {
		t.Fatalf("push with a broken PATCH: %v", err)
	}
	if broken.Load() < 2 || st.Uploaded != 2 {
		t.Fatalf("PATCHes %d, stats %+v: want the broken upload resumed", broken.Load(), st)
	}
	// The first blob (the config) broke half-way: it goes on from there.
	if cr, _ := resumedAt.Load().(string); cr == "" || strings.HasPrefix(cr, "0-") {
		t.Errorf("the upload went on with Content-Range %q, want it to resume where the registry stopped", cr)
	}
	if err := oci.PushManifests(ctx, im, repo, "v1"); err != nil {
		t.Fatal(err)
	}
	// A second push finds every blob there.
	st, err = oci.PushBlobs(ctx, l, im, repo, oci.PushOptions{})
	if err != nil || st.Skipped != 2 || st.Uploaded != 0 {
		t.Fatalf("second push: %+v, %v; want both blobs skipped", st, err)
	}
	raw, _, err := repo.GetManifest(ctx, "v1", oci.MaxManifest)
	if err != nil || !bytes.Equal(raw, mb) {
		t.Fatalf("the manifest under v1: %v", err)
	}
	out := t.TempDir()
	w, err := oci.NewLayoutWriter(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := oci.Pull(ctx, repo, im, w, oci.PullOptions{Name: "v1"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(oci.BlobPath(out, digest.FromBytes(big)))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("the pulled layer: %v", err)
	}
}

// lyingRegistry serves other bytes for one blob than those pushed.
func TestPullRefusesABlobThatIsNotItsDigestOrLength(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func([]byte) []byte
	}{
		{"a flipped byte", func(b []byte) []byte { c := bytes.Clone(b); c[10] ^= 1; return c }},
		{"one byte more", func(b []byte) []byte { return append(bytes.Clone(b), 'x') }},
		{"one byte less", func(b []byte) []byte { return b[:len(b)-1] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layer := randomBlob(t, 64<<10)
			ld := digest.FromBytes(layer)
			host := startRegistry(t, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+ld.String()) {
						w.Write(tc.tamper(layer)) // no Content-Length check can save the client
						return
					}
					next.ServeHTTP(w, r)
				})
			})
			dir, _, _ := writeLayout(t, layer)
			l, im := loadLayout(t, dir)
			ctx := context.Background()
			repo, _ := oci.NewRepository(context.Background(), host, "acme/app", oci.Options{Push: true})
			if _, err := oci.PushBlobs(ctx, l, im, repo, oci.PushOptions{}); err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			w, _ := oci.NewLayoutWriter(out)
			err := oci.Pull(ctx, repo, im, w, oci.PullOptions{Name: "v1"})
			if !errors.Is(err, oci.ErrContentMismatch) {
				t.Fatalf("pull of a tampered blob: %v, want a content mismatch", err)
			}
			if _, err := os.Stat(oci.BlobPath(out, ld)); err == nil {
				t.Error("the tampered blob was kept")
			}
			if _, err := os.Stat(filepath.Join(out, "index.json")); err == nil {
				t.Error("index.json was written after a failed pull")
			}
		})
	}
}

// TestDockerSaveArchive: the older docker save format (manifest.json, a config
// JSON, one layer.tar per layer, linked by symlinks) becomes an OCI manifest of
// the same config and layers.
func TestDockerSaveArchive(t *testing.T) {
	layer := randomBlob(t, 10<<10)
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	add("abc.json", cfg)
	add("l1/layer.tar", layer)
	tw.WriteHeader(&tar.Header{Name: "l2/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../l1/layer.tar"})
	add("manifest.json", []byte(`[{"Config":"abc.json","RepoTags":["app:v1"],"Layers":["l1/layer.tar","l2/layer.tar"]}]`))
	tw.Close()
	p := filepath.Join(t.TempDir(), "saved.tar")
	os.WriteFile(p, tb.Bytes(), 0o644)

	a, err := oci.OpenArchive(p)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	root, err := oci.Select(a.Index, "v1", p)
	if err != nil {
		t.Fatal(err)
	}
	im, err := oci.LoadImage(context.Background(), a, root)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	json.Unmarshal(im.Raw[root.Digest], &m)
	if m.Config.Digest != digest.FromBytes(cfg) || len(m.Layers) != 2 || m.Layers[1].Digest != digest.FromBytes(layer) || m.Layers[0].MediaType != ocispec.MediaTypeImageLayer {
		t.Fatalf("manifest %s", im.Raw[root.Digest])
	}
	if len(im.Blobs) != 2 {
		t.Errorf("blobs %v: want the config and the layer once", im.Blobs)
	}
	rc, err := a.Blob(context.Background(), m.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, layer) {
		t.Fatalf("the layer read back: %v", err)
	}
}

func TestVerifyReader(t *testing.T) {
	b := []byte("hello, world")
	d := digest.FromBytes(b)
	for _, tc := range []struct {
		name    string
		content []byte
		size    int64
		ok      bool
	}{
		{"the right bytes pass", b, int64(len(b)), true},
		{"a short read fails", b[:5], int64(len(b)), false},
		{"a long read fails", append(bytes.Clone(b), '!'), int64(len(b)), false},
		{"other bytes of the same length fail", []byte("hello, World"), int64(len(b)), false},
		{"a size that lies fails", b, int64(len(b)) - 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := io.ReadAll(oci.VerifyReader(bytes.NewReader(tc.content), d, tc.size, "test"))
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, oci.ErrContentMismatch)) {
				t.Errorf("got %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
