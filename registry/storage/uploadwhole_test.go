package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/filesystem"
)

// syncCounter counts a driver's durable writes by path: each whole-object put,
// Move and Writer Commit costs at least one sync and, but for Move, one file
// created.
type syncCounter struct {
	driver.Driver
	mu     sync.Mutex
	writes []string
}

func (c *syncCounter) note(op, p string) {
	c.mu.Lock()
	c.writes = append(c.writes, op+" "+p)
	c.mu.Unlock()
}

func (c *syncCounter) reset() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}

func (c *syncCounter) PutContent(ctx context.Context, p string, data []byte) (string, error) {
	c.note("put", p)
	return c.Driver.PutContent(ctx, p, data)
}

func (c *syncCounter) PutContentIf(ctx context.Context, p string, data []byte, cond driver.Condition) (string, error) {
	c.note("put", p)
	return c.Driver.PutContentIf(ctx, p, data, cond)
}

func (c *syncCounter) Move(ctx context.Context, src, dst string) error {
	c.note("move", dst)
	return c.Driver.Move(ctx, src, dst)
}

func (c *syncCounter) Writer(ctx context.Context, p string, resume bool, offset int64) (driver.FileWriter, error) {
	w, err := c.Driver.Writer(ctx, p, resume, offset)
	if err != nil {
		return nil, err
	}
	return &countedWriter{FileWriter: w, c: c, p: p}, nil
}

type countedWriter struct {
	driver.FileWriter
	c *syncCounter
	p string
}

func (w *countedWriter) Commit(ctx context.Context) error {
	w.c.note("commit", w.p)
	return w.FileWriter.Commit(ctx)
}

func newFilesystemStore(t *testing.T) (*Store, *syncCounter, string) {
	t.Helper()
	root := t.TempDir()
	fs, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	c := &syncCounter{Driver: fs}
	return newStoreOn(t, c), c, root
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// A small blob pushed as go-containerregistry pushes it (POST, one PATCH with
// the bytes, empty PUT ?digest=) costs three durable writes on the filesystem:
// its bytes, their move to the blob's path and the repository's link. It used
// to cost six (the data file, a state file, the data file's sync again at the
// PUT, the move, the link, a tombstone), and left the tombstone behind.
func TestSmallPushDurableWrites(t *testing.T) {
	s, c, root := newFilesystemStore(t)
	ctx := context.Background()
	content := randomBytes(t, 3000)
	d := digest.FromBytes(content)
	c.reset()
	id, err := s.NewUpload(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	for _, length := range []int64{int64(len(content)), -1} { // announced, then chunked
		if length < 0 {
			id, _ = s.NewUpload(ctx, "app")
		}
		off, err := s.AppendUpload(ctx, "app", id, Chunk{Start: -1, Length: length, Body: bytes.NewReader(content)})
		if err != nil || off != int64(len(content)) {
			t.Fatalf("PATCH: offset %d, %v", off, err)
		}
		if got, err := s.UploadStatus(ctx, "app", id); err != nil || got != off {
			t.Fatalf("status: %d, %v; want %d", got, err, off)
		}
		if _, err := s.CommitUpload(ctx, "app", id, Chunk{Start: -1, Length: 0, Body: bytes.NewReader(nil)}, d); err != nil {
			t.Fatal(err)
		}
		writes := c.reset()
		want := 3
		if length < 0 {
			want = 2 // the blob and its link are there already: a move, no link
		}
		if len(writes) != want {
			t.Errorf("Content-Length %d: %d durable writes, want %d: %q", length, len(writes), want, writes)
		}
	}
	left, err := os.ReadDir(filepath.Join(root, "v1", "uploads"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Name() != "keep" {
		t.Errorf("the finished sessions left files in uploads/: %v", left)
	}
	rc, _, err := s.OpenBlob(ctx, "app", d)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, content) {
		t.Fatal("the blob's bytes differ from those pushed")
	}
}

// A session whose first chunk was put whole goes on like any other: later
// chunks append, a chunk that breaks off keeps what arrived, a range that does
// not start at the offset is refused, and the blob has every byte.
func TestWholeFirstChunkResumes(t *testing.T) {
	s, _, _ := newFilesystemStore(t)
	ctx := context.Background()
	content := randomBytes(t, 5000)
	d := digest.FromBytes(content)
	id, _ := s.NewUpload(ctx, "app")
	if off, err := s.AppendUpload(ctx, "app", id, Chunk{Start: 0, Length: 1000, Body: bytes.NewReader(content[:1000])}); err != nil || off != 1000 {
		t.Fatalf("first chunk: %d, %v", off, err)
	}
	var rangeErr *RangeError
	if _, err := s.AppendUpload(ctx, "app", id, Chunk{Start: 0, Length: 10, Body: bytes.NewReader(content[:10])}); !errors.As(err, &rangeErr) || rangeErr.Offset != 1000 {
		t.Fatalf("chunk at 0 after 1000 bytes: %v, want a RangeError at 1000", err)
	}
	broken := io.MultiReader(bytes.NewReader(content[1000:1500]), errReader{io.ErrUnexpectedEOF})
	if _, err := s.AppendUpload(ctx, "app", id, Chunk{Start: 1000, Length: 2000, Body: broken}); !errors.Is(err, ErrUploadInterrupted) {
		t.Fatalf("broken chunk: %v, want ErrUploadInterrupted", err)
	}
	if off, err := s.UploadStatus(ctx, "app", id); err != nil || off != 1500 {
		t.Fatalf("after the broken chunk: offset %d, %v; want 1500", off, err)
	}
	if _, err := s.CommitUpload(ctx, "app", id, Chunk{Start: 1500, Length: 3500, Body: bytes.NewReader(content[1500:])}, d); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.OpenBlob(ctx, "app", d)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, content) {
		t.Fatal("the blob's bytes differ from those pushed")
	}
	if _, err := s.UploadStatus(ctx, "app", id); !errors.Is(err, ErrUploadUnknown) {
		t.Fatalf("status of the completed session: %v, want ErrUploadUnknown", err)
	}
}

// A whole first chunk whose digest does not match ends the session and leaves
// nothing.
func TestWholeFirstChunkDigestMismatch(t *testing.T) {
	s, _, root := newFilesystemStore(t)
	ctx := context.Background()
	content := randomBytes(t, 100)
	id, _ := s.NewUpload(ctx, "app")
	if _, err := s.AppendUpload(ctx, "app", id, Chunk{Start: -1, Length: 100, Body: bytes.NewReader(content)}); err != nil {
		t.Fatal(err)
	}
	var mismatch *DigestMismatchError
	if _, err := s.CommitUpload(ctx, "app", id, Chunk{Start: -1}, digest.FromString("other")); !errors.As(err, &mismatch) {
		t.Fatalf("commit under another digest: %v", err)
	}
	left, _ := os.ReadDir(filepath.Join(root, "v1", "uploads"))
	if len(left) != 1 || left[0].Name() != "keep" {
		t.Errorf("the failed session left files in uploads/: %v", left)
	}
}
