package registry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/registry/storage"
)

// BenchmarkManifestGetObserved is BenchmarkManifestGet through what Serve
// adds around the API when metrics are on: the metrics and health handlers,
// the timed driver and the audit listener. The difference is their cost.
func BenchmarkManifestGetObserved(b *testing.B) {
	cfg := Defaults()
	cfg.Data = b.TempDir()
	cfg.Metrics.Addr = "127.0.0.1:0"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	obs, err := newObservability(ctx, cfg, log)
	if err != nil {
		b.Fatal(err)
	}
	store, err := obs.openStore(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	api, err := NewServer(store, log, nil)
	if err != nil {
		b.Fatal(err)
	}
	api.EnableAudit(audit.New(store.Driver(), AuditRoot, "registry"))
	if err := obs.attach(api, nil, cfg); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(obs.Handler(api))
	defer srv.Close()
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
