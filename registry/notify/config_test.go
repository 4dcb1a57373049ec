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
		{"a negative backoff is named", func(c *Config) { c.Endpoints[0].Backoff = -time.Second }, "notifications.endpoints[0].backoff"},
		{"a negative maxBackoff is named", func(c *Config) { c.Endpoints[0].MaxBackoff = -time.Second }, "notifications.endpoints[0].maxBackoff"},
		{"a negative maxAge is named", func(c *Config) { c.Endpoints[0].MaxAge = -time.Second }, "notifications.endpoints[0].maxAge"},
		{"a header name with a space is named", func(c *Config) { c.Endpoints[0].Headers = map[string]string{"X Team": "a"} }, "notifications.endpoints[0].headers"},
		{"a header name with a colon is named", func(c *Config) { c.Endpoints[0].Headers = map[string]string{"X-Team:": "a"} }, "notifications.endpoints[0].headers"},
		{"an empty header name is named", func(c *Config) { c.Endpoints[0].Headers = map[string]string{"": "a"} }, "notifications.endpoints[0].headers"},
		{"a header value with a newline is named", func(c *Config) {
			c.Endpoints[0].Headers = map[string]string{"Authorization": "Bearer abc\r\nX-Injected: 1"}
		}, "notifications.endpoints[0].headers"},
		{"a header value with a NUL is named", func(c *Config) { c.Endpoints[0].Headers = map[string]string{"X-Team": "a\x00b"} }, "notifications.endpoints[0].headers"},
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
			if strings.Contains(err.Error(), "Bearer abc") {
				t.Errorf("Validate() = %v: a header's value is printed", err)
			}
		})
	}
}

func TestValidHeadersPass(t *testing.T) {
	c := Defaults()
	c.Endpoints = []Endpoint{{Name: "audit", URL: "https://hooks.example/x", Secret: "k", Headers: map[string]string{
		"Authorization": "Bearer abc.def", "X-Team": "platform\tops", "X_Odd!#$%&'*+.^`|~": "", "X-Utf8": "café",
	}}}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestAnUnreadableSecretFileNamesItsKey(t *testing.T) {
	c := Defaults()
	c.Endpoints = []Endpoint{
		{Name: "a", URL: "https://hooks.example/a", Secret: "k"},
		{Name: "b", URL: "https://hooks.example/b", SecretFile: t.TempDir()}, // a directory: it stats, but does not read
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	_, err := New(c, nil, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "notifications.endpoints[1].secretFile: ") {
		t.Fatalf("New() = %v, want an error naming notifications.endpoints[1].secretFile", err)
	}
}

func TestKindsCannotBeChangedThroughItsSlices(t *testing.T) {
	Kinds()[0] = "mount"
	e := Endpoint{}.withDefaults()
	e.Events[1] = "mount"
	if got := Kinds(); got[0] != KindPush || got[1] != KindPull {
		t.Fatalf("Kinds() = %v after its callers changed their slices", got)
	}
	if other := (Endpoint{}).withDefaults(); other.Events[1] != KindPull {
		t.Fatalf("a second endpoint's default events are %v: they share the first's", other.Events)
	}
}

func TestDefaultSource(t *testing.T) {
	for _, tc := range []struct {
		name, addr string
		tls        bool
		hostname   string
		want       string
		ok         bool
	}{
		{"a host is kept", "127.0.0.1:5000", false, "box", "http://127.0.0.1:5000", true},
		{"TLS makes it https", "127.0.0.1:5000", true, "box", "https://127.0.0.1:5000", true},
		{"an IPv6 host is bracketed", "[::1]:5000", true, "box", "https://[::1]:5000", true},
		{"no host is the hostname", ":5000", false, "box.example", "http://box.example:5000", true},
		{"the IPv6 unspecified address is the hostname", "[::]:5000", true, "box.example", "https://box.example:5000", true},
		{"0.0.0.0 is the hostname", "0.0.0.0:5000", false, "box.example", "http://box.example:5000", true},
		{"without a hostname the address stays, and is not ok", "[::]:5000", false, "", "http://[::]:5000", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := DefaultSource(tc.addr, tc.tls, tc.hostname)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("DefaultSource(%q, %v, %q) = %q, %v; want %q, %v", tc.addr, tc.tls, tc.hostname, got, ok, tc.want, tc.ok)
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
