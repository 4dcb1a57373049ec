package notify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidateNamesTheKey(t *testing.T) {
	good := func() Config {
		c := Defaults()
		c.Endpoints = []Endpoint{{Name: "audit", URL: "https://hooks.example/x", Secret: "k"}}
		return c
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("a minimal endpoint: %v", err)
	}
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte("k\n"), 0o600)
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"an endpoint needs a name", func(c *Config) { c.Endpoints[0].Name = "" }, "notifications.endpoints[0].name"},
		{"a name is one path component", func(c *Config) { c.Endpoints[0].Name = "a/b" }, "notifications.endpoints[0].name"},
		{"two endpoints cannot share a name", func(c *Config) { c.Endpoints = append(c.Endpoints, c.Endpoints[0]) }, "notifications.endpoints[1].name"},
		{"the url must be http or https", func(c *Config) { c.Endpoints[0].URL = "ftp://x/y" }, "notifications.endpoints[0].url"},
		{"the url must have a host", func(c *Config) { c.Endpoints[0].URL = "http:///x" }, "notifications.endpoints[0].url"},
		{"a secret is required", func(c *Config) { c.Endpoints[0].Secret = "" }, "notifications.endpoints[0].secret"},
		{"secret and secretFile exclude each other", func(c *Config) { c.Endpoints[0].SecretFile = secretFile }, "notifications.endpoints[0].secretFile"},
		{"a missing secretFile is named", func(c *Config) {
			c.Endpoints[0].Secret, c.Endpoints[0].SecretFile = "", "/nonexistent/secret"
		}, "notifications.endpoints[0].secretFile"},
		{"an unknown event kind is named", func(c *Config) { c.Endpoints[0].Events = []string{"push", "mount"} }, "notifications.endpoints[0].events"},
		{"admission-unavailable is not an event kind to subscribe to", func(c *Config) { c.Endpoints[0].Events = []string{"admission-unavailable"} }, "notifications.endpoints[0].events"},
		{"an empty repository pattern is named", func(c *Config) { c.Endpoints[0].Repositories = []string{""} }, "notifications.endpoints[0].repositories"},
		{"a negative timeout is named", func(c *Config) { c.Endpoints[0].Timeout = -time.Second }, "notifications.endpoints[0].timeout"},
		{"maxBackoff below backoff is named", func(c *Config) {
			c.Endpoints[0].Backoff, c.Endpoints[0].MaxBackoff = time.Minute, time.Second
		}, "notifications.endpoints[0].maxBackoff"},
		{"the signature header cannot be set", func(c *Config) { c.Endpoints[0].Headers = map[string]string{"signet-signature": "x"} }, "notifications.endpoints[0].headers"},
		{"the batch window must be positive", func(c *Config) { c.PullBatch.Window = 0 }, "notifications.pullBatch.window"},
		{"the batch size must be positive", func(c *Config) { c.PullBatch.MaxEvents = 0 }, "notifications.pullBatch.maxEvents"},
		{"the takeover bound must exceed the heartbeat", func(c *Config) { c.TakeoverAfter = c.Heartbeat }, "notifications.takeoverAfter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want+":") {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestSecretFileIsReadWithoutItsNewline(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(p, []byte("hunter2\n"), 0o600)
	got, err := Endpoint{Name: "e", SecretFile: p}.secret("notifications.endpoints[0]")
	if err != nil || string(got) != "hunter2" {
		t.Fatalf("secret() = %q, %v; want hunter2", got, err)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	e := Endpoint{Name: "e", Secret: "hunter2"}
	for _, s := range []string{e.Secret.String(), e.Secret.GoString()} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("the secret printed as %q", s)
		}
	}
}

func TestEndpointFilters(t *testing.T) {
	ep := &endpoint{cfg: Endpoint{Events: []string{"push", "delete"}, Repositories: []string{"acme/**", "tools/*"}}.withDefaults()}
	all := &endpoint{cfg: Endpoint{}.withDefaults()}
	for _, tc := range []struct {
		kind, repo string
		want, all  bool
	}{
		{"push", "acme/app", true, true},
		{"push", "acme/team/app", true, true},
		{"delete", "tools/x", true, true},
		{"push", "tools/x/y", false, true},
		{"push", "acme", false, true},
		{"pull", "acme/app", false, true},
		{"signature", "acme/app", false, true},
		{"push", "other/app", false, true},
	} {
		if got := ep.wants(tc.kind, tc.repo); got != tc.want {
			t.Errorf("filtered endpoint wants(%s, %s) = %v, want %v", tc.kind, tc.repo, got, tc.want)
		}
		if got := all.wants(tc.kind, tc.repo); got != tc.all {
			t.Errorf("default endpoint wants(%s, %s) = %v, want %v", tc.kind, tc.repo, got, tc.all)
		}
	}
}
