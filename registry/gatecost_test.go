package registry

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
)

// The gate's cost on pulls, counted in storage reads, never timed.

// countingReads is a driver that counts, while armed, the records read under
// the repositories' _admitted and _manifests directories and the blobs opened
// for their bytes.
type countingReads struct {
	driver.Driver
	armed                     atomic.Bool
	records, manifests, blobs atomic.Int64
	listings                  atomic.Int64 // of admission records' names
}

func (d *countingReads) List(ctx context.Context, path string) ([]string, error) {
	if d.armed.Load() && strings.Contains(path, "/_admitted") {
		d.listings.Add(1)
	}
	return d.Driver.List(ctx, path)
}

func (d *countingReads) GetContent(ctx context.Context, path string) ([]byte, string, error) {
	if d.armed.Load() {
		switch {
		case strings.Contains(path, "/_admitted/"):
			d.records.Add(1)
		case strings.Contains(path, "/_manifests/"):
			d.manifests.Add(1)
		}
	}
	return d.Driver.GetContent(ctx, path)
}

func (d *countingReads) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if d.armed.Load() && strings.HasPrefix(path, "/v1/blobs/") {
		d.blobs.Add(1)
	}
	return d.Driver.Reader(ctx, path, offset)
}

// count runs f with the counters at zero and armed, and returns what it read.
func (d *countingReads) count(f func()) (records, manifests, blobs int64) {
	d.records.Store(0)
	d.manifests.Store(0)
	d.blobs.Store(0)
	d.listings.Store(0)
	d.armed.Store(true)
	f()
	d.armed.Store(false)
	return d.records.Load(), d.manifests.Load(), d.blobs.Load()
}

// admitSignatures pushes n cosign signature artifacts of the subject by alice,
// by digest, and returns them.
func admitSignatures(t *testing.T, s *signing, n int) []*signer.CosignArtifact {
	t.Helper()
	var out []*signer.CosignArtifact
	for range n {
		a := s.cosign(t, s.alice, nil)
		if r := s.put(t, a.Digest.String(), a.Manifest); r.status != 201 {
			t.Fatalf("alice's signature artifact by digest: %d %s", r.status, r.body)
		}
		out = append(out, a)
	}
	return out
}

func getBlob(t *testing.T, s *signing, d digest.Digest) int {
	t.Helper()
	return do(t, s.srv, "GET", "/v2/acme/app/blobs/"+d.String(), nil, nil).status
}

// TestAPullReadsNoAdmissionRecordItAlreadyKnows: a pull in an enforced
// repository with many admitted signed referrers costs a listing of their
// records' names once a second, not a read of each record nor a check of each
// artifact; another replica's admission still shows within the second, at
// the cost of reading its one record.
func TestAPullReadsNoAdmissionRecordItAlreadyKnows(t *testing.T) {
	t.Parallel()
	d := &countingReads{Driver: inmemory.New()}
	s := newSigningOn(t, d)
	layer := digest.FromString("layer signed")
	arts := admitSignatures(t, s, 20)
	if status := getBlob(t, s, layer); status != 200 {
		t.Fatalf("GET of the signed image's layer: %d", status)
	}
	s.clock.Advance(1100 * time.Millisecond)
	records, manifests, blobs := d.count(func() {
		if status := getBlob(t, s, layer); status != 200 {
			t.Fatalf("GET of the layer a second later: %d", status)
		}
	})
	if records != 0 || manifests != 0 || blobs != 1 || d.listings.Load() != 0 {
		t.Errorf("a GET of one blob a second later read %d admission records, %d manifests and %d blobs, and listed the records %d times; want 0, 0, the blob itself and no listing (a blob in the set stays served while the view is the same)", records, manifests, blobs, d.listings.Load())
	}
	// A blob outside the set makes the gate list the records' names again,
	// and read none it knows.
	records, manifests, _ = d.count(func() {
		if status := getBlob(t, s, digest.FromString("no such blob")); status != 404 {
			t.Fatalf("GET of a blob no manifest references: %d", status)
		}
	})
	if records != 0 || manifests != 0 {
		t.Errorf("a miss a second later read %d admission records and %d manifests; want 0 and 0", records, manifests)
	}

	// Another replica on the same storage admits one more artifact.
	// (Named from another host, its payload and config are its own.)
	other, err := signer.SignCosign("replica.example:5000/acme/app", s.subject, s.alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range other.Blobs {
		pushBlob(t, s.srv, "acme/app", b)
	}
	if _, err := s.store.PutManifest(context.Background(), "acme/app", other.Digest.String(), other.MediaType, other.Manifest, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.store.MarkAdmitted(context.Background(), "acme/app", other.Digest, s.subject); err != nil {
		t.Fatal(err)
	}
	config := configOf(t, other.Manifest)
	if config == configOf(t, arts[0].Manifest) {
		t.Fatal("two artifacts share a config: the test cannot tell whose blobs are served")
	}
	if status := getBlob(t, s, config); status != 404 {
		t.Fatalf("GET of the other replica's artifact's config before this one looked: %d, want 404 (the set is under a second old)", status)
	}
	s.clock.Advance(1100 * time.Millisecond)
	records, _, _ = d.count(func() {
		if status := getBlob(t, s, config); status != 200 {
			t.Errorf("GET of the other replica's artifact's config a second later: %d, want 200", status)
		}
	})
	if records != 1 {
		t.Errorf("learning of one new admission read %d admission records, want 1", records)
	}
}

// TestOneAdmissionDoesNotCostTheOthersTheirCheck: after this registry admits
// one more signed referrer, the next pull checks that one alone; the verdicts
// on the others hold (they are bound to the view and the key set).
func TestOneAdmissionDoesNotCostTheOthersTheirCheck(t *testing.T) {
	t.Parallel()
	d := &countingReads{Driver: inmemory.New()}
	s := newSigningOn(t, d)
	layer := digest.FromString("layer signed")
	admitSignatures(t, s, 20)
	if status := getBlob(t, s, layer); status != 200 {
		t.Fatalf("GET of the signed image's layer: %d", status)
	}
	admitSignatures(t, s, 1)
	// A blob outside the set makes the gate look at what was admitted since.
	_, _, blobs := d.count(func() {
		if status := getBlob(t, s, digest.FromString("no such blob")); status != 404 {
			t.Errorf("GET of a blob no manifest references: %d, want 404", status)
		}
	})
	// The new artifact's payload, read for its check, and nothing else.
	if blobs != 1 {
		t.Errorf("the GET after one more admission opened %d blobs; want 1 (the new artifact's payload), not a payload per admitted artifact", blobs)
	}
}

func configOf(t *testing.T, manifest []byte) digest.Digest {
	t.Helper()
	_, f, err := storage.ParseManifest(storage.MediaTypeOCIManifest, manifest)
	if err != nil {
		t.Fatal(err)
	}
	return f.Config.Digest
}
