package oci

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Archive is a tarball read as a Source: an OCI archive (a tar of an OCI image
// layout, as `docker save` writes from Docker 25 on) or the older `docker save`
// format (manifest.json, one config JSON and one layer.tar per layer), for which
// it makes an OCI image manifest of the same config and layers. A gzipped
// tarball is decompressed to a temporary file first.
type Archive struct {
	Path string
	// Index lists the archive's root manifests, as an OCI layout's index.json
	// does; for the older docker format, one synthesised manifest per image,
	// named by its first RepoTags entry.
	Index ocispec.Index

	f       *os.File
	tmp     string
	entries map[string]entry
	// made holds the manifests synthesised from a docker manifest.json.
	made map[digest.Digest][]byte
	// blobs maps the digest of a docker archive's config and layers to entries.
	blobs map[digest.Digest]string
}

type entry struct{ off, size int64 }

// OpenArchive reads the tarball at path.
func OpenArchive(path string) (*Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	a := &Archive{Path: path, f: f, entries: map[string]entry{}}
	if err := a.decompress(); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.scan(); err != nil {
		a.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, ok := a.entries[ocispec.ImageIndexFile]; ok {
		raw, err := a.read(ocispec.ImageIndexFile, MaxManifest)
		if err == nil {
			err = json.Unmarshal(raw, &a.Index)
		}
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("%s: index.json: %w", path, err)
		}
		return a, nil
	}
	if _, ok := a.entries["manifest.json"]; ok {
		if err := a.fromDocker(); err != nil {
			a.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return a, nil
	}
	a.Close()
	return nil, fmt.Errorf("%s is neither an OCI archive (index.json) nor a docker save archive (manifest.json)", path)
}

// Close releases the file (and removes a decompressed copy).
func (a *Archive) Close() error {
	err := a.f.Close()
	if a.tmp != "" {
		os.Remove(a.tmp)
	}
	return err
}

// decompress replaces a gzipped tarball by a decompressed temporary copy, so
// that entries can be read at their offsets.
func (a *Archive) decompress() error {
	var magic [2]byte
	if _, err := a.f.ReadAt(magic[:], 0); err != nil || magic != [2]byte{0x1f, 0x8b} {
		return nil
	}
	zr, err := gzip.NewReader(bufio.NewReaderSize(a.f, 1<<20))
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp("", "trustctl-archive-*.tar")
	if err != nil {
		return err
	}
	a.tmp = tmp.Name()
	if _, err := io.Copy(tmp, zr); err != nil {
		tmp.Close()
		return fmt.Errorf("decompressing %s: %w", a.Path, err)
	}
	a.f.Close()
	a.f = tmp
	return nil
}

// positionReader tracks the offset tar.Reader has reached, so that each entry's
// data can be read later at its offset.
type positionReader struct {
	f   *os.File
	pos int64
}

func (p *positionReader) Read(b []byte) (int, error) {
	n, err := p.f.ReadAt(b, p.pos)
	p.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (p *positionReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		p.pos += off
	case io.SeekStart:
		p.pos = off
	default:
		st, err := p.f.Stat()
		if err != nil {
			return 0, err
		}
		p.pos = st.Size() + off
	}
	return p.pos, nil
}

func (a *Archive) scan() error {
	pr := &positionReader{f: a.f}
	tr := tar.NewReader(pr)
	links := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("not a tar archive: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		switch h.Typeflag {
		case tar.TypeReg:
			a.entries[name] = entry{off: pr.pos, size: h.Size}
		case tar.TypeSymlink:
			links[name] = path.Join(path.Dir(name), h.Linkname)
		case tar.TypeLink:
			links[name] = path.Clean(h.Linkname)
		}
	}
	for name, target := range links {
		for i := 0; i < 8; i++ {
			if next, ok := links[target]; ok {
				target = next
			}
		}
		if e, ok := a.entries[target]; ok {
			a.entries[name] = e
		}
	}
	return nil
}

func (a *Archive) open(name string) (*io.SectionReader, error) {
	e, ok := a.entries[name]
	if !ok {
		return nil, fmt.Errorf("%s has no file %s", a.Path, name)
	}
	return io.NewSectionReader(a.f, e.off, e.size), nil
}

func (a *Archive) read(name string, limit int64) ([]byte, error) {
	r, err := a.open(name)
	if err != nil {
		return nil, err
	}
	if r.Size() > limit {
		return nil, fmt.Errorf("%s in %s is larger than %d bytes", name, a.Path, limit)
	}
	return io.ReadAll(r)
}

func (a *Archive) blobName(d digest.Digest) string {
	if name, ok := a.blobs[d]; ok {
		return name
	}
	return path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

// Manifest implements Source.
func (a *Archive) Manifest(_ context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, err
	}
	raw, ok := a.made[desc.Digest]
	if !ok {
		var err error
		if raw, err = a.read(a.blobName(desc.Digest), MaxManifest); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
	}
	return raw, checkBytes(raw, desc.Digest, sizeOrAny(desc), "manifest "+desc.Digest.String()+" of "+a.Path)
}

// Blob implements Source.
func (a *Archive) Blob(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, err
	}
	r, err := a.open(a.blobName(desc.Digest))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	return io.NopCloser(VerifyReader(r, desc.Digest, desc.Size, "blob "+desc.Digest.String()+" of "+a.Path)), nil
}

