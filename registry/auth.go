package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/signet-oss/signet/internal/logging"
	"github.com/signet-oss/signet/internal/requestid"
	"github.com/signet-oss/signet/reference"
	"github.com/signet-oss/signet/tokenauth"
)

// Token authentication (the Docker registry token specification): the registry
// verifies bearer tokens offline, with the token service's public keys, and never
// calls the token service per request, so it keeps verifying while that service is
// down. The realm is the registry's own /token, passed through to trustd:
// go-containerregistry refuses a realm on a loopback IP literal other than the
// registry's own host:port.

// TokenAuthConfig configures token authentication (the auth.token config keys).
type TokenAuthConfig struct {
	// Trustd is the token service's base URL; /token on the registry is passed
	// there (auth.token.trustd, e.g. http://127.0.0.1:5001).
	Trustd string `yaml:"trustd"`
	// Realm is the token endpoint clients are sent to (auth.token.realm, default
	// the registry's own /token on the origin the client used).
	Realm string `yaml:"realm"`
	// Service is this registry's name, the audience of its tokens
	// (auth.token.service, default signet-registry).
	Service string `yaml:"service"`
	// Issuer is the iss every token must carry (auth.token.issuer, default
	// signet-trustd).
	Issuer string `yaml:"issuer"`
	// JWKS is where the token service's public keys are: a URL or a file
	// (auth.token.jwks, default <trustd>/.well-known/jwks.json).
	JWKS string `yaml:"jwks"`
	// ProxySecret proves to trustd that a /token request passed on comes from
	// this registry, so trustd believes the client address it names in
	// X-Forwarded-For (for its per-client login limits); trustd's proxySecret
	// must be the same. At least 16 characters (auth.token.proxySecret, or
	// auth.token.proxySecretFile naming a file that holds it;
	// SIGNET_PROXY_SECRET overrides both; default none: trustd then limits
	// every login through this registry by the registry's own address).
	ProxySecret     tokenauth.ProxySecret `yaml:"proxySecret"`
	ProxySecretFile string                `yaml:"proxySecretFile"`
	// Transport carries the calls to the token service (the JWKS, the /token
	// passed on, its root); nil is http.DefaultTransport. Serve sets it from
	// tls.ca.
	Transport http.RoundTripper `yaml:"-"`
}

// Action names of the token access claim.
const (
	actionPull   = "pull"
	actionPush   = "push"
	actionDelete = "delete"
)

// authenticator checks bearer tokens against the access a request needs.
type authenticator struct {
	cfg      TokenAuthConfig
	verifier *tokenauth.Verifier
	proxy    *httputil.ReverseProxy
	client   *http.Client
	// proxyAuthenticated: the /token hop carries the proxy secret.
	proxyAuthenticated bool
	// uiSecret authenticates the web UI's UIClientHeader ("" without a UI).
	// Set before the registry serves, read only after.
	uiSecret string

	rootMu      sync.Mutex
	rootFetched time.Time
	rootSum     string
}

