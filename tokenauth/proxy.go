package tokenauth

import (
	"fmt"
	"os"
	"strings"
)

// The hop from the registry's /token to trustd. trustd limits failed logins per
// client address, and behind the registry every request comes from the
// registry's own address: the registry names the client in X-Forwarded-For.
// trustd believes that header only from a hop it can authenticate, never from an
// address alone (any process on a host shares its loopback address): the
// registry sends a secret both were configured with in ProxySecretHeader.

// ProxySecretHeader carries the proxy secret on the registry's /token requests to
// trustd. The registry drops any copy a client sent.
const ProxySecretHeader = "Signet-Proxy-Secret"

// ProxySecretEnv overrides the proxy secret of the registry and of trustd.
const ProxySecretEnv = "SIGNET_PROXY_SECRET"

// MinProxySecret is the shortest proxy secret accepted.
const MinProxySecret = 16

// ProxySecret is a configured proxy secret: it prints as [redacted], so a
// configuration dumped into a log does not carry it.
type ProxySecret string

func (ProxySecret) String() string { return "[redacted]" }

// GoString keeps %#v from printing the secret too.
func (ProxySecret) GoString() string { return "[redacted]" }

// LoadProxySecret returns the proxy secret configured by value or by the file
// named file (a trailing newline dropped), with $SIGNET_PROXY_SECRET, when set,
// overriding both; "" when none is configured. key is the configuration key the
// two come from ("proxySecret", "auth.token.proxySecret"), for errors.
func LoadProxySecret(key string, value ProxySecret, file string) (string, error) {
	if v := os.Getenv(ProxySecretEnv); v != "" {
		return checkProxySecret(ProxySecretEnv, v)
	}
	switch {
	case value != "" && file != "":
		return "", fmt.Errorf("%sFile: set %s or %sFile, not both", key, key, key)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%sFile: %w", key, err)
		}
		return checkProxySecret(key+"File", strings.TrimRight(string(b), "\r\n"))
	case value != "":
		return checkProxySecret(key, string(value))
	}
	return "", nil
}

func checkProxySecret(key, s string) (string, error) {
	if len(s) < MinProxySecret {
		return "", fmt.Errorf("%s: the proxy secret has %d characters; use at least %d (random)", key, len(s), MinProxySecret)
	}
	if strings.ContainsAny(s, "\r\n\x00") {
		return "", fmt.Errorf("%s: the proxy secret must fit in one HTTP header line", key)
	}
	return s, nil
}
