// Package storage is the registry's domain layer: repositories of blobs, manifests,
// tags and referrers, and resumable upload sessions, laid out on a storage driver
// (paths.go draws the layout).
//
// Main invariants:
//   - Content becomes visible only by an atomic commit after its digest and size are
//     checked: a blob by Move from its upload session, a manifest or tag by an atomic
//     PutContent. A process killed at any point leaves no partial blob, manifest or
//     tag visible, and a later push of the same content succeeds.
//   - A blob is hashed once, while it streams in; the hash state is saved with each
//     chunk (or, for a session's small first chunk put whole, recomputed from its
//     bytes), so an upload resumes after a restart or on another replica.
//   - The Store keeps no state of its own beyond caches of immutable content, so any
//     number of registry processes can share one driver.
package storage

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/signet-oss/signet/storage/driver"
)

// Options tune a Store. The zero value takes the defaults.
type Options struct {
	// MaxManifestSize is the largest manifest accepted, in bytes (default 4 MiB,
	// the size the OCI distribution spec asks every registry to accept).
	MaxManifestSize int64
}

// DefaultMaxManifestSize is the default of Options.MaxManifestSize.
const DefaultMaxManifestSize = 4 << 20

// Store is a registry's content on one storage driver. It is safe for concurrent use.
type Store struct {
	d         driver.Driver
	opts      Options
	uploadKey []byte
	// uploadLocks serialises requests on one upload session within this process.
	uploadLocks [64]sync.Mutex
	// indirect: the driver's Move copies, so blobs are recorded, not moved
	// (blobbytes.go).
	indirect bool
	refs     refCache
	// manifests caches manifest records for GETs by tag (manifestcache.go).
	manifests manifestCache
}

// New opens a Store on d, creating the upload signing key on first use.
func New(ctx context.Context, d driver.Driver, opts Options) (*Store, error) {
	if opts.MaxManifestSize <= 0 {
		opts.MaxManifestSize = DefaultMaxManifestSize
	}
	s := &Store{d: d, opts: opts}
	if mc, ok := d.(driver.MoveCopier); ok && mc.MoveCopies() {
		s.indirect = true
	}
	key, err := loadOrCreateKey(ctx, d, uploadKeyPath())
	if err != nil {
		return nil, fmt.Errorf("upload signing key: %w", err)
	}
	s.uploadKey = key
	if !s.indirect {
		// A session's bytes are moved out of the upload area when it ends,
		// leaving nothing behind; the directory must stay, or the filesystem
		// driver would prune it and the next session pay to create and sync
		// it again.
		_, err := d.PutContentIf(ctx, uploadKeepPath(), nil, driver.Condition{IfAbsent: true})
		if err != nil && !errors.Is(err, driver.ErrPreconditionFailed) {
			return nil, fmt.Errorf("upload area: %w", err)
		}
	}
	return s, nil
}

// Driver returns the storage driver under the store.
func (s *Store) Driver() driver.Driver { return s.d }

// MaxManifestSize is the largest manifest the store accepts.
func (s *Store) MaxManifestSize() int64 { return s.opts.MaxManifestSize }

// loadOrCreateKey returns the 32-byte key at p, creating it if absent. Replicas
// racing to create it agree on one key through put-if-absent.
func loadOrCreateKey(ctx context.Context, d driver.Driver, p string) ([]byte, error) {
	for range 3 {
		key, _, err := d.GetContent(ctx, p)
		if err == nil {
			if len(key) != 32 {
				return nil, fmt.Errorf("%s holds %d bytes, want 32", p, len(key))
			}
			return key, nil
		}
		if !errors.Is(err, driver.ErrNotFound) {
			return nil, err
		}
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		_, err = d.PutContentIf(ctx, p, key, driver.Condition{IfAbsent: true})
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, driver.ErrPreconditionFailed) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%s: could not settle on a key", p)
}

// exists reports whether an object exists at p.
func (s *Store) exists(ctx context.Context, p string) (bool, error) {
	_, err := s.d.Stat(ctx, p)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, driver.ErrNotFound) {
		return false, nil
	}
	return false, err
}

// ReadSeekCloser is what OpenBlob returns: an http.ServeContent-friendly reader.
type ReadSeekCloser interface {
	io.ReadSeeker
	io.Closer
}
