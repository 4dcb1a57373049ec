package oci

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultJobs is how many blobs move at once.
const DefaultJobs = 4

// PushOptions shape PushBlobs.
type PushOptions struct {
	// Jobs bounds the blobs uploaded at once; 0 means DefaultJobs.
	Jobs int
	// MountFrom, when the source is a repository of the same registry, is its
	// name: blobs are mounted from it instead of uploaded.
	MountFrom string
	// Progress, when not nil, is told of every byte and blob.
	Progress *Progress
}

// PushStats says what a push did with the blobs; Bytes is what was sent.
type PushStats struct {
	Uploaded int   `json:"uploaded"`
	Skipped  int   `json:"skipped"`
	Mounted  int   `json:"mounted"`
	Bytes    int64 `json:"bytes"`
}

// PushBlobs copies every blob of im from src to dst that dst lacks: several at
// once, each skipped when dst has it (HEAD), mounted when it can be, else
// uploaded with resumption. Manifests are not pushed: see PushManifests.
func PushBlobs(ctx context.Context, src Source, im *Image, dst *Repository, o PushOptions) (PushStats, error) {
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs
	}
	if err := dst.Ping(ctx); err != nil {
		return PushStats{}, err
	}
	o.Progress.Expect(len(im.Blobs), im.Size())
	var st struct {
		uploaded, skipped, mounted atomic.Int64
		bytes                      atomic.Int64
	}
	err := forEachBlob(ctx, o.Jobs, im.Blobs, func(ctx context.Context, desc ocispec.Descriptor) error {
		defer o.Progress.Finish()
		return pushBlob(ctx, src, dst, desc, o, &st.uploaded, &st.skipped, &st.mounted, &st.bytes)
	})
	stats := PushStats{Uploaded: int(st.uploaded.Load()), Skipped: int(st.skipped.Load()), Mounted: int(st.mounted.Load()), Bytes: st.bytes.Load()}
	return stats, err
}

func pushBlob(ctx context.Context, src Source, dst *Repository, desc ocispec.Descriptor, o PushOptions, uploadedN, skippedN, mountedN, bytesN *atomic.Int64) error {
	has, err := dst.HasBlob(ctx, desc)
	if err != nil {
		return fmt.Errorf("checking for blob %s in %s: %w", desc.Digest, dst.Name, err)
	}
	if has {
		skippedN.Add(1)
		o.Progress.Add(desc.Size)
		return nil
	}
	open := func() (io.ReadCloser, error) { return src.Blob(ctx, desc) }
	var sent atomic.Int64 // the transport's body writer counts too
	res, err := dst.upload(ctx, desc, o.MountFrom, open, func(n int64) { sent.Add(n); bytesN.Add(n); o.Progress.Add(n) })
	if err != nil {
		return err
	}
	if res == mounted {
		mountedN.Add(1)
		o.Progress.Add(desc.Size)
	} else {
		uploadedN.Add(1)
		// What an earlier process sent (a resumed session) is done too.
		o.Progress.Add(max(0, desc.Size-sent.Load()))
	}
	return nil
}

// PushManifests uploads every manifest of im, children (by digest) before the
// index that lists them, the root last under tag (by digest when tag is "").
func PushManifests(ctx context.Context, im *Image, dst *Repository, tag string) error {
	for _, m := range im.Manifests {
		ref := m.Digest.String()
		if m.Digest == im.Root.Digest && tag != "" {
			ref = tag
		}
		if err := dst.PutManifest(ctx, ref, m.MediaType, im.Raw[m.Digest]); err != nil {
			return err
		}
	}
	return nil
}
