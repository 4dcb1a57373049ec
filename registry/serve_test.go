package registry

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
)

func TestAFailedStartReleasesTheMetricsAddress(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := probe.Addr().String()
	probe.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Defaults()
	cfg.Data = t.TempDir()
	cfg.Metrics.Addr = metricsAddr
	// A certificate that does not exist fails the start after the metrics
	// address is bound.
	cfg.TLS.Cert, cfg.TLS.Key = filepath.Join(t.TempDir(), "missing.crt"), filepath.Join(t.TempDir(), "missing.key")
	if err := ServeListener(context.Background(), cfg, ln, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Fatal("the registry started with a missing certificate")
	}
	again, err := net.Listen("tcp", metricsAddr)
	if err != nil {
		t.Fatalf("the metrics address is still bound after the failed start: %v", err)
	}
	again.Close()
}
