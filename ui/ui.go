// Package ui is Signet's web UI: server-rendered pages on the registry's
// origin, under /ui/. It is a client like any other: it signs people in through
// the registry's /token, and reads the registry's API and trustd's with their
// tokens, so a page shows exactly what the API would let its reader pull.
// Pages are html/template with embedded CSS; nothing needs JavaScript.
package ui

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/trust"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is the path of every page and asset.
const Prefix = "/ui/"

// contentSecurityPolicy allows the UI's own stylesheet and script file only:
// no inline script or style, no framing, forms posted only to the UI.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Config is what the UI needs of the registry it is mounted on.
type Config struct {
	// Registry is the registry's base URL, as the UI reaches it.
	Registry string
	// Trustd is trustd's base URL.
	Trustd string
	// Transport is used for every call (nil: the default).
	Transport http.RoundTripper
	// Secure marks cookies Secure: the registry serves HTTPS.
	Secure bool
	// TrustRoot is the pinned root.json's path, "" when the registry has no
	// admission gate (then every repository is open and nothing is signed).
	TrustRoot string
	// Open are the repository patterns the gate admits unsigned.
	Open []string
	// ClientHeader and ClientSecret name the browser on the UI's /token
	// calls ("<secret> <ip>"), so the registry names it to trustd, whose
	// limits on failed logins then count each browser; "" names none.
	ClientHeader, ClientSecret string
	// CacheDir is where the TUF metadata the UI verifies is cached.
	CacheDir string
	Log      *slog.Logger
}

// UI serves the pages. It is safe for concurrent use.
type UI struct {
	cfg      Config
	http     *http.Client
	tokens   *client.TokenClient
	sessions *sessions
	pages    map[string]*template.Template
	mux      *http.ServeMux
	// home holds the pinned root for the trust graph's client; trustMu
	// serialises its walks, which share the metadata cache.
	home    string
	pinHost string
	trustMu sync.Mutex

	endpointMu sync.Mutex
	endpoints  *endpoints
}

// endpoints are the token realms and services, learnt from the servers'
// challenges on first use.
type endpoints struct {
	realm, service             string
	trustdRealm, trustdService string
}

// New returns the UI of cfg.
func New(cfg Config) (*UI, error) {
	if cfg.Registry == "" || cfg.Trustd == "" {
		return nil, errors.New("ui: the registry's and trustd's URLs are both needed")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: cfg.Transport}
	tokenHTTP := &http.Client{Timeout: 30 * time.Second, Transport: &namingTransport{base: cfg.Transport, header: cfg.ClientHeader, secret: cfg.ClientSecret}}
	u := &UI{cfg: cfg, http: hc, tokens: &client.TokenClient{HTTP: tokenHTTP}, sessions: newSessions()}
	if err := u.parseTemplates(); err != nil {
		return nil, err
	}
	if cfg.TrustRoot != "" {
		root, err := os.ReadFile(cfg.TrustRoot)
		if err != nil {
			return nil, fmt.Errorf("ui: trust root: %w", err)
		}
		host, err := client.HostOf(cfg.Registry)
		if err != nil {
			return nil, err
		}
		u.home, u.pinHost = filepath.Join(cfg.CacheDir, "trust"), host
		if err := trust.Pin(u.home, host, root); err != nil {
			return nil, fmt.Errorf("ui: pinning the trust root: %w", err)
		}
	}
	u.routes()
	return u, nil
}

func (u *UI) parseTemplates() error {
	u.pages = map[string]*template.Template{}
	for _, page := range []string{"login", "repos", "repo", "audit", "graph", "org", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return fmt.Errorf("ui: template %s: %w", page, err)
		}
		u.pages[page] = t
	}
	return nil
}

