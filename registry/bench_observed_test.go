package registry

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/signet-oss/signet/audit/auditlog"
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
	api.EnableAudit(auditlog.New(store.Driver(), AuditRoot, "registry"))
	if err := obs.attach(api, nil, cfg); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(obs.Handler(api))
	defer srv.Close()
	benchManifestGets(b, srv)
}