func newAuthenticator(cfg TokenAuthConfig) (*authenticator, error) {
	if cfg.Service == "" {
		cfg.Service = "signet-registry"
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "signet-trustd"
	}
	var keys tokenauth.KeySet
	switch {
	case cfg.JWKS == "" && cfg.Trustd == "":
		return nil, errors.New("auth.token: set trustd (the token service's URL) or jwks")
	case cfg.JWKS == "":
		keys = tokenauth.RemoteKeySet(strings.TrimSuffix(cfg.Trustd, "/")+"/.well-known/jwks.json", &http.Client{Timeout: 10 * time.Second, Transport: cfg.Transport}, 30*time.Second)
	case strings.HasPrefix(cfg.JWKS, "http://") || strings.HasPrefix(cfg.JWKS, "https://"):
		keys = tokenauth.RemoteKeySet(cfg.JWKS, &http.Client{Timeout: 10 * time.Second, Transport: cfg.Transport}, 30*time.Second)
	default:
		ks, err := tokenauth.FileKeySet(cfg.JWKS)
		if err != nil {
			return nil, fmt.Errorf("auth.token.jwks: %w", err)
		}
		keys = ks
	}
	a := &authenticator{cfg: cfg, verifier: tokenauth.NewVerifier(cfg.Issuer, cfg.Service, keys), client: &http.Client{Timeout: 10 * time.Second, Transport: cfg.Transport}}
	if cfg.Trustd != "" {
		u, err := url.Parse(cfg.Trustd)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("auth.token.trustd: %q is not an http(s) URL", cfg.Trustd)
		}
		secret, err := tokenauth.LoadProxySecret("auth.token.proxySecret", cfg.ProxySecret, cfg.ProxySecretFile)
		if err != nil {
			return nil, err
		}
		a.proxyAuthenticated = secret != ""
		a.proxy = &httputil.ReverseProxy{
			Transport: cfg.Transport,
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				pr.Out.URL.Path = strings.TrimSuffix(u.Path, "/") + "/token"
				pr.Out.URL.RawPath = ""
				// The client's own claims about who it is never reach trustd:
				// X-Forwarded-For names the address the registry saw, and
				// only the registry itself may send the proxy secret.
				pr.Out.Header.Del(tokenauth.ProxySecretHeader)
				pr.Out.Header.Del("X-Forwarded-For")
				pr.Out.Header.Del("Forwarded")
				pr.SetXForwarded()
				// The web UI's calls name the browser it signs in.
				if ip, ok := a.uiClient(pr.In); ok {
					pr.Out.Header.Set("X-Forwarded-For", ip)
				}
				pr.Out.Header.Del(UIClientHeader)
				if secret != "" {
					pr.Out.Header.Set(tokenauth.ProxySecretHeader, secret)
				}
				// trustd logs the registry's request ID on its line for the call.
				requestid.Set(pr.In.Context(), pr.Out)
			},
			// The default handler logs the URL, whose query may carry
			// credentials; the registry's request line has the status.
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadGateway)
				w.Write([]byte(`{"errors":[{"code":"UNAVAILABLE","message":"the token service cannot be reached"}]}`))
			},
		}
	}
	return a, nil
}

type claimsKey struct{}

// claimsOf returns the verified claims of the request, nil without auth.
func claimsOf(ctx context.Context) *tokenauth.Claims {
	c, _ := ctx.Value(claimsKey{}).(*tokenauth.Claims)
	return c
}

// authenticate verifies the request's bearer token. It returns the claims, or
// writes a 401 with the challenge for scope and returns nil.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, scope string) *tokenauth.Claims {
	a := s.auth
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		s.challenge(w, r, scope, "", &Error{Code: CodeUnauthorized, Detail: "authentication required: get a token from the realm in WWW-Authenticate"})
		return nil
	}
	claims, err := a.verifier.Verify(r.Context(), token)
	if err != nil {
		s.challenge(w, r, scope, "invalid_token", &Error{Code: CodeUnauthorized, Detail: "the bearer token is not valid: " + err.Error()})
		return nil
	}
	logging.SetSubject(r.Context(), claims.Subject)
	return claims
}

// authorize checks that the request's token grants actions on repo. On failure it
// writes the error (401 without a valid token, 403 DENIED with one) and returns
// false. Without auth configured everything is allowed.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, repo string, actions ...string) (*http.Request, bool) {
	if s.auth == nil {
		return r, true
	}
	scope := tokenauth.Access{Type: "repository", Name: repo, Actions: actions}.Scope()
	if from := mountSource(r); from != "" && from != repo {
		// Ask for pull on the mount's source too, so clients that take their
		// scopes from the challenge can mount.
		scope += " " + tokenauth.Access{Type: "repository", Name: from, Actions: []string{actionPull}}.Scope()
	}
	claims := s.authenticate(w, r, scope)
	if claims == nil {
		return r, false
	}
	for _, act := range actions {
		if !claims.Allows("repository", repo, act) {
			s.challenge(w, r, scope, "insufficient_scope", &Error{Code: CodeDenied,
				Detail: fmt.Sprintf("%s may not %s %s", claims.Subject, act, repo)})
			return r, false
		}
	}
	if from := mountSource(r); from != "" && from != repo && !mentions(claims, from) {
		// The token was never asked for the mount's source (a client reusing a
		// token of the target alone): challenge for it, so the client asks. A
		// token that was asked and refused lists it with no actions, and the
		// mount then quietly becomes an upload.
		s.challenge(w, r, scope, "insufficient_scope", &Error{Code: CodeUnauthorized,
			Detail: "mounting from " + from + " needs a token that was asked for pull on it"})
		return r, false
	}
	return r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)), true
}

