package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// DefaultTrustdService is trustd's own audience when it does not name another.
const DefaultTrustdService = "trustd"

// LoginOptions says whom to log in as, where, and where to keep the login.
type LoginOptions struct {
	// Registry is host[:port] or a URL.
	Registry string
	// PlainHTTP forces http for a non-loopback registry.
	PlainHTTP bool
	User      string
	Password  string
	// Docker is the docker config to keep the registry's refresh token in, so that
	// every client shares it; nil leaves docker's config alone.
	Docker *ConfigFile
	// Home is $SIGNET_HOME/config.json: it gets both refresh tokens (registry and
	// trustd) and the "signet" section. Required.
	Home   *ConfigFile
	Tokens *TokenClient
}

// LoginResult says what a login stored.
type LoginResult struct {
	// Registry is the registry's host:port.
	Registry string `json:"registry"`
	// Trustd is trustd's URL, or "" for a registry that names no trustd.
	Trustd string `json:"trustd,omitempty"`
	User   string `json:"user"`
	// DockerConfig is the docker config file written, if any.
	DockerConfig string `json:"dockerConfig,omitempty"`
	// Home is the $SIGNET_HOME config file written.
	Home string `json:"home"`
}

// Login gets refresh tokens for a user: one from the registry's token endpoint for
// the registry's service (found in its /v2/ challenge), and one from trustd for
// trustd's own service (trustd found through the registry's
// /.well-known/signet.json), since a refresh token is bound to one service. It
// stores them the docker way: the registry's in opts.Docker (through a credential
// helper if that config names one) and both in opts.Home.
func Login(ctx context.Context, opts LoginOptions) (*LoginResult, error) {
	base, host, err := BaseURL(ctx, opts.Registry, opts.PlainHTTP)
	if err != nil {
		return nil, err
	}
	if opts.User == "" {
		return nil, errors.New("no user name: pass -u USER")
	}
	tc := opts.Tokens
	ch, err := tc.Discover(ctx, base)
	if err != nil {
		return nil, err
	}
	tr, err := tc.PasswordGrant(ctx, ch.Realm(), ch.Service(), opts.User, opts.Password)
	if err != nil {
		return nil, loginError(err, opts.User, host)
	}
	if tr.RefreshToken == "" {
		return nil, fmt.Errorf("the token endpoint of %s gave no refresh token for access_type=offline: it does not support offline tokens", host)
	}
	res := &LoginResult{Registry: host, User: opts.User, Home: opts.Home.Path}

	sig := Signet{Registry: host}
	trustd, err := DiscoverTrustd(ctx, tc, base)
	if err != nil {
		return nil, err
	}
	if trustd != "" {
		realm, service, err := TrustdEndpoint(ctx, tc, trustd)
		if err != nil {
			return nil, err
		}
		ttr, err := tc.PasswordGrant(ctx, realm, service, opts.User, opts.Password)
		if err != nil {
			return nil, loginError(err, opts.User, trustd)
		}
		if ttr.RefreshToken == "" {
			return nil, fmt.Errorf("trustd at %s gave no refresh token for access_type=offline", trustd)
		}
		th, err := HostOf(trustd)
		if err != nil {
			return nil, fmt.Errorf("the registry names trustd %w", err)
		}
		opts.Home.SetLogin(th, opts.User, ttr.RefreshToken)
		sig.Trustd = trustd
		res.Trustd = trustd
	}
	opts.Home.SetLogin(host, opts.User, tr.RefreshToken)
	opts.Home.SetSignet(sig)
	if err := opts.Home.Save(); err != nil {
		return nil, fmt.Errorf("saving the login: %w", err)
	}
	if opts.Docker != nil && opts.Docker.Path != opts.Home.Path {
		if err := StoreDockerLogin(ctx, opts.Docker, host, opts.User, tr.RefreshToken); err != nil {
			return nil, err
		}
		res.DockerConfig = opts.Docker.Path
	}
	return res, nil
}

