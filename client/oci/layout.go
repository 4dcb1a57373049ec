package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/internal/atomicfile"
)

// Layout is an OCI image layout directory, read as a Source:
//
//	DIR/
//	├── oci-layout                 {"imageLayoutVersion": "1.0.0"}
//	├── index.json                 the layout's index: its root manifests
//	└── blobs/<alg>/<hex>          every manifest and blob, by digest
type Layout struct {
	Dir string
	// Index is the layout's index.json.
	Index ocispec.Index
}

// OpenLayout reads the layout at dir.
func OpenLayout(dir string) (*Layout, error) {
	b, err := os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile))
	if err != nil {
		return nil, fmt.Errorf("%s is not an OCI image layout: %w", dir, err)
	}
	l := &Layout{Dir: dir}
	if err := json.Unmarshal(b, &l.Index); err != nil {
		return nil, fmt.Errorf("%s/index.json: %w", dir, err)
	}
	return l, nil
}

// BlobPath is where a layout keeps the blob d.
func BlobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

// Manifest implements Source.
func (l *Layout) Manifest(_ context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, err
	}
	raw, err := readLimited(BlobPath(l.Dir, desc.Digest), MaxManifest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s of the layout %s: %w", desc.Digest, l.Dir, err)
	}
	return raw, checkBytes(raw, desc.Digest, sizeOrAny(desc), "manifest "+desc.Digest.String()+" of the layout "+l.Dir)
}

// Blob implements Source.
func (l *Layout) Blob(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, err
	}
	f, err := os.Open(BlobPath(l.Dir, desc.Digest))
	if err != nil {
		return nil, fmt.Errorf("blob %s is not in the layout %s: %w", desc.Digest, l.Dir, err)
	}
	return readCloser{VerifyReader(f, desc.Digest, desc.Size, "blob "+desc.Digest.String()+" of the layout "+l.Dir), f}, nil
}

// Select picks a root manifest of an index: the one annotated with ref name
// name, else the only one.
func Select(idx ocispec.Index, name, where string) (ocispec.Descriptor, error) {
	var named []ocispec.Descriptor
	for _, m := range idx.Manifests {
		if name != "" && m.Annotations[ocispec.AnnotationRefName] == name {
			named = append(named, m)
		}
	}
	switch {
	case len(named) == 1:
		return named[0], nil
	case len(idx.Manifests) == 1:
		return idx.Manifests[0], nil
	case len(idx.Manifests) == 0:
		return ocispec.Descriptor{}, fmt.Errorf("%s lists no manifest", where)
	}
	var names []string
	for _, m := range idx.Manifests {
		names = append(names, m.Annotations[ocispec.AnnotationRefName])
	}
	return ocispec.Descriptor{}, fmt.Errorf("%s lists %d manifests (ref names %q) and none is named %q: name one as SRC:NAME", where, len(idx.Manifests), names, name)
}

func sizeOrAny(desc ocispec.Descriptor) int64 {
	if desc.Size > 0 {
		return desc.Size
	}
	return -1
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// LayoutWriter writes blobs into an OCI image layout, each under its digest
// once it has been checked, and the layout's index.json last.
type LayoutWriter struct {
	Dir string
}

// NewLayoutWriter creates dir (and its oci-layout file) if needed.
func NewLayoutWriter(dir string) (*LayoutWriter, error) {
	if err := os.MkdirAll(filepath.Join(dir, ocispec.ImageBlobsDir), 0o755); err != nil {
		return nil, err
	}
	lay, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), lay, 0o644); err != nil {
		return nil, err
	}
	return &LayoutWriter{Dir: dir}, nil
}

// WriteBlob copies r (a verifying reader) to a temporary file and renames it to
// the blob's path only once r has ended without error.
func (w *LayoutWriter) WriteBlob(d digest.Digest, r io.Reader) (int64, error) {
	dir := filepath.Dir(BlobPath(w.Dir, d))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	var n int64
	err := atomicfile.WriteFunc(BlobPath(w.Dir, d), 0o600, func(f io.Writer) error {
		var err error
		n, err = io.CopyBuffer(f, r, make([]byte, 1<<20))
		return err
	})
	return n, err
}

// WriteManifest writes a manifest's checked bytes.
func (w *LayoutWriter) WriteManifest(d digest.Digest, raw []byte) error {
	if err := checkBytes(raw, d, -1, "manifest "+d.String()); err != nil {
		return err
	}
	_, err := w.WriteBlob(d, VerifyReader(bytes.NewReader(raw), d, int64(len(raw)), "manifest "+d.String()))
	return err
}

// Tag adds root to the layout's index.json, named name (annotation
// org.opencontainers.image.ref.name), replacing an entry of that name.
func (w *LayoutWriter) Tag(root ocispec.Descriptor, name string) error {
	path := filepath.Join(w.Dir, ocispec.ImageIndexFile)
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &idx); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	entry := ocispec.Descriptor{MediaType: root.MediaType, Digest: root.Digest, Size: root.Size}
	if name != "" {
		entry.Annotations = map[string]string{ocispec.AnnotationRefName: name}
	}
	kept := idx.Manifests[:0]
	for _, m := range idx.Manifests {
		if name != "" && m.Annotations[ocispec.AnnotationRefName] == name {
			continue
		}
		if name == "" && m.Digest == root.Digest && m.Annotations[ocispec.AnnotationRefName] == "" {
			continue
		}
		kept = append(kept, m)
	}
	idx.Manifests = append(kept, entry)
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o644)
}
