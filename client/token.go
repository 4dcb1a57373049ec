package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ClientID is the client_id trustctl sends to token endpoints.
const ClientID = "trustctl"

// HTTPClient is the client every request of this package goes through unless a
// caller passes its own.
var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

// BaseURL turns what a user types for a registry (host:port, or a URL) into a base
// URL and the host:port that clients key credentials by. Without a scheme, loopback
// hosts (localhost, 127.0.0.0/8, ::1) get http, as docker and crane treat them as
// insecure, unless they answer a TLS handshake (tried once per host:port when
// ctx carries a SchemeCache), and every other host https; plainHTTP forces
// http.
func BaseURL(ctx context.Context, host string, plainHTTP bool) (base, hostport string, err error) {
	h := strings.TrimSuffix(strings.TrimSpace(host), "/")
	if h == "" {
		return "", "", errors.New("no registry given: name one as host:port, e.g. 127.0.0.1:5000")
	}
	scheme := ""
	if s, rest, ok := strings.Cut(h, "://"); ok {
		if s != "http" && s != "https" {
			return "", "", fmt.Errorf("registry %q: the scheme must be http or https", host)
		}
		scheme, h = s, rest
	}
	if strings.ContainsAny(h, "/?#@") {
		return "", "", fmt.Errorf("registry %q: give host[:port] only, without a path", host)
	}
	if scheme == "" {
		switch {
		case plainHTTP:
			scheme = "http"
		case IsLoopback(h):
			scheme = loopbackScheme(ctx, h)
		default:
			scheme = "https"
		}
	}
	return scheme + "://" + h, h, nil
}

// IsLoopback reports whether host[:port] names the local machine.
func IsLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// HostOf returns the host:port of a URL.
func HostOf(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute URL", rawURL)
	}
	return u.Host, nil
}

// TokenResponse is a token endpoint's answer (distribution's token.md and oauth.md).
type TokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	Scope        string `json:"scope"`
}

// Access returns the access token, from access_token or token.
func (r *TokenResponse) Access() string {
	if r.AccessToken != "" {
		return r.AccessToken
	}
	return r.Token
}

// TokenError is a token endpoint's refusal.
type TokenError struct {
	Realm   string
	Status  int
	Code    string
	Message string
}

func (e *TokenError) Error() string {
	what := e.Message
	if e.Code != "" {
		what = e.Code + ": " + e.Message
	}
	return fmt.Sprintf("token endpoint %s answered %d %s", e.Realm, e.Status, strings.TrimSpace(what))
}

// Unauthorized reports whether the endpoint refused the credentials themselves.
func (e *TokenError) Unauthorized() bool { return e.Status == http.StatusUnauthorized }

// TokenClient talks to a Docker token endpoint.
type TokenClient struct {
	// HTTP is the client to use; nil means a default with a 30s timeout.
	HTTP *http.Client
}

func (c *TokenClient) http() *http.Client {
	if c != nil && c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

// Discover asks the registry at base (a URL) for its challenge: GET /v2/ without
// credentials must answer 401 with a Bearer challenge naming the realm and service.
func (c *TokenClient) Discover(ctx context.Context, base string) (Challenge, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v2/", nil)
	if err != nil {
		return Challenge{}, err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return Challenge{}, fmt.Errorf("cannot reach the registry at %s: %w", base, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusUnauthorized:
	case http.StatusOK:
		return Challenge{}, fmt.Errorf("the registry at %s asks for no login (GET /v2/ answered 200): it runs without authentication", base)
	default:
		return Challenge{}, fmt.Errorf("GET %s/v2/ answered %s, want 401 with a Bearer challenge: is this a registry?", base, resp.Status)
	}
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		ch, err := ParseChallenge(h)
		if err != nil {
			continue
		}
		if ch.Scheme == "bearer" {
			if ch.Realm() == "" {
				return Challenge{}, fmt.Errorf("the registry at %s sent a Bearer challenge without a realm: %q", base, h)
			}
			return ch, nil
		}
	}
	return Challenge{}, fmt.Errorf("the registry at %s sent no Bearer challenge (WWW-Authenticate: %q): trustctl needs token authentication",
		base, resp.Header.Values("WWW-Authenticate"))
}

// PasswordGrant exchanges a user name and password for tokens with the OAuth2
// password grant (POST), asking for a refresh token (access_type=offline).
func (c *TokenClient) PasswordGrant(ctx context.Context, realm, service, user, password string, scopes ...string) (*TokenResponse, error) {
	form := url.Values{
		"grant_type":  {"password"},
		"username":    {user},
		"password":    {password},
		"service":     {service},
		"client_id":   {ClientID},
		"access_type": {"offline"},
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	return c.post(ctx, realm, form)
}

// RefreshGrant exchanges a refresh token for an access token (POST,
// grant_type=refresh_token). The refresh token is bound to service.
func (c *TokenClient) RefreshGrant(ctx context.Context, realm, service, refreshToken string, scopes ...string) (*TokenResponse, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
		"service":       {service},
		"client_id":     {ClientID},
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	return c.post(ctx, realm, form)
}

func (c *TokenClient) post(ctx context.Context, realm string, form url.Values) (*TokenResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, realm, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("token endpoint %q: %w", realm, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the token endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", realm, err)
	}
	if resp.StatusCode != http.StatusOK {
		te := &TokenError{Realm: realm, Status: resp.StatusCode}
		if e := firstAPIError(body); e != nil {
			te.Code, te.Message = e.Code, e.Message
		} else {
			var oe struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if json.Unmarshal(body, &oe) == nil && oe.Error != "" {
				te.Code, te.Message = oe.Error, oe.Description
			} else {
				te.Message = truncate(string(body), 200)
			}
		}
		return nil, te
	}
	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("token endpoint %s: unreadable answer: %v", realm, err)
	}
	if tr.Access() == "" {
		return nil, fmt.Errorf("token endpoint %s answered without a token", realm)
	}
	return &tr, nil
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
