package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of the manifests this package walks.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// ManifestTypes is every manifest media type a registry may serve: the Accept
// header of a manifest GET.
var ManifestTypes = []string{
	ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
	MediaTypeDockerManifest, MediaTypeDockerManifestList,
}

// IsIndex reports whether mediaType is an index (a list of manifests).
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == MediaTypeDockerManifestList
}

// IsManifest reports whether mediaType is any manifest type this package walks.
func IsManifest(mediaType string) bool {
	return IsIndex(mediaType) || mediaType == ocispec.MediaTypeImageManifest || mediaType == MediaTypeDockerManifest
}

// MaxManifest bounds a manifest read (the registry's own limit is 4 MiB).
const MaxManifest = 4 << 20

// maxDepth bounds nested indexes.
const maxDepth = 4

// Source is where an image's content comes from: a layout, an archive, a
// registry. Implementations are safe for concurrent use.
type Source interface {
	// Manifest returns the manifest desc names, checked against its digest
	// (and its size when desc has one).
	Manifest(ctx context.Context, desc ocispec.Descriptor) ([]byte, error)
	// Blob opens a blob's content, which fails with ErrContentMismatch at the end
	// unless it is desc's digest and size.
	Blob(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
}

// Image is a root manifest and everything it references.
type Image struct {
	// Root is the descriptor of the root manifest (an image manifest or an index).
	Root ocispec.Descriptor
	// Manifests are every manifest's descriptor, children before the index that
	// lists them, the root last.
	Manifests []ocispec.Descriptor
	// Raw holds every manifest's bytes by digest.
	Raw map[digest.Digest][]byte
	// Blobs are the configs and layers of every image manifest, once each.
	Blobs []ocispec.Descriptor
}

// Size is the total size of the image's blobs.
func (im *Image) Size() int64 {
	var n int64
	for _, b := range im.Blobs {
		n += b.Size
	}
	return n
}

// Children returns the manifests the root index lists (recursively), or nil for
// an image manifest: the closure a signature of the root vouches for.
func (im *Image) Children() []digest.Digest {
	var out []digest.Digest
	for _, m := range im.Manifests {
		if m.Digest != im.Root.Digest {
			out = append(out, m.Digest)
		}
	}
	return out
}

// manifestFields are what walking needs of any manifest type.
type manifestFields struct {
	MediaType string               `json:"mediaType"`
	Config    *ocispec.Descriptor  `json:"config"`
	Layers    []ocispec.Descriptor `json:"layers"`
	Manifests []ocispec.Descriptor `json:"manifests"`
}

// LoadImage reads the manifest graph under root from src: every manifest's
// bytes (checked against their digests) and the descriptors of every blob.
func LoadImage(ctx context.Context, src Source, root ocispec.Descriptor) (*Image, error) {
	im := &Image{Root: root, Raw: map[digest.Digest][]byte{}}
	seenBlob := map[digest.Digest]bool{}
	var walk func(desc ocispec.Descriptor, depth int) error
	walk = func(desc ocispec.Descriptor, depth int) error {
		if _, done := im.Raw[desc.Digest]; done {
			return nil
		}
		raw, err := src.Manifest(ctx, desc)
		if err != nil {
			return err
		}
		var mf manifestFields
		if err := json.Unmarshal(raw, &mf); err != nil {
			return fmt.Errorf("manifest %s is not JSON: %w", desc.Digest, err)
		}
		if desc.MediaType == "" {
			desc.MediaType = mf.MediaType
		}
		if desc.MediaType == "" {
			if mf.Manifests != nil {
				desc.MediaType = ocispec.MediaTypeImageIndex
			} else {
				desc.MediaType = ocispec.MediaTypeImageManifest
			}
		}
		desc.Size = int64(len(raw))
		im.Raw[desc.Digest] = raw
		if IsIndex(desc.MediaType) {
			if depth >= maxDepth {
				return fmt.Errorf("index %s nests more than %d levels", desc.Digest, maxDepth)
			}
			for _, c := range mf.Manifests {
				if err := c.Digest.Validate(); err != nil {
					return fmt.Errorf("index %s lists %q: %w", desc.Digest, c.Digest, err)
				}
				if c.MediaType != "" && !IsManifest(c.MediaType) {
					// An artifact listed in an index: carried as a blob.
					if !seenBlob[c.Digest] {
						seenBlob[c.Digest] = true
						im.Blobs = append(im.Blobs, c)
					}
					continue
				}
				if err := walk(c, depth+1); err != nil {
					return err
				}
			}
		} else {
			blobs := mf.Layers
			if mf.Config != nil {
				blobs = append([]ocispec.Descriptor{*mf.Config}, blobs...)
			}
			for _, b := range blobs {
				if err := b.Digest.Validate(); err != nil {
					return fmt.Errorf("manifest %s lists blob %q: %w", desc.Digest, b.Digest, err)
				}
				if !seenBlob[b.Digest] {
					seenBlob[b.Digest] = true
					im.Blobs = append(im.Blobs, ocispec.Descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: b.Size})
				}
			}
		}
		im.Manifests = append(im.Manifests, ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Platform: desc.Platform})
		if desc.Digest == im.Root.Digest {
			im.Root = im.Manifests[len(im.Manifests)-1]
		}
		return nil
	}
	if err := walk(root, 0); err != nil {
		return nil, err
	}
	return im, nil
}
