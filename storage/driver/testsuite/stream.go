package testsuite

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/signet-oss/signet/storage/driver"
)

func testReaderOffsets(t *testing.T, d driver.Driver) {
	const path, data = "/reader/object", "0123456789"
	put(t, d, path, data)
	cases := []struct {
		name    string
		offset  int64
		want    string
		wantErr error
	}{
		{"offset zero reads everything", 0, data, nil},
		{"a middle offset reads the rest", 4, data[4:], nil},
		{"the last byte's offset reads one byte", 9, data[9:], nil},
		{"the end offset reads nothing", 10, "", nil},
		{"an offset past the end is rejected", 11, "", driver.ErrInvalidOffset},
		{"a negative offset is rejected", -1, "", driver.ErrInvalidOffset},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := d.Reader(t.Context(), path, tc.offset)
			if tc.wantErr != nil {
				if err == nil {
					r.Close()
				}
				wantErr(t, "Reader", err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Reader: %v", err)
			}
			if got := readAll(t, r); got != tc.want {
				t.Fatalf("read %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("an empty object reads empty at offset zero", func(t *testing.T) {
		put(t, d, "/reader/empty", "")
		r, err := d.Reader(t.Context(), "/reader/empty", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, r); got != "" {
			t.Fatalf("read %q, want nothing", got)
		}
	})
}

// write writes each chunk to w, failing the test on error or a short write.
func write(t *testing.T, w driver.FileWriter, chunks ...string) {
	t.Helper()
	for _, c := range chunks {
		n, err := w.Write([]byte(c))
		if err != nil || n != len(c) {
			t.Fatalf("Write(%q) = %d, %v", c, n, err)
		}
	}
}

func wantSize(t *testing.T, w driver.FileWriter, want int64) {
	t.Helper()
	if got := w.Size(); got != want {
		t.Fatalf("Size() = %d, want %d", got, want)
	}
}

func testWriter(t *testing.T, d driver.Driver) {
	ctx := t.Context()
	open := func(t *testing.T, path string, resume bool, offset int64) driver.FileWriter {
		t.Helper()
		w, err := d.Writer(ctx, path, resume, offset)
		if err != nil {
			t.Fatalf("Writer(%s, resume=%v, %d): %v", path, resume, offset, err)
		}
		return w
	}

	t.Run("a new writer appends and commits", func(t *testing.T) {
		w := open(t, "/uploads/new/data", false, 0)
		wantSize(t, w, 0)
		write(t, w, "hello ", "world")
		wantSize(t, w, 11)
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		wantContent(t, d, "/uploads/new/data", "hello world")
	})

	t.Run("written bytes are readable at the path before Commit", func(t *testing.T) {
		w := open(t, "/uploads/visible/data", false, 0)
		write(t, w, "partial")
		wantContent(t, d, "/uploads/visible/data", "partial")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a new writer over an existing object starts empty", func(t *testing.T) {
		put(t, d, "/uploads/replace/data", "previous content")
		w := open(t, "/uploads/replace/data", false, 0)
		wantSize(t, w, 0)
		write(t, w, "new")
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		wantContent(t, d, "/uploads/replace/data", "new")
	})

	t.Run("Close keeps the bytes and a resumed writer appends to them", func(t *testing.T) {
		w := open(t, "/uploads/resume/data", false, 0)
		write(t, w, "first,")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		wantContent(t, d, "/uploads/resume/data", "first,")
		w = open(t, "/uploads/resume/data", true, 6)
		wantSize(t, w, 6)
		write(t, w, "second")
		wantSize(t, w, 12)
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		wantContent(t, d, "/uploads/resume/data", "first,second")
	})

	t.Run("resuming truncates the bytes past the offset", func(t *testing.T) {
		w := open(t, "/uploads/stray/data", false, 0)
		write(t, w, "keep", "STRAY")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w = open(t, "/uploads/stray/data", true, 4)
		wantSize(t, w, 4)
		wantContent(t, d, "/uploads/stray/data", "keep")
		write(t, w, "+more")
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		wantContent(t, d, "/uploads/stray/data", "keep+more")
	})

	t.Run("resuming at offset zero discards everything", func(t *testing.T) {
		put(t, d, "/uploads/zero/data", "old")
		w := open(t, "/uploads/zero/data", true, 0)
		write(t, w, "fresh")
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		wantContent(t, d, "/uploads/zero/data", "fresh")
	})

	t.Run("resuming past the end is rejected and changes nothing", func(t *testing.T) {
		put(t, d, "/uploads/short/data", "abc")
		w, err := d.Writer(ctx, "/uploads/short/data", true, 4)
		if err == nil {
			w.Close()
		}
		wantErr(t, "Writer past the end", err, driver.ErrInvalidOffset)
		wantContent(t, d, "/uploads/short/data", "abc")
	})

	t.Run("resuming a missing object fails with ErrNotFound", func(t *testing.T) {
		w, err := d.Writer(ctx, "/uploads/missing/data", true, 0)
		if err == nil {
			w.Close()
		}
		wantErr(t, "Writer resume of a missing object", err, driver.ErrNotFound)
	})

	t.Run("Cancel removes the object and its emptied directories", func(t *testing.T) {
		put(t, d, "/uploads/cancel/keep", "sibling")
		w := open(t, "/uploads/cancel/session/data", false, 0)
		write(t, w, "doomed")
		if err := w.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		wantMissing(t, d, "/uploads/cancel/session/data")
		_, err := d.Stat(ctx, "/uploads/cancel/session")
		wantErr(t, "Stat of the emptied directory", err, driver.ErrNotFound)
		wantContent(t, d, "/uploads/cancel/keep", "sibling")
	})

	t.Run("a finished writer refuses further use", func(t *testing.T) {
		w := open(t, "/uploads/done/data", false, 0)
		write(t, w, "x")
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("y")); err == nil {
			t.Error("Write after Commit succeeded")
		}
		if err := w.Commit(ctx); err == nil {
			t.Error("a second Commit succeeded")
		}
		if err := w.Cancel(ctx); err == nil {
			t.Error("Cancel after Commit succeeded")
		}
		wantContent(t, d, "/uploads/done/data", "x")
	})
}

// testLargeRoundTrip streams 32 MiB of random bytes through a Writer in 1 MiB
// writes, moves the object out of the upload area, and reads it back.
func testLargeRoundTrip(t *testing.T, d driver.Driver) {
	const size, chunk = 32 << 20, 1 << 20
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, chunk)
	want := sha256.New()
	w, err := d.Writer(ctx, "/uploads/large/data", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	for w.Size() < size {
		for i := 0; i < len(buf); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		want.Write(buf)
		write(t, w, string(buf))
	}
	wantSize(t, w, size)
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Move(ctx, "/uploads/large/data", "/blobs/large/data"); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, d, "/uploads/large/data")
	fi, err := d.Stat(ctx, "/blobs/large/data")
	if err != nil || fi.Size != size || fi.IsDir {
		t.Fatalf("Stat = %+v, %v; want an object of %d bytes", fi, err, size)
	}
	r, err := d.Reader(ctx, "/blobs/large/data", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, r)
	r.Close()
	if err != nil || n != size {
		t.Fatalf("read %d bytes, %v; want %d", n, err, size)
	}
	if string(got.Sum(nil)) != string(want.Sum(nil)) {
		t.Fatal("the bytes read differ from the bytes written")
	}

	// A read from the middle matches the written stream at that offset.
	r, err = d.Reader(ctx, "/blobs/large/data", size-chunk)
	if err != nil {
		t.Fatal(err)
	}
	if tail := readAll(t, r); tail != string(buf) {
		t.Fatal("the last chunk read at its offset differs from the one written")
	}
}