// mentions reports whether the token's access claim names repository repo at
// all, granted or refused.
func mentions(c *tokenauth.Claims, repo string) bool {
	for _, a := range c.Access {
		if a.Type == "repository" && a.Name == repo {
			return true
		}
	}
	return false
}

// mountSource is the valid repository a mount request names in from, or "".
func mountSource(r *http.Request) string {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/blobs/uploads/") {
		return ""
	}
	q := r.URL.Query()
	from := q.Get("from")
	if q.Get("mount") == "" || reference.ValidateName(from) != nil {
		return ""
	}
	return from
}

// mayPush reports whether the request may push to repo (always, without auth).
func (s *Server) mayPush(r *http.Request, repo string) bool {
	if s.auth == nil {
		return true
	}
	c := claimsOf(r.Context())
	return c != nil && c.Allows("repository", repo, actionPush)
}

// mayPull reports whether the request may pull from repo (always, without auth).
func (s *Server) mayPull(r *http.Request, repo string) bool {
	if s.auth == nil {
		return true
	}
	c := claimsOf(r.Context())
	return c != nil && c.Allows("repository", repo, actionPull)
}

// challenge writes err with a Bearer challenge for scope.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request, scope, errCode string, err *Error) {
	v := fmt.Sprintf(`Bearer realm=%q,service=%q`, s.realm(r), s.auth.cfg.Service)
	if scope != "" {
		v += fmt.Sprintf(`,scope=%q`, scope)
	}
	if errCode != "" {
		v += fmt.Sprintf(`,error=%q`, errCode)
	}
	w.Header().Set("WWW-Authenticate", v)
	s.writeError(w, r, err)
}

// realm is the configured realm, or /token on the origin the client used.
func (s *Server) realm(r *http.Request) string {
	if s.auth.cfg.Realm != "" {
		return s.auth.cfg.Realm
	}
	return requestOrigin(r) + "/token"
}

// requestOrigin is scheme://host of the request as the client sent it.
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// actionsFor is the access a repository request needs, by method.
func actionsFor(method string) []string {
	switch method {
	case http.MethodGet, http.MethodHead:
		return []string{actionPull}
	case http.MethodDelete:
		return []string{actionDelete}
	default:
		return []string{actionPull, actionPush}
	}
}

// token passes a token request to trustd.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if s.auth == nil || s.auth.proxy == nil {
		s.writeError(w, r, &Error{Code: ErrorCode{Code: "NOT_FOUND", Status: http.StatusNotFound, Message: "no token service"},
			Detail: "this registry has no token service configured (auth.token.trustd)"})
		return
	}
	s.auth.proxy.ServeHTTP(w, r)
}

// discovery serves /.well-known/signet.json: where the trust service is, and the
// sha256 of its current root, which `trustctl trust add` shows before pinning it
// (as ssh shows a host key's fingerprint).
func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	doc := struct {
		Registry   string `json:"registry"`
		Trustd     string `json:"trustd,omitempty"`
		Service    string `json:"service,omitempty"`
		RootSHA256 string `json:"rootSha256,omitempty"`
	}{Registry: r.Host}
	if s.auth != nil {
		doc.Trustd, doc.Service = s.auth.cfg.Trustd, s.auth.cfg.Service
		if doc.Trustd != "" {
			doc.RootSHA256 = s.auth.rootFingerprint(r.Context())
		}
	}
	writeJSON(w, "application/json", doc)
}

// rootFingerprint returns the sha256 of trustd's current root.json, fetched at most
// once a minute (once a second while there is none); "" while trustd has none or
// cannot be reached.
func (a *authenticator) rootFingerprint(ctx context.Context) string {
	a.rootMu.Lock()
	defer a.rootMu.Unlock()
	// A known fingerprint is trusted for a minute; while there is none (no root
	// yet, trustd unreachable) it is asked for again after a second.
	if ttl := time.Minute; a.rootSum == "" && time.Since(a.rootFetched) < time.Second ||
		a.rootSum != "" && time.Since(a.rootFetched) < ttl {
		return a.rootSum
	}
	a.rootFetched = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(a.cfg.Trustd, "/")+"/tuf/root.json", nil)
	if err != nil {
		return a.rootSum
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return a.rootSum
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		a.rootSum = ""
		return ""
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(resp.Body, 16<<20)); err != nil {
		return a.rootSum
	}
	a.rootSum = hex.EncodeToString(h.Sum(nil))
	return a.rootSum
}
