package trustd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/signet-oss/signet/internal/testlog"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/tokenauth"
	"github.com/signet-oss/signet/trustd"
)

const (
	adminPassword = "admin-password-for-tests"
	userPassword  = "user-password-for-tests"
	registrySvc   = "signet-registry"
	trustdSvc     = "trustd"
)

// env is a trustd on the in-memory driver behind a real HTTP server.
type env struct {
	t      testing.TB
	cfg    trustd.Config
	d      driver.Driver
	srv    *httptest.Server
	server *trustd.Server
	logs   *testlog.Buffer
	notice *bytes.Buffer
	jwks   jose.JSONWebKeySet
}

func testConfig() trustd.Config {
	cfg := trustd.Defaults()
	cfg.Storage.Driver = "inmemory"
	cfg.AdminPassword = adminPassword
	cfg.BcryptCost = 4 // the minimum: tests check behaviour, not bcrypt's cost
	// The tests name clients in X-Forwarded-For as a proxy the operator listed.
	cfg.TrustedProxies = []string{"127.0.0.1/32", "::1/128"}
	return cfg
}

func newEnv(t testing.TB, mods ...func(*trustd.Config)) *env {
	t.Helper()
	cfg := testConfig()
	for _, m := range mods {
		m(&cfg)
	}
	return newEnvOn(t, cfg, inmemory.New())
}

func newEnvOn(t testing.TB, cfg trustd.Config, d driver.Driver) *env {
	t.Helper()
	return newEnvWith(t, cfg, d, nil)
}

// newEnvWith is newEnvOn calling setup, when not nil, on the server before it
// serves.
func newEnvWith(t testing.TB, cfg trustd.Config, d driver.Driver, setup func(*trustd.Server)) *env {
	t.Helper()
	e := &env{t: t, cfg: cfg, d: d, logs: &testlog.Buffer{}, notice: &bytes.Buffer{}}
	s, err := trustd.New(context.Background(), cfg, d, cfg.Log.NewLogger(e.logs), e.notice)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	e.server, e.srv = s, httptest.NewServer(s)
	t.Cleanup(e.srv.Close)
	resp, err := http.Get(e.srv.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&e.jwks); err != nil {
		t.Fatal(err)
	}
	return e
}

type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	Errors       []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// reply is an HTTP answer, decoded.
type reply struct {
	status int
	header http.Header
	body   []byte
	tok    tokenResponse
}

func (e *env) do(req *http.Request) reply {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: body}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		json.Unmarshal(body, &r.tok)
	}
	return r
}

// basicOpts are the options of a GET /token.
type basicOpts struct {
	user, password string // no Authorization header when user is empty
	service        string // default registrySvc
	scopes         []string
	offline        bool
	ip             string // sent as X-Forwarded-For (the test client is a trusted proxy)
}

func (e *env) get(o basicOpts) reply {
	e.t.Helper()
	q := url.Values{}
	if o.service == "" {
		o.service = registrySvc
	}
	if o.service != "-" {
		q.Set("service", o.service)
	}
	for _, s := range o.scopes {
		q.Add("scope", s)
	}
	if o.offline {
		q.Set("offline_token", "true")
	}
	q.Set("client_id", "trustd-tests")
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/token?"+q.Encode(), nil)
	if o.user != "" {
		req.SetBasicAuth(o.user, o.password)
	}
	if o.ip != "" {
		req.Header.Set("X-Forwarded-For", o.ip)
	}
	return e.do(req)
}

func (e *env) post(form url.Values) reply {
	e.t.Helper()
	if form.Get("service") == "" {
		form.Set("service", registrySvc)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.do(req)
}

// login returns an access token for trustd's own API.
func (e *env) login(user, password string) string {
	e.t.Helper()
	r := e.get(basicOpts{user: user, password: password, service: trustdSvc})
	if r.status != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", user, r.status, r.body)
	}
	return r.tok.AccessToken
}

// api calls the management API with token, sending body as JSON when not nil.
func (e *env) api(method, path, token string, body any) reply {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.srv.URL+"/api/v1"+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.do(req)
}

// mustAPI is api that fails the test unless the status is want.
func (e *env) mustAPI(want int, method, path, token string, body any) reply {
	e.t.Helper()
	r := e.api(method, path, token, body)
	if r.status != want {
		e.t.Fatalf("%s %s: got %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

// claims verifies an access token for audience and returns its claims.
func (e *env) claims(token, audience string) *tokenauth.Claims {
	e.t.Helper()
	v := tokenauth.NewVerifier(e.cfg.Issuer, audience, tokenauth.StaticKeySet(e.jwks))
	c, err := v.Verify(context.Background(), token)
	if err != nil {
		e.t.Fatalf("verifying the issued token: %v", err)
	}
	return c
}

// scopesOf renders what the access claim grants as a scope list, for
// comparisons: entries of refused resources (no actions) grant nothing.
func scopesOf(c *tokenauth.Claims) []string {
	out := []string{}
	for _, a := range c.Access {
		if len(a.Actions) > 0 {
			out = append(out, a.Scope())
		}
	}
	return out
}

// fixture makes org acme with alice (reader), bob (publisher), carol (owner), and
// dave (no org), all with userPassword. It returns the admin's API token.
func (e *env) fixture() string {
	e.t.Helper()
	admin := e.login("admin", adminPassword)
	e.mustAPI(http.StatusCreated, "POST", "/orgs", admin, map[string]string{"name": "acme"})
	for user, role := range map[string]string{"alice": "reader", "bob": "publisher", "carol": "owner", "dave": ""} {
		e.mustAPI(http.StatusCreated, "POST", "/users", admin, map[string]string{"name": user, "password": userPassword})
		if role != "" {
			e.mustAPI(http.StatusOK, "PUT", "/orgs/acme/members/"+user, admin, map[string]string{"role": role})
		}
	}
	return admin
}