func loginError(err error, user, where string) error {
	var te *TokenError
	if errors.As(err, &te) {
		switch te.Status {
		case http.StatusUnauthorized:
			return fmt.Errorf("%s refused the user name or password of %q: check them (the password is read from stdin with --password-stdin, else prompted)", where, user)
		case http.StatusTooManyRequests:
			return fmt.Errorf("%s refuses logins for %q for now after too many failed attempts: wait a minute and try again", where, user)
		}
	}
	return err
}

// SignetInfo is the registry's /.well-known/signet.json.
type SignetInfo struct {
	Trustd   string `json:"trustd"`
	Registry string `json:"registry"`
}

// DiscoverTrustd returns the trustd URL the registry at base names in its
// /.well-known/signet.json, or "" if it serves none (a registry that is not Signet).
func DiscoverTrustd(ctx context.Context, tc *TokenClient, base string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/.well-known/signet.json", nil)
	if err != nil {
		return "", err
	}
	resp, err := tc.http().Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot reach the registry at %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return "", nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s/.well-known/signet.json answered %s: %s", base, resp.Status, truncate(string(body), 200))
	}
	var info SignetInfo
	if err := json.Unmarshal(body, &info); err != nil {
		return "", fmt.Errorf("%s/.well-known/signet.json is unreadable: %v", base, err)
	}
	return strings.TrimSuffix(info.Trustd, "/"), nil
}

// TrustdEndpoint returns the realm and service with which to get tokens for trustd's
// own API: what its API's 401 challenge names, else <trustd>/token and "trustd".
func TrustdEndpoint(ctx context.Context, tc *TokenClient, trustd string) (realm, service string, err error) {
	realm, service = trustd+"/token", DefaultTrustdService
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, trustd+"/api/v1/whoami", nil)
	if err != nil {
		return "", "", err
	}
	resp, err := tc.http().Do(req)
	if err != nil {
		return "", "", fmt.Errorf("cannot reach trustd at %s: %w", trustd, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		if ch, err := ParseChallenge(h); err == nil && ch.Scheme == "bearer" {
			if ch.Realm() != "" {
				realm = ch.Realm()
			}
			if ch.Service() != "" {
				service = ch.Service()
			}
		}
	}
	return realm, service, nil
}

// OpenTrustd returns a trustd API client authenticated by the login kept in home:
// trustd's URL from the "signet" section (or, when registry is given and is another
// one, from that registry's signet.json), its refresh token from auths, exchanged
// for a fresh access token.
func OpenTrustd(ctx context.Context, home *ConfigFile, registry string, tc *TokenClient) (*Trustd, error) {
	sig := home.Signet()
	trustd := sig.Trustd
	if registry != "" {
		base, host, err := BaseURL(ctx, registry, false)
		if err != nil {
			return nil, err
		}
		if host != sig.Registry || trustd == "" {
			if trustd, err = DiscoverTrustd(ctx, tc, base); err != nil {
				return nil, err
			}
			if trustd == "" {
				return nil, fmt.Errorf("the registry %s names no trustd (no /.well-known/signet.json): is it a Signet registry?", host)
			}
		}
	}
	if trustd == "" {
		return nil, fmt.Errorf("not logged in (%s names no trustd): run `trustctl login HOST`, or `trustctl up` for a local stack", home.Path)
	}
	th, err := HostOf(trustd)
	if err != nil {
		return nil, err
	}
	_, refresh := home.Login(th)
	if refresh == "" {
		return nil, fmt.Errorf("no login for trustd %s in %s: run `trustctl login %s`", trustd, home.Path, orDefault(registry, sig.Registry, "HOST"))
	}
	realm, service, err := TrustdEndpoint(ctx, tc, trustd)
	if err != nil {
		return nil, err
	}
	tr, err := tc.RefreshGrant(ctx, realm, service, refresh)
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) && (te.Status == http.StatusUnauthorized || te.Status == http.StatusBadRequest) {
			return nil, fmt.Errorf("trustd %s no longer accepts the login kept in %s (expired or revoked): run `trustctl login %s`",
				trustd, home.Path, orDefault(registry, sig.Registry, "HOST"))
		}
		return nil, err
	}
	return &Trustd{Base: trustd, Token: tr.Access(), HTTP: tc.HTTP}, nil
}

func orDefault(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
