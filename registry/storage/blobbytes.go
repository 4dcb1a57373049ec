package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/storage/driver"
)

// Where a blob's bytes live.
//
// On a driver whose Move renames (the filesystem), an upload's bytes are written in
// the upload area and moved to blobs/<alg>/<xx>/<hex> at commit: a rename. On a
// driver whose Move copies (S3: a server-side copy, as slow as the upload itself),
// an upload's bytes are written at data/<id> and never move: the commit writes the
// small record blobrefs/<alg>/<xx>/<hex> naming them. Records are immutable in
// content (the bytes they name all have the blob's digest), so a reader caches them.

// blobRef is the JSON record at blobRefPath.
type blobRef struct {
	Data string `json:"data"`
	Size int64  `json:"size"`
}

// refCache caches blob records; an entry is trusted for refCacheTTL, well under
// the garbage collection grace period, so a replaced record's old bytes are never
// read after they may have been collected.
type refCache struct {
	mu sync.Mutex
	m  map[digest.Digest]cachedRef
}

type cachedRef struct {
	ref  blobRef
	time time.Time
}

const (
	refCacheTTL  = 10 * time.Minute
	refCacheSize = 100000
)

func (c *refCache) get(d digest.Digest) (blobRef, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[d]
	if !ok || time.Since(e.time) > refCacheTTL {
		return blobRef{}, false
	}
	return e.ref, true
}

func (c *refCache) put(d digest.Digest, r blobRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= refCacheSize {
		c.m = make(map[digest.Digest]cachedRef)
	}
	c.m[d] = cachedRef{ref: r, time: time.Now()}
}

func (c *refCache) drop(d digest.Digest) {
	c.mu.Lock()
	delete(c.m, d)
	c.mu.Unlock()
}

// blobBytes returns where blob d's bytes are and their size, or ErrBlobUnknown.
func (s *Store) blobBytes(ctx context.Context, d digest.Digest) (string, int64, error) {
	if !s.indirect {
		fi, err := s.d.Stat(ctx, blobPath(d))
		if errors.Is(err, driver.ErrNotFound) {
			return "", 0, fmt.Errorf("%w: %s", ErrBlobUnknown, d)
		}
		if err != nil {
			return "", 0, err
		}
		return blobPath(d), fi.Size, nil
	}
	if r, ok := s.refs.get(d); ok {
		return r.Data, r.Size, nil
	}
	data, _, err := s.d.GetContent(ctx, blobRefPath(d))
	if errors.Is(err, driver.ErrNotFound) {
		return "", 0, fmt.Errorf("%w: %s", ErrBlobUnknown, d)
	}
	if err != nil {
		return "", 0, err
	}
	var r blobRef
	if err := json.Unmarshal(data, &r); err != nil || !driver.ValidPath(r.Data) {
		return "", 0, fmt.Errorf("blob record %s is corrupt", d)
	}
	s.refs.put(d, r)
	return r.Data, r.Size, nil
}

// uploadBytesPath is where session id writes its bytes.
func (s *Store) uploadBytesPath(id string) string {
	if s.indirect {
		return dataDir() + "/" + id
	}
	return uploadDataPath(id)
}

// commitBlob makes an upload session's synced bytes at src (size bytes, digest
// d) the blob d.
// Even when the blob exists, the fresh bytes take its place (same content): that
// renews its age, so a concurrent garbage collection that found it unlinked and
// old cannot take it from under the link the caller makes next.
func (s *Store) commitBlob(ctx context.Context, src string, d digest.Digest, size int64) error {
	if !s.indirect {
		return s.d.Move(ctx, src, blobPath(d))
	}
	r := blobRef{Data: src, Size: size}
	rec, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := s.d.PutContent(ctx, blobRefPath(d), rec); err != nil {
		return err
	}
	s.refs.put(d, r)
	return nil
}