func (u *UI) routes() {
	static, _ := fs.Sub(staticFS, "static")
	m := http.NewServeMux()
	m.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", cacheStatic(http.FileServerFS(static))))
	m.HandleFunc("GET /ui/{$}", u.index)
	m.HandleFunc("GET /ui/login", u.loginPage)
	m.HandleFunc("POST /ui/login", u.login)
	m.HandleFunc("POST /ui/logout", u.signedIn(u.logout))
	m.HandleFunc("GET /ui/repos", u.signedIn(u.repos))
	m.HandleFunc("GET /ui/r/{name...}", u.signedIn(u.repo))
	m.HandleFunc("GET /ui/audit", u.signedIn(u.auditLog))
	m.HandleFunc("GET /ui/trust", u.signedIn(u.trustGraph))
	m.HandleFunc("GET /ui/orgs/{org}", u.signedIn(u.orgPage))
	m.HandleFunc("POST /ui/orgs/{org}/robots", u.signedIn(u.createRobot))
	m.HandleFunc("POST /ui/orgs/{org}/robots/{name}/revoke", u.signedIn(u.revokeRobot))
	m.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		u.errorPage(w, r, http.StatusNotFound, "No such page", "There is no page at "+r.URL.Path+".")
	})
	u.mux = m
}

// ServeHTTP serves a page with the security headers every answer carries, and
// refuses a POST whose form lacks the CSRF token.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.Method == http.MethodPost && !u.checkCSRF(w, r) {
		u.errorPage(w, r, http.StatusForbidden, "Form refused", "The form was not sent from a page of this site (its CSRF token is missing or wrong). Reload the page and try again.")
		return
	}
	u.mux.ServeHTTP(w, r)
}

// cacheStatic lets browsers keep the embedded assets for an hour.
func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

func (u *UI) index(w http.ResponseWriter, r *http.Request) {
	if u.sessions.get(r) == nil {
		http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, Prefix+"repos", http.StatusSeeOther)
}

// render writes page with data, as HTML that is never cached (it is one
// reader's view).
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, page string, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	data["CSRF"] = u.csrfToken(w, r)
	if s := u.sessions.get(r); s != nil {
		data["User"], data["Orgs"] = s.user, s.orgs
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := u.pages[page].Execute(w, data); err != nil {
		u.cfg.Log.Warn("ui: rendering a page failed", "page", page, "err", err)
	}
}

func (u *UI) errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	u.render(w, r, status, "error", map[string]any{"Title": title, "Message": msg, "Status": status})
}

// randomToken is 32 random bytes, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// discover learns the token realms and services on first use: the registry
// is not yet serving when the UI is made.
func (u *UI) discover(ctx context.Context) (*endpoints, error) {
	u.endpointMu.Lock()
	defer u.endpointMu.Unlock()
	if u.endpoints != nil {
		return u.endpoints, nil
	}
	ch, err := u.tokens.Discover(ctx, u.cfg.Registry)
	if err != nil {
		return nil, err
	}
	_, service, err := client.TrustdEndpoint(ctx, u.tokens, u.cfg.Trustd)
	if err != nil {
		return nil, err
	}
	// The registry's challenge names its public realm; the UI reaches the
	// same /token on the address it was given, for trustd's service too (the
	// registry passes every /token call to trustd), so that every sign-in
	// names its browser.
	u.endpoints = &endpoints{realm: u.cfg.Registry + "/token", service: ch.Service(), trustdRealm: u.cfg.Registry + "/token", trustdService: service}
	return u.endpoints, nil
}

// browserKey carries the signing-in browser's address to namingTransport.
type browserKey struct{}

// withBrowser returns ctx naming the address r came from.
func withBrowser(ctx context.Context, r *http.Request) context.Context {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, browserKey{}, host)
}

// namingTransport adds the header that names the browser to the UI's calls to
// /token, when the registry gave the UI a secret to prove it with.
type namingTransport struct {
	base           http.RoundTripper
	header, secret string
}

func (t *namingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	if ip, ok := req.Context().Value(browserKey{}).(string); ok && t.header != "" && t.secret != "" {
		req = req.Clone(req.Context())
		req.Header.Set(t.header, t.secret+" "+ip)
	}
	return base.RoundTrip(req)
}
