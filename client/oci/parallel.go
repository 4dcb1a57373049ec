package oci

import (
	"context"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// forEachBlob runs fn on every blob with at most jobs at once. The first error
// stops the others (their context is cancelled) and is returned; otherwise the
// error is ctx's, if it ended meanwhile.
func forEachBlob(ctx context.Context, jobs int, blobs []ocispec.Descriptor, fn func(context.Context, ocispec.Descriptor) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	queue := make(chan ocispec.Descriptor)
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for desc := range queue {
				if err := fn(ctx, desc); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
	for _, b := range blobs {
		select {
		case queue <- b:
		case <-ctx.Done():
		}
	}
	close(queue)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
