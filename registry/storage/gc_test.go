package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
)

func newStore(t *testing.T) *Store { return newStoreOn(t, inmemory.New()) }

func newStoreOn(t *testing.T, d driver.Driver) *Store {
	t.Helper()
	s, err := New(context.Background(), d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// copyingDriver is a driver whose Move copies, as on S3: the store then records
// blobs instead of moving them.
type copyingDriver struct{ driver.Driver }

func (copyingDriver) MoveCopies() bool { return true }

// bothModes runs f on a store that moves blobs into place and on one that
// records where they are.
func bothModes(t *testing.T, f func(t *testing.T, s *Store)) {
	t.Run("moved", func(t *testing.T) { f(t, newStoreOn(t, inmemory.New())) })
	t.Run("recorded", func(t *testing.T) {
		s := newStoreOn(t, copyingDriver{inmemory.New()})
		if !s.indirect {
			t.Fatal("the store did not see that Move copies")
		}
		f(t, s)
	})
}

func putBlob(t *testing.T, s *Store, repo string, content []byte) digest.Digest {
	t.Helper()
	ctx := context.Background()
	id, err := s.NewUpload(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(content)
	if _, err := s.CommitUpload(ctx, repo, id, Chunk{Start: -1, Length: int64(len(content)), Body: bytes.NewReader(content)}, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// putImage pushes a config and a layer and a manifest referencing them.
func putImage(t *testing.T, s *Store, repo, ref, seed string) (digest.Digest, []digest.Digest) {
	t.Helper()
	config := []byte(`{"seed":"` + seed + `"}`)
	layer := []byte("layer " + seed)
	cd, ld := putBlob(t, s, repo, config), putBlob(t, s, repo, layer)
	m := fmt.Appendf(nil, `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`, cd, len(config), ld, len(layer))
	info, err := s.PutManifest(context.Background(), repo, ref, MediaTypeOCIManifest, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	return info.Digest, []digest.Digest{cd, ld}
}

func later(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }

func TestGCFreesOnlyUnreferencedBlobsOlderThanTheGrace(t *testing.T) {
	bothModes(t, testGCFreesOnlyUnreferenced)
}

func testGCFreesOnlyUnreferenced(t *testing.T, s *Store) {
	ctx := context.Background()
	_, kept := putImage(t, s, "acme/app", "v1", "a")
	orphan := putBlob(t, s, "acme/app", []byte("orphan"))

	// Young garbage stays.
	rep, err := s.GC(ctx, GCOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.LinksDeleted != 0 || rep.BlobsDeleted != 0 {
		t.Fatalf("young blobs were collected: %+v", rep)
	}
	// A dry run reports and deletes nothing.
	rep, err = s.GC(ctx, GCOptions{Grace: time.Hour, Now: later(2 * time.Hour), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.LinksDeleted != 1 || rep.BlobsDeleted != 1 || rep.BytesFreed != int64(len("orphan")) {
		t.Fatalf("dry run: %+v", rep)
	}
	if _, err := s.StatBlob(ctx, "acme/app", orphan); err != nil {
		t.Fatalf("a dry run deleted: %v", err)
	}
	rep, err = s.GC(ctx, GCOptions{Grace: time.Hour, Now: later(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.LinksDeleted != 1 || rep.BlobsDeleted != 1 {
		t.Fatalf("report: %+v", rep)
	}
	if _, err := s.StatBlob(ctx, "acme/app", orphan); err == nil {
		t.Fatal("the orphan survived")
	}
	for _, d := range kept {
		if _, err := s.StatBlob(ctx, "acme/app", d); err != nil {
			t.Fatalf("a referenced blob was collected: %v", err)
		}
	}
}

func TestGCKeepsBytesThatAnotherRepositoryLinks(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	shared := putBlob(t, s, "a/one", []byte("shared"))
	if _, err := s.MountBlob(ctx, "b/two", "a/one", shared); err != nil {
		t.Fatal(err)
	}
	putImage(t, s, "b/two", "v1", "x")
	// b/two's manifest does not reference shared: both links are garbage, and
	// then the bytes too.
	rep, err := s.GC(ctx, GCOptions{Grace: time.Hour, Now: later(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.LinksDeleted != 2 || rep.BlobsDeleted != 1 {
		t.Fatalf("report: %+v", rep)
	}
}

func TestGCDeletesUntaggedManifestsOnlyWhenAsked(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tagged, _ := putImage(t, s, "acme/app", "v1", "tagged")
	untagged, _ := putImage(t, s, "acme/app", "v2", "untagged")
	if err := s.DeleteTag(ctx, "acme/app", "v2"); err != nil {
		t.Fatal(err)
	}
	// An index that a tag reaches keeps its child; a referrer of a kept
	// manifest is kept too.
	child, _ := putImage(t, s, "acme/app", "tmp", "child")
	s.DeleteTag(ctx, "acme/app", "tmp")
	index := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":1}]}`, MediaTypeOCIIndex, MediaTypeOCIManifest, child)
	if _, err := s.PutManifest(ctx, "acme/app", "multi", MediaTypeOCIIndex, index, nil); err != nil {
		t.Fatal(err)
	}
	sbom := fmt.Appendf(nil, `{"schemaVersion":2,"artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[],"subject":{"mediaType":%q,"digest":%q,"size":1}}`,
		digest.FromString("{}"), MediaTypeOCIManifest, tagged)
	sbomInfo, err := s.PutManifest(ctx, "acme/app", digest.FromBytes(sbom).String(), MediaTypeOCIManifest, sbom, nil)
	if err != nil {
		t.Fatal(err)
	}

	if rep, err := s.GC(ctx, GCOptions{Grace: time.Hour, Now: later(2 * time.Hour)}); err != nil || rep.ManifestsDeleted != 0 {
		t.Fatalf("without DeleteUntagged: %+v %v", rep, err)
	}
	rep, err := s.GC(ctx, GCOptions{Grace: time.Hour, Now: later(2 * time.Hour), DeleteUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ManifestsDeleted != 1 {
		t.Fatalf("report: %+v", rep)
	}
	if _, err := s.GetManifest(ctx, "acme/app", untagged.String()); err == nil {
		t.Fatal("the untagged manifest survived")
	}
	for _, d := range []digest.Digest{tagged, child, sbomInfo.Digest} {
		if _, err := s.GetManifest(ctx, "acme/app", d.String()); err != nil {
			t.Fatalf("%s was collected: %v", d, err)
		}
	}
}

func TestGCRemovesStaleUploadSessions(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	id, _ := s.NewUpload(ctx, "acme/app")
	if _, err := s.AppendUpload(ctx, "acme/app", id, Chunk{Start: -1, Length: 3, Body: strings.NewReader("abc")}); err != nil {
		t.Fatal(err)
	}
	if rep, _ := s.GC(ctx, GCOptions{UploadGrace: time.Hour}); rep.UploadsDeleted != 0 {
		t.Fatalf("a live session was collected: %+v", rep)
	}
	rep, err := s.GC(ctx, GCOptions{UploadGrace: time.Hour, Now: later(2 * time.Hour)})
	if err != nil || rep.UploadsDeleted != 1 {
		t.Fatalf("stale session: %+v %v", rep, err)
	}
	if _, err := s.UploadStatus(ctx, "acme/app", id); err != nil {
		// A removed session looks fresh again (offset 0) or unknown; either way
		// its bytes are gone.
		return
	}
	if off, _ := s.UploadStatus(ctx, "acme/app", id); off != 0 {
		t.Fatalf("a collected session still holds %d bytes", off)
	}
}

// GC running over and over during 100 concurrent pushes loses nothing that a
// pushed manifest references.
func TestGCDuringConcurrentPushesLosesNothingReferenced(t *testing.T) {
	bothModes(t, testGCDuringConcurrentPushes)
}

func testGCDuringConcurrentPushes(t *testing.T, s *Store) {
	ctx := context.Background()
	stop := make(chan struct{})
	gcDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				gcDone <- nil
				return
			default:
			}
			if _, err := s.GC(ctx, GCOptions{Grace: 2 * time.Second, DeleteUntagged: true}); err != nil {
				gcDone <- err
				return
			}
		}
	}()
	type pushed struct {
		repo, tag string
		blobs     []digest.Digest
	}
	results := make([]pushed, 100)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("load/r%d", i%7)
			tag := fmt.Sprintf("t%d", i)
			_, blobs := putImage(t, s, repo, tag, fmt.Sprint(i))
			results[i] = pushed{repo, tag, blobs}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	for _, p := range results {
		if _, err := s.GetManifest(ctx, p.repo, p.tag); err != nil {
			t.Fatalf("%s:%s lost: %v", p.repo, p.tag, err)
		}
		for _, d := range p.blobs {
			rc, _, err := s.OpenBlob(ctx, p.repo, d)
			if err != nil {
				t.Fatalf("%s blob %s lost: %v", p.repo, d, err)
			}
			rc.Close()
		}
	}
}

func TestARecordedBlobIsReadFromWhereItWasWritten(t *testing.T) {
	ctx := context.Background()
	mem := inmemory.New()
	s := newStoreOn(t, copyingDriver{mem})
	_, blobs := putImage(t, s, "acme/app", "v1", "moves")
	d := blobs[1]
	content := []byte("layer moves")
	rc, size, err := s.OpenBlob(ctx, "acme/app", d)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if size != int64(len(content)) || !bytes.Equal(got, content) {
		t.Fatalf("read %q (%d), want %q", got, size, content)
	}
	if _, err := mem.Stat(ctx, blobPath(d)); err == nil {
		t.Fatal("the bytes were moved to blobs/ although Move copies")
	}
	// A second push of the same blob points the record at its own bytes; a
	// replica holding the old record in its cache still reads after the old
	// bytes are collected.
	other := newStoreOn(t, copyingDriver{mem})
	if _, _, err := other.OpenBlob(ctx, "acme/app", d); err != nil {
		t.Fatal(err)
	}
	putBlob(t, s, "acme/app", content)
	if _, err := s.GC(ctx, GCOptions{Grace: time.Hour, Now: later(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	rc, _, err = other.OpenBlob(ctx, "acme/app", d)
	if err != nil {
		t.Fatalf("a replica with a stale record: %v", err)
	}
	got, _ = io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, content) {
		t.Fatalf("a replica with a stale record read %q", got)
	}
}

func TestAChunkedUploadCommitsInBothModes(t *testing.T) {
	bothModes(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		content := bytes.Repeat([]byte("chunk "), 1000)
		id, _ := s.NewUpload(ctx, "acme/app")
		if _, err := s.AppendUpload(ctx, "acme/app", id, Chunk{Start: 0, Length: 3000, Body: bytes.NewReader(content[:3000])}); err != nil {
			t.Fatal(err)
		}
		d := digest.FromBytes(content)
		if _, err := s.CommitUpload(ctx, "acme/app", id, Chunk{Start: 3000, Length: 3000, Body: bytes.NewReader(content[3000:])}, d); err != nil {
			t.Fatal(err)
		}
		rc, _, err := s.OpenBlob(ctx, "acme/app", d)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if got, _ := io.ReadAll(rc); !bytes.Equal(got, content) {
			t.Fatalf("read %d bytes back, want the %d pushed", len(got), len(content))
		}
		if _, err := s.UploadStatus(ctx, "acme/app", id); err == nil {
			t.Fatal("the committed session is still open")
		}
	})
}
