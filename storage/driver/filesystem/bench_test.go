package filesystem_test

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/signet-oss/signet/storage/driver"
)

// manifestSize is a typical image manifest's size: the object a manifest GET reads.
const manifestSize = 2 << 10

// BenchmarkGetContent measures the manifest GET's storage call.
func BenchmarkGetContent(b *testing.B) {
	d := newDriver(b, b.TempDir())
	const path = "/repositories/library/app/_manifests/revisions/sha256/abcdef/data"
	if _, err := d.PutContent(b.Context(), path, bytes.Repeat([]byte{'m'}, manifestSize)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(manifestSize)
	for b.Loop() {
		if _, _, err := d.GetContent(b.Context(), path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutContent measures a durable 2 KiB write (temp file, fsync, rename,
// directory fsync), unconditional and compare-and-swap.
func BenchmarkPutContent(b *testing.B) {
	data := bytes.Repeat([]byte{'m'}, manifestSize)
	b.Run("unconditional", func(b *testing.B) {
		d := newDriver(b, b.TempDir())
		b.ReportAllocs()
		b.SetBytes(manifestSize)
		i := 0
		for b.Loop() {
			if _, err := d.PutContent(b.Context(), "/repositories/app/tags/t"+strconv.Itoa(i%64), data); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("if-match", func(b *testing.B) {
		d := newDriver(b, b.TempDir())
		const path = "/repositories/app/tags/latest"
		v, err := d.PutContent(b.Context(), path, data)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(manifestSize)
		for b.Loop() {
			data[0]++ // a new content, hence a new version, each time
			if v, err = d.PutContentIf(b.Context(), path, data, driver.Condition{IfMatch: v}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
