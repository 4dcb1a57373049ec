package registry

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-oss/signet/internal/health"
)

// newObservedServer runs the registry's handler as Serve builds it, on the
// filesystem driver under data, with metrics on.
func newObservedServer(t *testing.T, data string) (*httptest.Server, *observability) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg := Defaults()
	cfg.Data = data
	cfg.Metrics.Addr = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	obs, err := newObservability(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	obs.Start(ctx)
	store, err := obs.openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	api, err := NewServer(store, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := obs.attach(api, nil, cfg); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(obs.Handler(api))
	t.Cleanup(srv.Close)
	return srv, obs
}

// readyz polls /readyz until it answers want (the result is cached for about
// a second), and returns the last report.
func readyz(t *testing.T, srv *httptest.Server, want int) health.Report {
	t.Helper()
	var rep health.Report
	var status int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		rep = health.Report{}
		err = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("/readyz body: %v", err)
		}
		if status = resp.StatusCode; status == want {
			return rep
		}
	}
	t.Fatalf("/readyz answered %d, want %d; last report %+v", status, want, rep)
	return rep
}

func check(rep health.Report, name string) (health.Result, bool) {
	for _, c := range rep.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return health.Result{}, false
}

// A data directory replaced by a symbolic link loop is a storage failure root
// cannot bypass: /readyz says so, and recovers when the directory is back.
func TestReadyzFollowsStorage(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	srv, _ := newObservedServer(t, data)

	rep := readyz(t, srv, http.StatusOK)
	if c, ok := check(rep, "storage"); !ok || !c.OK || rep.Status != "ready" {
		t.Fatalf("healthy registry: %+v, want ready with an ok storage check", rep)
	}
	if _, ok := check(rep, "trust"); ok {
		t.Errorf("a registry without a trust root reports a trust check: %+v", rep)
	}

	if err := os.Rename(data, data+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("data", data); err != nil { // data -> data: ELOOP
		t.Fatal(err)
	}
	rep = readyz(t, srv, http.StatusServiceUnavailable)
	c, _ := check(rep, "storage")
	if rep.Status != "not ready" || c.OK || !strings.Contains(c.Reason, "too many levels of symbolic links") {
		t.Errorf("storage failing: %+v, want not ready with the storage check's reason", rep)
	}

	if err := os.Remove(data); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(data+".away", data); err != nil {
		t.Fatal(err)
	}
	rep = readyz(t, srv, http.StatusOK)
	if c, _ := check(rep, "storage"); !c.OK || c.Reason != "" {
		t.Errorf("storage back: %+v, want an ok storage check without a reason", rep)
	}

	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %s, want 200", resp.Status)
	}
}

// sample returns the value of the metric name with exactly labels (a counter's
// value, a histogram's sample count, a gauge's value), and whether it exists.
func sample(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func TestRequestsAreCountedUnderTheirRoute(t *testing.T) {
	srv, obs := newObservedServer(t, filepath.Join(t.TempDir(), "data"))
	blob := []byte(strings.Repeat("layer bytes ", 1000))
	d := digest.FromBytes(blob)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v2/acme/app/blobs/uploads/?digest="+d.String(), strings.NewReader(string(blob)))
	req.Header.Set("Content-Type", "application/octet-stream")
	for _, r := range []struct {
		req  *http.Request
		want int
	}{
		{req, http.StatusCreated},
		{mustRequest(t, http.MethodGet, srv.URL+"/v2/acme/app/blobs/"+d.String()), http.StatusOK},
		{mustRequest(t, http.MethodGet, srv.URL+"/v2/acme/app/manifests/latest"), http.StatusNotFound},
		{mustRequest(t, http.MethodGet, srv.URL+"/v2/acme/app/manifests/latest"), http.StatusNotFound},
		{mustRequest(t, http.MethodGet, srv.URL+"/no/such/endpoint"), http.StatusNotFound},
		{mustRequest(t, http.MethodGet, srv.URL+"/readyz"), http.StatusOK},
	} {
		resp, err := http.DefaultClient.Do(r.req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != r.want {
			t.Fatalf("%s %s: %s, want %d", r.req.Method, r.req.URL.Path, resp.Status, r.want)
		}
	}

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"signet_registry_http_requests_total", map[string]string{"route": "upload", "method": "POST", "status": "201"}, 1},
		{"signet_registry_http_requests_total", map[string]string{"route": "blob", "method": "GET", "status": "200"}, 1},
		{"signet_registry_http_requests_total", map[string]string{"route": "manifest", "method": "GET", "status": "404"}, 2},
		{"signet_registry_http_requests_total", map[string]string{"route": "other", "method": "GET", "status": "404"}, 1},
		{"signet_registry_http_request_duration_seconds", map[string]string{"route": "manifest", "method": "GET"}, 2},
		{"signet_registry_http_request_duration_seconds", map[string]string{"route": "blob", "method": "GET"}, 1},
		{"signet_registry_uploads_in_flight", nil, 0},
	} {
		got, ok := sample(t, obs.Reg, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := sample(t, obs.Reg, "signet_registry_http_requests_total", map[string]string{"route": "other", "method": "GET", "status": "200"}); ok {
		t.Error("a /readyz probe was counted as an API request")
	}
	for _, name := range []string{"signet_registry_http_received_bytes_total", "signet_registry_http_sent_bytes_total"} {
		if got, _ := sample(t, obs.Reg, name, nil); got < float64(len(blob)) {
			t.Errorf("%s = %v, want at least the blob's %d bytes", name, got, len(blob))
		}
	}
	if got, _ := sample(t, obs.Reg, "signet_registry_storage_operation_duration_seconds", map[string]string{"operation": "stat"}); got == 0 {
		t.Error("no storage stat was timed")
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestMetricsConfigIsValidated(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"a negative staleness bound", func(c *Config) { c.Trust.MaxStaleness = -time.Second }, "trust.maxStaleness"},
		{"a staleness bound under the refresh interval", func(c *Config) { c.Trust.MaxStaleness = time.Second }, "trust.maxStaleness"},
		{"metrics on the API's own address", func(c *Config) { c.Metrics.Addr = c.Addr }, "metrics.addr"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Defaults()
			c.edit(&cfg)
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate: %v, want an error naming %s", err, c.want)
			}
		})
	}
}

// The trust check and the trust age gauge read the index's clock, the one its
// refresh times are on.
func TestTrustStalenessIsMeasuredOnTheIndexClock(t *testing.T) {
	g := newGated(t)
	cfg := Defaults()
	cfg.Metrics.Addr = "127.0.0.1:0"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	obs, err := newObservability(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { obs.Close() })
	api, err := NewServer(g.store, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := obs.attach(api, g.index, cfg); err != nil {
		t.Fatal(err)
	}
	maxAge := cfg.Trust.maxStaleness()
	g.clock.Advance(2 * maxAge)
	if c, _ := check(obs.Health.Report(ctx), "trust"); c.OK || !strings.Contains(c.Reason, "stale") {
		t.Errorf("the trust check %s after the last refresh (index clock): %+v, want stale", 2*maxAge, c)
	}
	families, err := obs.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var age float64
	for _, f := range families {
		if f.GetName() == metricsNamespace+"_trust_metadata_age_seconds" {
			age = f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if age < (2 * maxAge).Seconds() {
		t.Errorf("trust metadata age %.0fs, want at least %.0fs", age, (2 * maxAge).Seconds())
	}
}
