package registry

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
)

// UIConfig configures the web UI (the ui.* keys).
type UIConfig struct {
	// Disabled turns the web UI off (ui.disabled, default false): / and /ui/
	// then answer 404 as any other path that is not an endpoint.
	Disabled bool `yaml:"disabled"`
	// New builds the UI's handler once the registry knows its own address.
	// The registry links no client code, and the UI is a client of the
	// registry and trustd, so the programs that link it (cmd/registry,
	// `trustctl up`) set it; nil serves no UI. Not a file key.
	New func(UIEnv) (http.Handler, error) `yaml:"-"`
}

// UIEnv is what the web UI learns of the registry it is mounted on.
type UIEnv struct {
	// Registry is the registry's own base URL: the UI calls its API and its
	// /token over HTTP, as every client does.
	Registry string
	// Trustd is trustd's base URL (auth.token.trustd).
	Trustd string
	// Transport trusts what the registry's calls to trustd trust (tls.ca).
	Transport http.RoundTripper
	// Secure is true when the registry serves HTTPS: cookies are then Secure.
	Secure bool
	// TrustRoot is the pinned root.json's path (trust.root), "" without a gate.
	TrustRoot string
	// Open are the repository patterns admitted without signatures
	// (trust.open); without a TrustRoot every repository is open.
	Open []string
	// ClientSecret authenticates the UI's calls to /token that name the
	// browser in UIClientHeader ("<secret> <ip>"): made for this process, held
	// in memory only.
	ClientSecret string
	// CacheDir is a private directory for the UI's TUF metadata cache,
	// removed when the registry stops.
	CacheDir string
	Log      *slog.Logger
}

// UIClientHeader is sent by the web UI on its /token calls with ClientSecret
// and the address of the browser it signs in: the registry then names that
// browser to trustd in X-Forwarded-For rather than itself, so trustd's limits
// on failed logins count each browser, not every sign-in through the UI as
// one client. Every other copy, and the header itself, goes no further.
const UIClientHeader = "Signet-UI-Client"

// uiClient returns the browser's address that r names in UIClientHeader, when
// it carries the UI's secret.
func (a *authenticator) uiClient(r *http.Request) (string, bool) {
	if a.uiSecret == "" {
		return "", false
	}
	secret, ip, ok := strings.Cut(r.Header.Get(UIClientHeader), " ")
	if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(a.uiSecret)) != 1 || net.ParseIP(ip) == nil {
		return "", false
	}
	return ip, true
}

// UIPrefix is the path every page and asset of the web UI is under.
const UIPrefix = "/ui/"

// mountUI mounts the web UI of cfg on api, if it is on. It returns a function
// that removes what the UI kept on disk.
func mountUI(api *Server, cfg Config, addr net.Addr, tls bool, log *slog.Logger) (func(), error) {
	noop := func() {}
	if cfg.UI.Disabled || cfg.UI.New == nil {
		return noop, nil
	}
	t := cfg.Auth.Token
	if t == nil || t.Trustd == "" {
		log.Warn("the web UI is off: it signs people in through trustd's tokens (set auth.token.trustd or --trustd)")
		return noop, nil
	}
	rt, err := cfg.TLS.transport()
	if err != nil {
		return noop, err
	}
	dir, err := os.MkdirTemp("", "signet-ui-")
	if err != nil {
		return noop, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	api.auth.uiSecret = hex.EncodeToString(secret)
	env := UIEnv{
		Registry: scheme + selfAddr(addr), Trustd: strings.TrimSuffix(t.Trustd, "/"), Transport: rt, Secure: tls,
		TrustRoot: cfg.Trust.Root, Open: cfg.Trust.Open, ClientSecret: api.auth.uiSecret, CacheDir: dir, Log: log,
	}
	h, err := cfg.UI.New(env)
	if err != nil {
		cleanup()
		return noop, err
	}
	api.router.PathPrefix(UIPrefix).Handler(h)
	api.router.Handle("/", http.RedirectHandler(UIPrefix, http.StatusFound)).Methods(http.MethodGet, http.MethodHead)
	log.Info("web UI on", "path", UIPrefix)
	return cleanup, nil
}

// selfAddr is the address the registry reaches itself on: a listener on every
// interface is reached on loopback.
func selfAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			host = "127.0.0.1"
		} else {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}
