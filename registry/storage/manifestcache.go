package storage

import (
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// manifestCache keeps the manifest records a GET by tag read, so the next GET of
// the tag reads only the tag. A record is content-addressed: its bytes are fixed
// by its digest, and a digest keeps the media type of its first PUT (see
// writeManifest). It is served from the cache only after a fresh read of the tag
// named it: a tag is set only once its manifest is stored and removed before it
// is deleted (DeleteManifest), so a tag that points at d says that d is there,
// even when another process deleted and stored it again meanwhile. Only records
// whose content matches their digest are kept. An entry expires after
// manifestCacheTTL, which bounds how long a manifest deleted by another replica
// and pushed again with another media type keeps its old one here.
type manifestCache struct {
	mu    sync.RWMutex
	m     map[manifestKey]cachedManifest
	bytes int
}

type manifestKey struct {
	repo string
	d    digest.Digest
}

type cachedManifest struct {
	m    Manifest
	time time.Time
}

const (
	manifestCacheTTL = time.Minute
	// manifestCacheBytes bounds the cache's content; manifestCacheMaxItem keeps
	// large manifests (indexes of many platforms) out of it.
	manifestCacheBytes   = 32 << 20
	manifestCacheMaxItem = 64 << 10
)

// get returns a copy of the cached record of repo's manifest d.
func (c *manifestCache) get(repo string, d digest.Digest) (*Manifest, bool) {
	c.mu.RLock()
	e, ok := c.m[manifestKey{repo, d}]
	c.mu.RUnlock()
	if !ok || time.Since(e.time) > manifestCacheTTL {
		return nil, false
	}
	m := e.m
	return &m, true
}

// put keeps m (repo's manifest m.Digest) if its content matches its digest.
func (c *manifestCache) put(repo string, m *Manifest) {
	if len(m.Content) > manifestCacheMaxItem || m.Digest.Validate() != nil || m.Digest.Algorithm().FromBytes(m.Content) != m.Digest {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || c.bytes+len(m.Content) > manifestCacheBytes {
		c.m, c.bytes = make(map[manifestKey]cachedManifest), 0
	}
	k := manifestKey{repo, m.Digest}
	if old, ok := c.m[k]; ok {
		c.bytes -= len(old.m.Content)
	}
	c.m[k] = cachedManifest{m: *m, time: time.Now()}
	c.bytes += len(m.Content)
}

// drop forgets repo's manifest d.
func (c *manifestCache) drop(repo string, d digest.Digest) {
	c.mu.Lock()
	if old, ok := c.m[manifestKey{repo, d}]; ok {
		c.bytes -= len(old.m.Content)
		delete(c.m, manifestKey{repo, d})
	}
	c.mu.Unlock()
}
