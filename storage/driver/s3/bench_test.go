package s3_test

import (
	"strconv"
	"testing"

	"github.com/signet-oss/signet/storage/driver"
)

// The benchmarks run against versitygw on loopback, so they measure the driver's
// requests and the server's work, not a network. Run them with
//
//	go test -run '^$' -bench . -benchtime 5x ./storage/driver/s3/

// BenchmarkSmallContent is the tag and link traffic: 2 KiB objects.
func BenchmarkSmallContent(b *testing.B) {
	d := newDriver(b, "")
	ctx := b.Context()
	data := pattern(3, 2<<10)
	b.Run("PutContent", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for i := 0; b.Loop(); i++ {
			if _, err := d.PutContent(ctx, "/small/"+strconv.Itoa(i%64), data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetContent", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for i := 0; b.Loop(); i++ {
			if _, _, err := d.GetContent(ctx, "/small/"+strconv.Itoa(i%64)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// write streams size bytes into a new Writer at path in 1 MiB writes (the
// registry's copy buffer) and commits it.
func write(b *testing.B, d driver.Driver, path string, size int) {
	chunk := pattern(5, 1<<20)
	w, err := d.Writer(b.Context(), path, false, 0)
	if err != nil {
		b.Fatal(err)
	}
	for n := 0; n < size; n += len(chunk) {
		if _, err := w.Write(chunk[:min(len(chunk), size-n)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Commit(b.Context()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkBlobCommit is a blob upload as the registry does it: Writer, Commit,
// then Move out of the upload area, which on S3 is a server-side copy. The Move
// sub-benchmarks time that copy (and the delete) alone.
func BenchmarkBlobCommit(b *testing.B) {
	d := newDriver(b, "")
	ctx := b.Context()
	const size = 64 << 20
	b.Run("WriterCommitMove/64MiB", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			up := "/uploads/" + strconv.Itoa(i) + "/data"
			write(b, d, up, size)
			if err := d.Move(ctx, up, "/blobs/wcm/"+strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("WriterCommit/64MiB", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			write(b, d, "/uploads/wc/"+strconv.Itoa(i), size)
		}
	})
	for _, size := range []int{64 << 20, 256 << 20} {
		b.Run("Move/"+strconv.Itoa(size>>20)+"MiB", func(b *testing.B) {
			b.SetBytes(int64(size))
			up := "/uploads/move/data"
			for i := 0; ; i++ {
				b.StopTimer()
				write(b, d, up, size)
				b.StartTimer()
				if !b.Loop() {
					break
				}
				if err := d.Move(ctx, up, "/blobs/move/"+strconv.Itoa(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
