package registry

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
)

// The writes of a signed referrer's admission: how many wait in a row, and
// in which order they land.

// orderedWrites is a driver that watches the writes of one signed referrer's
// PUT: the admission record's write must start while the manifest's is still
// in flight (they wait for one sync together, not two in a row), and the tag
// must move only once both are stored.
type orderedWrites struct {
	driver.Driver
	admittedStarted chan struct{}
	once            sync.Once
	mu              sync.Mutex
	problems        []string
}

func (d *orderedWrites) problem(p string) {
	d.mu.Lock()
	d.problems = append(d.problems, p)
	d.mu.Unlock()
}

func (d *orderedWrites) PutContent(ctx context.Context, path string, data []byte) (string, error) {
	if strings.Contains(path, "/_admitted/") {
		d.once.Do(func() { close(d.admittedStarted) })
	}
	return d.Driver.PutContent(ctx, path, data)
}

func (d *orderedWrites) PutContentIf(ctx context.Context, path string, data []byte, cond driver.Condition) (string, error) {
	switch {
	case strings.Contains(path, "/acme/app/_manifests/") && strings.Contains(string(data), "dev.cosignproject.cosign/signature"):
		// The manifest's write holds its sync until the record's write has
		// started beside it.
		select {
		case <-d.admittedStarted:
		case <-time.After(5 * time.Second):
			d.problem("the admission record's write did not start while the manifest's was in flight")
		}
	case strings.Contains(path, "/acme/app/_tags/") && strings.HasSuffix(path, ".sig"):
		dg := digest.Digest(data)
		if _, _, err := d.Driver.GetContent(ctx, "/v1/repos/acme/app/_manifests/"+string(dg.Algorithm())+"/"+dg.Encoded()); err != nil {
			d.problem("the tag moved before the manifest was stored: " + err.Error())
		}
		if _, _, err := d.Driver.GetContent(ctx, "/v1/repos/acme/app/_admitted/"+string(dg.Algorithm())+"/"+dg.Encoded()); err != nil {
			d.problem("the tag moved before the admission record was stored: " + err.Error())
		}
	}
	return d.Driver.PutContentIf(ctx, path, data, cond)
}

// TestASignedReferrerIsStoredAndRecordedSideBySideThenTagged: the manifest
// and the admission record of a signed referrer are written concurrently, and
// its tag moves only after both (see storage.PutAdmittedManifest for why that
// is crash safe).
func TestASignedReferrerIsStoredAndRecordedSideBySideThenTagged(t *testing.T) {
	t.Parallel()
	d := &orderedWrites{Driver: inmemory.New(), admittedStarted: make(chan struct{})}
	s := newSigningOn(t, d)
	a := s.cosign(t, s.alice, nil)
	if r := s.put(t, s.sigTag(), a.Manifest); r.status != 201 {
		t.Fatalf("alice's signature artifact: %d %s", r.status, r.body)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.problems {
		t.Error(p)
	}
	if r := do(t, s.srv, "GET", "/v2/acme/app/manifests/"+s.sigTag(), nil, nil); r.status != 200 || digest.FromBytes(r.body) != a.Digest {
		t.Errorf("GET of the signature tag: %d, want alice's artifact", r.status)
	}
}

// TestAnAdmissionRecordWithoutItsManifestMakesNothingVisible: the state a
// crash between the two side-by-side writes can leave (the record stored, the
// manifest not) serves nothing: not the digest, not a referrer, not a blob.
func TestAnAdmissionRecordWithoutItsManifestMakesNothingVisible(t *testing.T) {
	t.Parallel()
	s := newSigning(t)
	a := s.cosign(t, s.alice, nil)
	if err := s.store.MarkAdmitted(context.Background(), "acme/app", a.Digest, s.subject); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(1100 * time.Millisecond)
	if r := do(t, s.srv, "GET", "/v2/acme/app/manifests/"+a.Digest.String(), nil, nil); r.status != 404 {
		t.Errorf("GET of the recorded but unstored artifact: %d, want 404", r.status)
	}
	for b := range a.Blobs {
		if status := getBlob(t, s, b); status != 404 {
			t.Errorf("GET of blob %s of the recorded but unstored artifact: %d, want 404", b, status)
		}
	}
	// Its PUT then admits it whole.
	if r := s.put(t, s.sigTag(), a.Manifest); r.status != 201 {
		t.Fatalf("alice's signature artifact: %d %s", r.status, r.body)
	}
	for b := range a.Blobs {
		if status := getBlob(t, s, b); status != 200 {
			t.Errorf("GET of blob %s once the artifact is stored: %d, want 200", b, status)
		}
	}
}
