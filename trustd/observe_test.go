package trustd

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/signet-oss/signet/storage/driver/inmemory"
)

func TestRouteLabels(t *testing.T) {
	for tpl, want := range map[string]string{
		"/token":                            "token",
		"/.well-known/jwks.json":            "jwks",
		"/api/v1/orgs/{org}/members/{user}": "orgs_members",
		"/api/v1/orgs/{org}":                "orgs",
		"/tuf/api/online-keys":              "tuf_online_keys",
		"/tuf/api/metadata/{role}":          "tuf_metadata",
		"/tuf/{file:[^/]+\\.json}":          "tuf",
		"/api/v1/grants/{id}":               "grants",
		"/api/v1/orgs/{org}/robots/{name}":  "orgs_robots",
		"/api/v1/whoami":                    "whoami",
	} {
		if got := routeLabel(tpl); got != want {
			t.Errorf("routeLabel(%q) = %q, want %q", tpl, got, want)
		}
	}
}

// Token requests are counted by grant and outcome, and every request under
// its route, through the handler Serve builds.
func TestTokenRequestsAreCountedByGrantAndOutcome(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Defaults()
	cfg.Storage.Driver = "inmemory"
	cfg.AdminPassword = "correct-horse-battery"
	cfg.BcryptCost = 4
	cfg.Metrics.Addr = "127.0.0.1:0"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	obs, err := newObservability(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	obs.Start(ctx)
	d := obs.WrapDriver(inmemory.New())
	s, err := New(ctx, cfg, d, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := obs.attach(s, d); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(obs.Handler(s))
	defer srv.Close()

	send := func(req *http.Request, want int) {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %s, want %d", req.Method, req.URL, resp.Status, want)
		}
	}
	get := func(user, password string, want int) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/token?service=signet-registry&scope=repository:acme/app:pull", nil)
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		send(req, want)
	}
	post := func(form url.Values, want int) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		send(req, want)
	}
	get("admin", cfg.AdminPassword, http.StatusOK)
	get("admin", "wrong-password", http.StatusUnauthorized)
	get("", "", http.StatusOK)
	post(url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {cfg.AdminPassword}, "service": {"signet-registry"}}, http.StatusOK)
	post(url.Values{"grant_type": {"client_credentials"}, "service": {"signet-registry"}}, http.StatusBadRequest)
	send(mustGet(t, srv.URL+"/.well-known/jwks.json"), http.StatusOK)

	for _, c := range []struct {
		grant, outcome string
		want           float64
	}{
		{"basic", "issued", 1},
		{"basic", "denied", 1},
		{"anonymous", "issued", 1},
		{"password", "issued", 1},
		{"other", "invalid", 1},
		{"refresh_token", "issued", 0},
	} {
		if got := counter(t, obs, "signet_trustd_tokens_total", map[string]string{"grant": c.grant, "outcome": c.outcome}); got != c.want {
			t.Errorf("tokens{grant=%s,outcome=%s} = %v, want %v", c.grant, c.outcome, got, c.want)
		}
	}
	if got := counter(t, obs, "signet_trustd_http_requests_total", map[string]string{"route": "token", "method": "GET", "status": "200"}); got != 2 {
		t.Errorf("GET /token answered 200 counted %v times, want 2", got)
	}
	if got := counter(t, obs, "signet_trustd_http_requests_total", map[string]string{"route": "jwks", "method": "GET", "status": "200"}); got != 1 {
		t.Errorf("GET /.well-known/jwks.json counted %v times under jwks, want 1", got)
	}
}

func mustGet(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// counter returns the value of the counter name with exactly labels (0 when absent).
func counter(t *testing.T, obs *observability, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := obs.Reg.Gather()
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
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
