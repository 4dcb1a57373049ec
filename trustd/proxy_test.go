package trustd_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/signet-oss/signet/tokenauth"
	"github.com/signet-oss/signet/trustd"
)

const testProxySecret = "proxy-secret-for-tests-0123456789"

// failLogins sends n failed logins (a different unknown user each time, so only
// the per-client limit can bite) naming client in X-Forwarded-For (a fresh
// address per attempt when client is "rotate"), with secret in the proxy secret
// header when not empty. It returns the statuses.
func (e *env) failLogins(n int, client, secret string) []int {
	e.t.Helper()
	var statuses []int
	for i := range n {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/token?service="+registrySvc, nil)
		req.SetBasicAuth("nobody-"+strconv.Itoa(i), "guess-"+strconv.Itoa(i))
		xff := client
		if client == "rotate" {
			xff = "198.51.100." + strconv.Itoa(i+1)
		}
		req.Header.Set("X-Forwarded-For", xff)
		if secret != "" {
			req.Header.Set(tokenauth.ProxySecretHeader, secret)
		}
		statuses = append(statuses, e.do(req).status)
	}
	return statuses
}

func TestForwardedForIsBelievedOnlyFromAnAuthenticatedHop(t *testing.T) {
	limits := func(c *trustd.Config) {
		c.RateLimit = trustd.RateLimitConfig{UserFailures: 100, IPFailures: 3}
		c.TrustedProxies = trustd.Defaults().TrustedProxies // no one, as shipped
		c.ProxySecret = testProxySecret
	}
	cases := []struct {
		name   string
		secret string
	}{
		{"a local process rotating X-Forwarded-For is limited by its own address", ""},
		{"a wrong proxy secret does not make X-Forwarded-For believed", "not-the-" + testProxySecret},
		{"a proxy secret differing only in its last byte is refused", testProxySecret[:len(testProxySecret)-1] + "X"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, limits)
			got := e.failLogins(4, "rotate", c.secret)
			if got[2] != 401 || got[3] != 429 {
				t.Fatalf("statuses %v: want 401 three times, then 429 (the peer's limit)", got)
			}
		})
	}
	t.Run("the registry's hop, proved by the secret, names each client", func(t *testing.T) {
		e := newEnv(t, limits)
		if got := e.failLogins(6, "rotate", testProxySecret); slices.Contains(got, 429) {
			t.Fatalf("statuses %v: distinct clients behind the registry were limited as one", got)
		}
		if got := e.failLogins(4, "203.0.113.5", testProxySecret); got[3] != 429 {
			t.Fatalf("statuses %v: one client behind the registry must be limited after 3 failures", got)
		}
		if got := e.failLogins(1, "203.0.113.6", testProxySecret); got[0] != 401 {
			t.Fatalf("statuses %v: another client behind the registry must not be limited", got)
		}
	})
	t.Run("no trusted proxy is the default", func(t *testing.T) {
		if got := trustd.Defaults().TrustedProxies; len(got) != 0 {
			t.Fatalf("trustedProxies defaults to %v, want no one", got)
		}
	})
}

func TestProxySecretConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte(testProxySecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		mod  func(*trustd.Config)
		want string // in the error, "" for none
	}{
		{"a secret from a file is accepted", func(c *trustd.Config) { c.ProxySecretFile = file }, ""},
		{"a short secret is refused", func(c *trustd.Config) { c.ProxySecret = "short" }, "proxySecret: the proxy secret has 5 characters"},
		{"a missing file is refused", func(c *trustd.Config) { c.ProxySecretFile = filepath.Join(dir, "none") }, "proxySecretFile"},
		{"a value and a file are refused together", func(c *trustd.Config) { c.ProxySecret, c.ProxySecretFile = testProxySecret, file }, "not both"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			c.mod(&cfg)
			err := cfg.Validate()
			if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate() = %v, want %q", err, c.want)
			}
		})
	}
	t.Run("the secret from a file proves the hop", func(t *testing.T) {
		e := newEnv(t, func(c *trustd.Config) {
			c.RateLimit = trustd.RateLimitConfig{UserFailures: 100, IPFailures: 2}
			c.TrustedProxies = nil
			c.ProxySecretFile = file
		})
		if got := e.failLogins(4, "rotate", testProxySecret); got[3] != 401 {
			t.Fatalf("statuses %v: with the file's secret, distinct clients must be limited apart", got)
		}
	})
	t.Run("the configured secret never shows in a printed configuration", func(t *testing.T) {
		cfg := testConfig()
		cfg.ProxySecret = testProxySecret
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if strings.Contains(fmt.Sprintf(verb, cfg), testProxySecret) {
				t.Fatalf("%s of the configuration prints the proxy secret", verb)
			}
		}
	})
}
