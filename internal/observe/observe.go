// Package observe is what the registry and trustd share of telling their
// operators how they are: the readiness checks behind /healthz and /readyz,
// always, and, when a metrics address is set, a registry of Prometheus
// metrics with the storage driver timed, served on a listener of its own.
// Each server adds its own checks and metrics to it.
package observe

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-oss/signet/internal/health"
	"github.com/signet-oss/signet/internal/httpmetrics"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/instrumented"
)

// Base is one server's observability.
type Base struct {
	Log    *slog.Logger
	Health *health.Checker
	// Reg holds the server's metrics; it, Driver and HTTP are nil without a
	// metrics address.
	Reg    *prometheus.Registry
	Driver *instrumented.Metrics
	// HTTP, the request metrics, is set by Instrument.
	HTTP *httpmetrics.Metrics
	ln   *httpmetrics.Listener
}

// New returns the observability of the server named server ("registry",
// "trustd"), whose metrics are named under namespace. With metricsAddr it binds
// that address at once, so a bad one fails the start; Close releases it.
// Once ctx is done, /readyz answers 503 "shutting down".
func New(ctx context.Context, metricsAddr, namespace, server string, log *slog.Logger) (*Base, error) {
	b := &Base{Log: log, Health: health.New(ctx)}
	if metricsAddr == "" {
		return b, nil
	}
	b.Reg = httpmetrics.NewRegistry()
	var err error
	if b.Driver, err = instrumented.NewMetrics(b.Reg, namespace); err != nil {
		return nil, err
	}
	if b.ln, err = httpmetrics.Listen(metricsAddr, server, b.Reg, log); err != nil {
		return nil, err
	}
	return b, nil
}

// WrapDriver times d when metrics are on.
func (b *Base) WrapDriver(d driver.Driver) driver.Driver {
	if b.Driver == nil {
		return d
	}
	return instrumented.Wrap(d, b.Driver)
}

// Instrument counts the requests of api, whose router is cfg.Router, when
// metrics are on (cfg.Namespace is filled in by the caller).
func (b *Base) Instrument(cfg httpmetrics.Config) error {
	if b.Reg == nil {
		return nil
	}
	m, err := httpmetrics.New(b.Reg, cfg)
	if err != nil {
		return err
	}
	b.HTTP = m
	return nil
}

// Handler is api behind the probes and, with metrics, instrumented.
func (b *Base) Handler(api http.Handler) http.Handler {
	if b.HTTP != nil {
		api = b.HTTP.Handler(api)
	}
	return b.Health.Handler(api)
}

// Start serves the metrics until ctx is done.
func (b *Base) Start(ctx context.Context) {
	if b.ln == nil {
		return
	}
	go func() {
		if err := b.ln.Serve(ctx); err != nil {
			b.Log.Error("metrics listener failed", "err", err)
		}
	}()
}

// Close releases the metrics address, once the server stops or fails to
// start.
func (b *Base) Close() {
	if b.ln != nil {
		b.ln.Close()
	}
}
