package trustd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-oss/signet/internal/httpmetrics"
	"github.com/signet-oss/signet/internal/observe"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/trustd/tuf"
)

// What trustd tells its operators: /healthz and /readyz on its main listener,
// always; Prometheus metrics on a listener of their own when metrics.addr is
// set. It hangs off seams (a wrapping handler, a router middleware, a wrapping
// driver, one note from the token endpoint), so the handlers stay as they are.

// metricsNamespace prefixes every trustd metric.
const metricsNamespace = "signet_trustd"

// MetricsConfig configures the metrics listener (the metrics.* keys).
type MetricsConfig struct {
	// Addr is where /metrics is served, apart from the API (metrics.addr,
	// default empty: no metrics; flag --metrics-addr). Port 0 picks a free port,
	// logged as "metrics listening".
	Addr string `yaml:"addr"`
}

// validateObservability checks the metrics.* keys.
func (c Config) validateObservability() []error {
	if a := c.Metrics.Addr; a != "" && a == c.Addr && !strings.HasSuffix(a, ":0") {
		return []error{fmt.Errorf("metrics.addr: %s is the API's addr: metrics need a listener of their own", a)}
	}
	return nil
}

// Token grant types and outcomes, the label values of the token counter.
var (
	tokenGrants   = []string{"anonymous", "basic", "password", "refresh_token", "other"}
	tokenOutcomes = []string{"issued", "invalid", "denied", "rate_limited", "error"}
)

// tokenOutcome names what a token request's status means.
func tokenOutcome(status int) string {
	switch {
	case status == http.StatusOK:
		return "issued"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "denied"
	case status == http.StatusTooManyRequests:
		return "rate_limited"
	case status >= 500:
		return "error"
	}
	return "invalid"
}

// observability is trustd's health checks and, with metrics.addr, its metrics.
type observability struct {
	*observe.Base
	tokens map[[2]string]prometheus.Counter // nil without metrics
}

// newObservability binds the metrics listener, if any. Once ctx is done,
// /readyz answers 503 "shutting down".
func newObservability(ctx context.Context, cfg Config, log *slog.Logger) (*observability, error) {
	base, err := observe.New(ctx, cfg.Metrics.Addr, metricsNamespace, "trustd", log)
	if err != nil {
		return nil, err
	}
	o := &observability{Base: base}
	if o.Reg == nil {
		return o, nil
	}
	tokens := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "tokens_total",
		Help: "Token requests, by grant type (anonymous, basic, password, refresh_token, other) and outcome (issued, invalid, denied, rate_limited, error).",
	}, []string{"grant", "outcome"})
	if err := o.Reg.Register(tokens); err != nil {
		o.Close()
		return nil, err
	}
	o.tokens = map[[2]string]prometheus.Counter{}
	for _, g := range tokenGrants {
		for _, out := range tokenOutcomes {
			o.tokens[[2]string{g, out}] = tokens.WithLabelValues(g, out)
		}
	}
	return o, nil
}

// attach adds s's readiness checks (storage, TUF metadata, token signing key)
// and, with metrics, instruments it. Call it before serving.
func (o *observability) attach(s *Server, d driver.Driver) error {
	o.Health.Add("storage", func(ctx context.Context) error {
		if _, err := d.Stat(ctx, signingKeyPath); err != nil && !errors.Is(err, driver.ErrNotFound) {
			return fmt.Errorf("storage (%s) does not answer: %w", d.Name(), err)
		}
		return nil
	})
	o.Health.Add("tuf", func(ctx context.Context) error {
		if err := s.tuf.Health(ctx); err != nil && !errors.Is(err, tuf.ErrNotInitialised) {
			return err
		}
		return nil // before trustctl init there is nothing to serve stale
	})
	o.Health.Add("keys", func(ctx context.Context) error {
		// A token signed now must verify against the keys trustd publishes:
		// the signing key is loaded and usable, and the JWKS names it.
		tok, _, err := s.issuer.Issue("readyz", s.cfg.Service, nil)
		if err != nil {
			return fmt.Errorf("the token signing key cannot sign: %w", err)
		}
		if _, err := s.verifier.Verify(ctx, tok); err != nil {
			return fmt.Errorf("a token signed now does not verify against the published keys: %w", err)
		}
		return nil
	})
	return o.Instrument(httpmetrics.Config{
		Namespace:  metricsNamespace,
		Router:     s.router,
		RouteLabel: routeLabel,
		Done:       o.requestDone,
	})
}

// requestDone counts token requests by the grant the endpoint noted.
func (o *observability) requestDone(route string, status int, grant string) {
	if route != "token" {
		return
	}
	c, ok := o.tokens[[2]string{grant, tokenOutcome(status)}]
	if !ok {
		c = o.tokens[[2]string{"other", tokenOutcome(status)}]
	}
	c.Inc()
}

// routeLabel names a route by the fixed segments of its path template, less
// the api/v1 prefixes and file extensions: /token is "token",
// /api/v1/orgs/{org}/robots is "orgs_robots", /tuf/{file} is "tuf".
func routeLabel(tpl string) string {
	// Variables ({name} or {name:pattern}, whose pattern may hold slashes) go first.
	var b strings.Builder
	depth := 0
	for _, c := range tpl {
		switch {
		case c == '{':
			depth++
		case c == '}' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(c)
		}
	}
	var parts []string
	for _, seg := range strings.Split(b.String(), "/") {
		if seg == "" || seg == "api" || seg == "v1" || seg == ".well-known" {
			continue
		}
		if i := strings.IndexByte(seg, '.'); i > 0 {
			seg = seg[:i]
		}
		parts = append(parts, strings.ReplaceAll(seg, "-", "_"))
	}
	return strings.Join(parts, "_")
}
