package oci

import (
	"context"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultPullJobs is how many blobs a pull fetches at once: more than a push,
// since a pull's cost is mostly waiting on the network and the disk, and an
// image's largest layers otherwise finish one after the other.
const DefaultPullJobs = 8

// PullOptions shape Pull.
type PullOptions struct {
	// Jobs bounds the blobs downloaded at once; 0 means DefaultPullJobs.
	Jobs int
	// Name is the ref name the root gets in the layout's index.json.
	Name string
	// Progress, when not nil, is told of every byte and blob.
	Progress *Progress
}

// Pull writes im (whose manifests LoadImage has checked) into the layout w:
// every blob, checked against its digest and length as it streams and kept
// only if it matches (blobs the layout already holds intact are not fetched
// again), then the manifests, then the root in index.json, last.
func Pull(ctx context.Context, src Source, im *Image, w *LayoutWriter, o PullOptions) error {
	if o.Jobs <= 0 {
		o.Jobs = DefaultPullJobs
	}
	o.Progress.Expect(len(im.Blobs), im.Size())
	err := forEachBlob(ctx, o.Jobs, im.Blobs, func(ctx context.Context, desc ocispec.Descriptor) error {
		defer o.Progress.Finish()
		return pullBlob(ctx, src, w, desc, o.Progress)
	})
	if err != nil {
		return err
	}
	for _, m := range im.Manifests {
		if err := w.WriteManifest(m.Digest, im.Raw[m.Digest]); err != nil {
			return err
		}
	}
	return w.Tag(im.Root, o.Name)
}

func pullBlob(ctx context.Context, src Source, w *LayoutWriter, desc ocispec.Descriptor, p *Progress) error {
	rc, err := src.Blob(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = w.WriteBlob(desc.Digest, &countingReader{r: rc, n: p.Add})
	return err
}
