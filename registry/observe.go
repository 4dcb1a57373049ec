package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-oss/signet/internal/httpmetrics"
	"github.com/signet-oss/signet/internal/observe"
	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/verify"
)

// What the registry tells its operators: /healthz and /readyz on its main
// listener, always; Prometheus metrics on a listener of their own when
// metrics.addr is set. Everything here hangs off seams (a wrapping handler, a
// router middleware, the event listeners, a wrapping driver), so the API's
// handlers know nothing of it.

// MetricsConfig configures the metrics listener (the metrics.* keys).
type MetricsConfig struct {
	// Addr is where /metrics is served, apart from the API (metrics.addr,
	// default empty: no metrics; flag --metrics-addr). Port 0 picks a free port,
	// logged as "metrics listening".
	Addr string `yaml:"addr"`
}

// Defaults of the trust freshness bound.
const (
	defaultRefreshInterval = 30 * time.Second
	stalenessIntervals     = 3
)

// refreshEvery is the trust refresh interval, its default filled in.
func (c TrustConfig) refreshEvery() time.Duration {
	if c.RefreshInterval > 0 {
		return c.RefreshInterval
	}
	return defaultRefreshInterval
}

// maxStaleness is the trust freshness bound, its default filled in.
func (c TrustConfig) maxStaleness() time.Duration {
	if c.MaxStaleness > 0 {
		return c.MaxStaleness
	}
	return stalenessIntervals * c.refreshEvery()
}

// validateObservability checks the metrics.* and trust.maxStaleness keys.
func (c Config) validateObservability() []error {
	var errs []error
	switch {
	case c.Trust.MaxStaleness < 0:
		errs = append(errs, errors.New("trust.maxStaleness: must not be negative"))
	case c.Trust.MaxStaleness > 0 && c.Trust.MaxStaleness < c.Trust.refreshEvery():
		errs = append(errs, fmt.Errorf("trust.maxStaleness: %s is shorter than trust.refreshInterval (%s), so readiness would flap between refreshes", c.Trust.MaxStaleness, c.Trust.refreshEvery()))
	}
	if a := c.Metrics.Addr; a != "" && a == c.Addr && !strings.HasSuffix(a, ":0") {
		errs = append(errs, fmt.Errorf("metrics.addr: %s is the API's addr: metrics need a listener of their own", a))
	}
	return errs
}

// observability is the health checks of a running registry and, when
// metrics.addr is set, its metrics.
type observability struct {
	*observe.Base
	metrics *registryMetrics // nil without metrics
}

// newObservability binds the metrics listener, if any. ctx is the registry's:
// once it is done, /readyz answers 503 "shutting down".
func newObservability(ctx context.Context, cfg Config, log *slog.Logger) (*observability, error) {
	base, err := observe.New(ctx, cfg.Metrics.Addr, metricsNamespace, "registry", log)
	if err != nil {
		return nil, err
	}
	o := &observability{Base: base}
	if o.Reg != nil {
		if o.metrics, err = newRegistryMetrics(o.Reg); err != nil {
			o.Close()
			return nil, err
		}
	}
	return o, nil
}

// openStore is OpenStore with the driver timed when metrics are on.
func (o *observability) openStore(ctx context.Context, cfg Config) (*storage.Store, error) {
	d, err := cfg.Storage.Open(ctx, cfg.Data)
	if err != nil {
		return nil, err
	}
	return storage.New(ctx, o.WrapDriver(d), storage.Options{MaxManifestSize: cfg.MaxManifestSize})
}

// attach adds the readiness checks of api (storage; trust metadata when the
// gate is on; token keys when token authentication is on) and, with metrics,
// instruments it. Call it once the gate is enabled, before serving.
func (o *observability) attach(api *Server, index *verify.Index, cfg Config) error {
	o.Health.Add("storage", api.store.Ping)
	if index != nil {
		maxAge := cfg.Trust.maxStaleness()
		o.Health.Add("trust", func(context.Context) error { return trustFresh(index, maxAge, index.Now()) })
	}
	if api.auth != nil {
		o.Health.Add("keys", api.auth.verifier.Ready)
	}
	if o.Reg == nil {
		return nil
	}
	if err := o.Instrument(httpmetrics.Config{
		Namespace:  metricsNamespace,
		Router:     api.router,
		RouteLabel: routeLabel,
		Bytes:      true,
		InFlight: func(route, method string) prometheus.Gauge {
			if route == "upload" && (method == http.MethodPatch || method == http.MethodPut) {
				return o.metrics.uploadsInFlight
			}
			return nil
		},
	}); err != nil {
		return err
	}
	api.OnEvent(o.metrics.event)
	if index != nil {
		if err := o.Reg.Register(trustAgeCollector{index: index, desc: trustAgeDesc}); err != nil {
			return err
		}
	}
	return nil
}

// gcDone records a garbage collection's outcome.
func (o *observability) gcDone(rep *storage.GCReport, err error) {
	if o.metrics != nil {
		o.metrics.gc(rep, err)
	}
}

// trustFresh fails when the last successful refresh from trustd is older than
// maxAge, or the verified metadata expired.
func trustFresh(index *verify.Index, maxAge time.Duration, now time.Time) error {
	_, expires, lastErr := index.Status()
	last := index.LastSuccess()
	why := ""
	if lastErr != nil {
		why = ": " + lastErr.Error()
	}
	switch {
	case !expires.IsZero() && !now.Before(expires):
		return fmt.Errorf("the trust metadata expired at %s%s", expires.UTC().Format(time.RFC3339), why)
	case last.IsZero():
		return fmt.Errorf("no refresh of the trust metadata from trustd has succeeded yet%s", why)
	case now.Sub(last) > maxAge:
		return fmt.Errorf("the trust metadata is stale: last refreshed from trustd %s ago, over trust.maxStaleness (%s)%s",
			now.Sub(last).Round(time.Second), maxAge, why)
	}
	return nil
}

// routeLabel names the API's routes for the route label.
func routeLabel(tpl string) string {
	switch {
	case tpl == "/token":
		return "token"
	case tpl == "/.well-known/signet.json":
		return "discovery"
	case tpl == "/v2/":
		return "base"
	case tpl == "/v2/_catalog":
		return "catalog"
	case tpl == "/signet/v1/audit":
		return "audit"
	case strings.HasSuffix(tpl, "/tags/list"):
		return "tags"
	case strings.Contains(tpl, "/manifests/"):
		return "manifest"
	case strings.Contains(tpl, "/blobs/uploads/"):
		return "upload"
	case strings.Contains(tpl, "/blobs/"):
		return "blob"
	case strings.Contains(tpl, "/referrers/"):
		return "referrers"
	}
	return ""
}
