package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/storage/driver/filesystem"
)

// The registry's own cost of the requests a small-image push makes and of a
// manifest GET, in process on the filesystem driver (make bench compares the
// whole server with the reference registry).

func newFSServer(b *testing.B) *httptest.Server {
	b.Helper()
	d, err := filesystem.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	store, err := storage.New(context.Background(), d, storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	api, err := NewServer(store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(api)
	b.Cleanup(srv.Close)
	return srv
}

func benchDo(b *testing.B, c *http.Client, method, url, ct string, body []byte, want int) {
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		b.Fatalf("%s %s: %d, want %d", method, url, resp.StatusCode, want)
	}
}

func BenchmarkSmallImagePush(b *testing.B) {
	srv := newFSServer(b)
	c := srv.Client()
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	var n atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			config := fmt.Appendf(nil, `{"n":%d}`, i)
			layer := make([]byte, 2048)
			rand.Read(layer)
			var ds []digest.Digest
			for _, blob := range [][]byte{config, layer} {
				d := digest.FromBytes(blob)
				ds = append(ds, d)
				benchDo(b, c, "HEAD", srv.URL+"/v2/bench/app/blobs/"+d.String(), "", nil, 404)
				benchDo(b, c, "POST", srv.URL+"/v2/bench/app/blobs/uploads/?digest="+d.String(), "", blob, 201)
			}
			m := imageManifest(ds[0], ds[1], len(config), len(layer))
			benchDo(b, c, "PUT", fmt.Sprintf("%s/v2/bench/app/manifests/t%d", srv.URL, i), storage.MediaTypeOCIManifest, m, 201)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pushes/s")
}

func BenchmarkManifestGet(b *testing.B) {
	benchManifestGets(b, newFSServer(b))
}

// benchManifestGets pushes a small image to srv and times parallel GETs of
// its manifest by tag.
func benchManifestGets(b *testing.B, srv *httptest.Server) {
	c := srv.Client()
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	config, layer := []byte(`{}`), []byte("layer")
	for _, blob := range [][]byte{config, layer} {
		benchDo(b, c, "POST", srv.URL+"/v2/bench/app/blobs/uploads/?digest="+digest.FromBytes(blob).String(), "", blob, 201)
	}
	m := imageManifest(digest.FromBytes(config), digest.FromBytes(layer), len(config), len(layer))
	benchDo(b, c, "PUT", srv.URL+"/v2/bench/app/manifests/latest", storage.MediaTypeOCIManifest, m, 201)
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchDo(b, c, "GET", srv.URL+"/v2/bench/app/manifests/latest", "", nil, 200)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "GETs/s")
}
