package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-oss/signet/tokenauth"
)

func TestTheTokenProxySecretIsValidatedByItsKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("a-proxy-secret-of-some-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		tok  TokenAuthConfig
		want string // in the error; "" for none
	}{
		{"a secret in a file is accepted", TokenAuthConfig{Trustd: "http://127.0.0.1:5001", ProxySecretFile: file}, ""},
		{"a short secret is refused", TokenAuthConfig{Trustd: "http://127.0.0.1:5001", ProxySecret: "short"}, "auth.token.proxySecret: the proxy secret has 5 characters"},
		{"a value and a file are refused together", TokenAuthConfig{Trustd: "http://127.0.0.1:5001", ProxySecret: "a-proxy-secret-of-some-length", ProxySecretFile: file}, "auth.token.proxySecretFile"},
		{"a missing file is refused", TokenAuthConfig{Trustd: "http://127.0.0.1:5001", ProxySecretFile: file + ".none"}, "auth.token.proxySecretFile"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Defaults()
			cfg.Auth.Token = &c.tok
			err := cfg.Validate()
			if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate() = %v, want %q", err, c.want)
			}
		})
	}
	t.Run("SIGNET_PROXY_SECRET overrides the configured secret", func(t *testing.T) {
		t.Setenv(tokenauth.ProxySecretEnv, "a-secret-from-the-environment")
		got, err := tokenauth.LoadProxySecret("auth.token.proxySecret", "short", "")
		if err != nil || got != "a-secret-from-the-environment" {
			t.Fatalf("LoadProxySecret = %q, %v", got, err)
		}
	})
}