// dockerManifest is one entry of a docker save manifest.json.
type dockerManifest struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// fromDocker makes an OCI image manifest for each image of a docker save
// manifest.json: the config and the layers as saved (uncompressed tars,
// application/vnd.oci.image.layer.v1.tar, unless a layer is gzipped), so that
// the config's diff_ids are the layers' own digests.
func (a *Archive) fromDocker() error {
	raw, err := a.read("manifest.json", MaxManifest)
	if err != nil {
		return err
	}
	var dms []dockerManifest
	if err := json.Unmarshal(raw, &dms); err != nil {
		return fmt.Errorf("manifest.json: %w", err)
	}
	a.made, a.blobs = map[digest.Digest][]byte{}, map[digest.Digest]string{}
	a.Index.SchemaVersion = 2
	a.Index.MediaType = ocispec.MediaTypeImageIndex
	for _, dm := range dms {
		cfg, err := a.describe(path.Clean(dm.Config), ocispec.MediaTypeImageConfig)
		if err != nil {
			return err
		}
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg}
		m.SchemaVersion = 2
		for _, l := range dm.Layers {
			d, err := a.describe(path.Clean(l), ocispec.MediaTypeImageLayer)
			if err != nil {
				return err
			}
			m.Layers = append(m.Layers, d)
		}
		mb, err := json.Marshal(m)
		if err != nil {
			return err
		}
		md := digest.FromBytes(mb)
		a.made[md] = mb
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(mb))}
		if len(dm.RepoTags) > 0 {
			desc.Annotations = map[string]string{ocispec.AnnotationRefName: dm.RepoTags[0]}
		}
		a.Index.Manifests = append(a.Index.Manifests, desc)
	}
	if len(a.Index.Manifests) == 0 {
		return errors.New("manifest.json lists no image")
	}
	return nil
}

// describe hashes an entry of a docker archive and records it as a blob.
func (a *Archive) describe(name, mediaType string) (ocispec.Descriptor, error) {
	r, err := a.open(name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var head [2]byte
	if n, _ := r.ReadAt(head[:], 0); n == 2 && head == [2]byte{0x1f, 0x8b} && mediaType == ocispec.MediaTypeImageLayer {
		mediaType = ocispec.MediaTypeImageLayerGzip
	}
	dg := digest.Canonical.Digester()
	if _, err := io.Copy(dg.Hash(), r); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("reading %s: %w", name, err)
	}
	d := dg.Digest()
	a.blobs[d] = name
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: r.Size()}, nil
}
