package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
)

// readCounter counts the reads of manifest records.
type readCounter struct {
	driver.Driver
	manifestReads atomic.Int64
}

func (c *readCounter) GetContent(ctx context.Context, path string) ([]byte, string, error) {
	if strings.Contains(path, "/_manifests/") {
		c.manifestReads.Add(1)
	}
	return c.Driver.GetContent(ctx, path)
}

// TestManifestByTagCached: a GET by tag reads the manifest's record once, then
// only the tag; a tag moved or removed by another store on the same storage is
// seen at once, and so is a manifest deleted there.
func TestManifestByTagCached(t *testing.T) {
	ctx := t.Context()
	mem := inmemory.New()
	c := &readCounter{Driver: mem}
	s, err := New(ctx, c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(ctx, mem, Options{}) // another replica
	if err != nil {
		t.Fatal(err)
	}
	body := func(n int) []byte {
		return fmt.Appendf(nil, `{"schemaVersion":2,"config":%s,"layers":[],"annotations":{"n":"%d"}}`, testConfig, n)
	}
	info, err := s.PutManifest(ctx, "acme/app", "v1", MediaTypeOCIManifest, body(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.manifestReads.Store(0)
	for range 3 {
		m, err := s.GetManifest(ctx, "acme/app", "v1")
		if err != nil || m.Digest != info.Digest || string(m.Content) != string(body(1)) || m.MediaType != MediaTypeOCIManifest {
			t.Fatalf("GET by tag: %+v, %v", m, err)
		}
	}
	if n := c.manifestReads.Load(); n != 1 {
		t.Fatalf("3 GETs by tag read the manifest record %d times, want once", n)
	}
	// A caller changing what it got does not change the cache.
	m, _ := s.GetManifest(ctx, "acme/app", "v1")
	m.MediaType = "a/b"
	if m, _ := s.GetManifest(ctx, "acme/app", "v1"); m.MediaType != MediaTypeOCIManifest {
		t.Fatalf("the cached record changed with a caller's copy: %q", m.MediaType)
	}

	// The other replica moves the tag: seen at once.
	info2, err := other.PutManifest(ctx, "acme/app", "v1", MediaTypeOCIManifest, body(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := s.GetManifest(ctx, "acme/app", "v1"); err != nil || m.Digest != info2.Digest {
		t.Fatalf("GET by tag after another replica moved it: %v, %v; want %s", m, err, info2.Digest)
	}
	// ... and deletes the manifest the tag points at: gone at once, by tag and by digest.
	if err := other.DeleteManifest(ctx, "acme/app", info2.Digest); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"v1", info2.Digest.String()} {
		if _, err := s.GetManifest(ctx, "acme/app", ref); !errors.Is(err, ErrManifestUnknown) {
			t.Fatalf("GET %s after another replica deleted it: %v; want ErrManifestUnknown", ref, err)
		}
	}
}
