package trustd_test

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signet-oss/signet/trustd"
)

func TestTokenEndpointAuthentication(t *testing.T) {
	e := newEnv(t)
	e.fixture()
	cases := []struct {
		name   string
		req    basicOpts
		status int
		sub    string
		code   string
	}{
		{"an anonymous request gets a token for nobody", basicOpts{scopes: []string{"repository:acme/app:pull"}}, 200, "", ""},
		{"the admin's Basic credentials get a token for the admin", basicOpts{user: "admin", password: adminPassword}, 200, "admin", ""},
		{"a person's Basic credentials get a token for them", basicOpts{user: "alice", password: userPassword}, 200, "alice", ""},
		{"a wrong password is refused with 401", basicOpts{user: "alice", password: "not-her-password"}, 401, "", "UNAUTHORIZED"},
		{"an unknown user is refused with 401", basicOpts{user: "mallory", password: userPassword}, 401, "", "UNAUTHORIZED"},
		{"an empty password is refused with 401", basicOpts{user: "alice", password: ""}, 401, "", "UNAUTHORIZED"},
		{"a password over bcrypt's 72 bytes is refused with 401", basicOpts{user: "alice", password: userPassword + strings.Repeat("x", 80)}, 401, "", "UNAUTHORIZED"},
		{"a request without service is refused with 400", basicOpts{service: "-"}, 400, "", "INVALID"},
		{"a request for an unknown service is refused with 400", basicOpts{service: "elsewhere"}, 400, "", "INVALID"},
		{"a malformed scope is refused with 400", basicOpts{scopes: []string{"repository:acme/app"}}, 400, "", "INVALID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.get(c.req)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if c.status != 200 {
				if len(r.tok.Errors) != 1 || r.tok.Errors[0].Code != c.code {
					t.Fatalf("errors %s, want code %s", r.body, c.code)
				}
				return
			}
			if got := e.claims(r.tok.Token, registrySvc).Subject; got != c.sub {
				t.Fatalf("sub %q, want %q", got, c.sub)
			}
		})
	}

	t.Run("a Bearer header on the token endpoint is refused with 401", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.srv.URL+"/token?service="+registrySvc, nil)
		req.Header.Set("Authorization", "Bearer abc")
		if r := e.do(req); r.status != 401 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
}

func TestTokenResponseFields(t *testing.T) {
	e := newEnv(t)
	before := time.Now().Add(-time.Second).Truncate(time.Second)
	r := e.get(basicOpts{user: "admin", password: adminPassword, scopes: []string{"repository:acme/app:pull"}})
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if r.tok.Token == "" || r.tok.Token != r.tok.AccessToken {
		t.Fatalf("token and access_token must both be present and equal: %s", r.body)
	}
	if r.tok.ExpiresIn != int64(e.cfg.TokenTTL/time.Second) {
		t.Fatalf("expires_in %d, want %d", r.tok.ExpiresIn, int64(e.cfg.TokenTTL/time.Second))
	}
	issued, err := time.Parse(time.RFC3339, r.tok.IssuedAt)
	if err != nil || issued.Before(before) || issued.After(time.Now()) || issued.Location() != time.UTC {
		t.Fatalf("issued_at %q is not an RFC 3339 UTC time of now (%v)", r.tok.IssuedAt, err)
	}
	c := e.claims(r.tok.Token, registrySvc)
	if c.IssuedAt != issued.Unix() || c.Expiry-c.IssuedAt != r.tok.ExpiresIn {
		t.Fatalf("claims iat %d exp %d disagree with issued_at %s expires_in %d", c.IssuedAt, c.Expiry, r.tok.IssuedAt, r.tok.ExpiresIn)
	}
	if c.Issuer != e.cfg.Issuer || len(c.Audience) != 1 || c.Audience[0] != registrySvc {
		t.Fatalf("iss %q aud %v", c.Issuer, c.Audience)
	}
	if r.tok.Scope != "repository:acme/app:pull" {
		t.Fatalf("scope %q", r.tok.Scope)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", cc)
	}
	if r.tok.RefreshToken != "" {
		t.Fatal("a refresh token came back unasked")
	}
}

func TestOAuthGrants(t *testing.T) {
	e := newEnv(t)
	e.fixture()
	password := url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {userPassword}, "client_id": {"tests"}}

	t.Run("the password grant without access_type=offline gives no refresh token", func(t *testing.T) {
		r := e.post(clone(password))
		if r.status != 200 || r.tok.AccessToken == "" || r.tok.RefreshToken != "" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})

	offline := clone(password)
	offline.Set("access_type", "offline")
	r := e.post(offline)
	if r.status != 200 || r.tok.RefreshToken == "" {
		t.Fatalf("the password grant with access_type=offline: %d %s", r.status, r.body)
	}
	refresh := r.tok.RefreshToken

	t.Run("the refresh grant gives scoped tokens and returns the same refresh token", func(t *testing.T) {
		r := e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "scope": {"repository:acme/app:pull repository:acme/app:push", "repository:other/x:pull"}})
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if r.tok.RefreshToken != refresh {
			t.Fatalf("refresh_token %q, want the one sent", r.tok.RefreshToken)
		}
		c := e.claims(r.tok.AccessToken, registrySvc)
		if got := scopesOf(c); !slices.Equal(got, []string{"repository:acme/app:pull,push"}) || c.Subject != "bob" {
			t.Fatalf("sub %q access %v", c.Subject, got)
		}
		// A refused resource stays in the claim with no actions, so the registry
		// can tell it was asked for (a mount then falls back to an upload).
		refused := false
		for _, a := range c.Access {
			if a.Name == "other/x" {
				refused = len(a.Actions) == 0
			}
		}
		if !refused {
			t.Fatalf("access %+v: other/x should be listed with no actions", c.Access)
		}
	})
	t.Run("a refresh token for the registry is refused for trustd's API", func(t *testing.T) {
		r := e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "service": {trustdSvc}})
		if r.status != 401 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("an unknown refresh token is refused with 401", func(t *testing.T) {
		r := e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh + "x"}})
		if r.status != 401 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("a refresh token is never accepted as an access token", func(t *testing.T) {
		if r := e.api("GET", "/whoami", refresh, nil); r.status != 401 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("GET with offline_token=true gives a refresh token", func(t *testing.T) {
		r := e.get(basicOpts{user: "bob", password: userPassword, offline: true})
		if r.status != 200 || r.tok.RefreshToken == "" || r.tok.RefreshToken == refresh {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("an anonymous GET with offline_token=true gets no refresh token", func(t *testing.T) {
		r := e.get(basicOpts{offline: true})
		if r.status != 200 || r.tok.RefreshToken != "" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("a bad password grant is refused with 401", func(t *testing.T) {
		bad := clone(password)
		bad.Set("password", "wrong-password")
		if r := e.post(bad); r.status != 401 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("an unsupported grant type is refused with 400", func(t *testing.T) {
		if r := e.post(url.Values{"grant_type": {"authorization_code"}}); r.status != 400 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("refresh tokens survive a restart on the same storage", func(t *testing.T) {
		e2 := newEnvOn(t, e.cfg, e.d)
		r := e2.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "scope": {"repository:acme/app:pull"}})
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if e2.jwks.Keys[0].KeyID != e.jwks.Keys[0].KeyID {
			t.Fatal("the signing key changed across a restart")
		}
	})
}

func clone(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func TestRateLimiting(t *testing.T) {
	e := newEnv(t, func(c *trustd.Config) { c.RateLimit = trustd.RateLimitConfig{UserFailures: 5, IPFailures: 8} })
	e.fixture()

	for i := range 5 {
		if r := e.get(basicOpts{user: "alice", password: "wrong-password", ip: "192.0.2." + strconv.Itoa(i+1)}); r.status != 401 {
			t.Fatalf("failure %d: status %d", i+1, r.status)
		}
	}
	t.Run("a user's correct password is refused with 429 after too many failures", func(t *testing.T) {
		r := e.get(basicOpts{user: "alice", password: userPassword, ip: "192.0.2.100"})
		if r.status != 429 || len(r.tok.Errors) != 1 || r.tok.Errors[0].Code != "TOOMANYREQUESTS" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
	})
	t.Run("the password grant is limited the same way", func(t *testing.T) {
		r := e.post(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}})
		if r.status != 429 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("another user is not limited by alice's failures", func(t *testing.T) {
		if r := e.get(basicOpts{user: "bob", password: userPassword, ip: "192.0.2.1"}); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})

	const ip = "198.51.100.7"
	for i := range 8 {
		if r := e.get(basicOpts{user: "nobody" + strconv.Itoa(i), password: "guess", ip: ip}); r.status != 401 {
			t.Fatalf("failure %d from one IP: status %d", i+1, r.status)
		}
	}
	t.Run("a client IP with too many failures is refused with 429 even for a good user", func(t *testing.T) {
		if r := e.get(basicOpts{user: "bob", password: userPassword, ip: ip}); r.status != 429 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("bad refresh tokens count against the client IP", func(t *testing.T) {
		const ip2 = "203.0.113.9"
		statuses := []int{}
		for range 9 {
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"guess"}, "service": {registrySvc}}
			req, _ := http.NewRequest("POST", e.srv.URL+"/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-For", ip2)
			statuses = append(statuses, e.do(req).status)
		}
		if statuses[7] != 401 || statuses[8] != 429 {
			t.Fatalf("statuses %v: want 401 eight times, then 429", statuses)
		}
	})
}

func TestRights(t *testing.T) {
	e := newEnv(t, func(c *trustd.Config) { c.AnonymousPull = []string{"public/**"} })
	admin := e.fixture()
	e.mustAPI(http.StatusCreated, "POST", "/grants", admin, map[string]any{"subject": "dave", "pattern": "team/*", "actions": []string{"pull", "push"}})

	all := []string{"repository:acme/app:pull,push,delete"}
	cases := []struct {
		name  string
		user  string
		scope []string
		want  []string
	}{
		{"a reader of the org may pull and nothing else", "alice", all, []string{"repository:acme/app:pull"}},
		{"a publisher of the org may pull and push", "bob", all, []string{"repository:acme/app:pull,push"}},
		{"an owner of the org may pull, push and delete", "carol", all, all},
		{"the admin may do everything anywhere", "admin", []string{"repository:elsewhere/x:delete,pull"}, []string{"repository:elsewhere/x:delete,pull"}},
		{"a member gets nothing outside the org", "carol", []string{"repository:acmecorp/app:pull", "repository:acme:pull"}, []string{}},
		{"a person without an org gets nothing", "dave", all, []string{}},
		{"a grant gives its actions on matching repositories", "dave", []string{"repository:team/web:pull,push,delete"}, []string{"repository:team/web:pull,push"}},
		{"a grant's * spans one component only", "dave", []string{"repository:team/web/deep:pull"}, []string{}},
		{"anonymous may pull what anonymousPull lists", "", []string{"repository:public/base/img:pull,push"}, []string{"repository:public/base/img:pull"}},
		{"anonymous gets nothing else", "", all, []string{}},
		{"a person may pull what anonymous may", "alice", []string{"repository:public/x:pull"}, []string{"repository:public/x:pull"}},
		{"actions asked twice are granted once", "bob", []string{"repository:acme/app:pull", "repository:acme/app:pull,push"}, []string{"repository:acme/app:pull,push"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pw := userPassword
			if c.user == "admin" {
				pw = adminPassword
			}
			r := e.get(basicOpts{user: c.user, password: pw, scopes: c.scope})
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if got := scopesOf(e.claims(r.tok.Token, registrySvc)); !slices.Equal(got, c.want) {
				t.Fatalf("granted %v, want %v", got, c.want)
			}
		})
	}
}

func TestCatalogPatterns(t *testing.T) {
	e := newEnv(t, func(c *trustd.Config) { c.AnonymousPull = []string{"public/**"} })
	admin := e.fixture()
	e.mustAPI(http.StatusCreated, "POST", "/grants", admin, map[string]any{"subject": "dave", "pattern": "team/**", "actions": []string{"pull"}})
	e.mustAPI(http.StatusCreated, "POST", "/grants", admin, map[string]any{"subject": "dave", "pattern": "drop/**", "actions": []string{"push"}})
	cases := []struct {
		name string
		user string
		want []string // nil: no catalog entry
	}{
		{"the admin may list everything", "admin", []string{"**"}},
		{"a member lists their org and what anonymous may pull", "alice", []string{"acme/**", "public/**"}},
		{"a grant with pull adds its pattern, one without pull does not", "dave", []string{"public/**", "team/**"}},
		{"anonymous lists what anonymousPull lists", "", []string{"public/**"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pw := userPassword
			if c.user == "admin" {
				pw = adminPassword
			}
			r := e.get(basicOpts{user: c.user, password: pw, scopes: []string{"registry:catalog:*"}})
			cl := e.claims(r.tok.Token, registrySvc)
			if len(cl.Access) != 1 || cl.Access[0].Type != "registry" || cl.Access[0].Name != "catalog" || !slices.Equal(cl.Access[0].Actions, []string{"*"}) {
				t.Fatalf("access %+v", cl.Access)
			}
			if got := cl.Access[0].Patterns; !slices.Equal(got, c.want) {
				t.Fatalf("patterns %v, want %v", got, c.want)
			}
		})
	}
	t.Run("anonymous gets no catalog without anonymousPull", func(t *testing.T) {
		e := newEnv(t)
		r := e.get(basicOpts{scopes: []string{"registry:catalog:*"}})
		if got := scopesOf(e.claims(r.tok.Token, registrySvc)); len(got) != 0 {
			t.Fatalf("granted %v", got)
		}
	})
}

func TestScopeEscalation(t *testing.T) {
	e := newEnv(t)
	e.fixture()
	long := strings.Repeat("a", 300)
	cases := []struct {
		name  string
		user  string
		scope string
	}{
		{"push without a grant is not granted", "alice", "repository:acme/app:push"},
		{"* on a repository is not granted", "carol", "repository:acme/app:*"},
		{"* on a repository is not granted even to the admin", "admin", "repository:acme/app:*"},
		{"a name with .. is refused", "carol", "repository:acme/../other/app:pull"},
		{"a name with %2F is refused", "carol", "repository:acme%2Fapp:pull"},
		{"a name with upper case is refused", "carol", "repository:acme/App:pull"},
		{"a 300-character component is refused", "carol", "repository:acme/" + long + ":pull"},
		{"an unknown action is refused", "carol", "repository:acme/app:admin"},
		{"an unknown resource type is refused", "carol", "namespace:acme:pull"},
		{"a catalog scope with another name is refused", "admin", "registry:users:*"},
		{"a scope with extra colons is refused", "carol", "repository:acme/app:pull:push"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pw := userPassword
			if c.user == "admin" {
				pw = adminPassword
			}
			r := e.get(basicOpts{user: c.user, password: pw, scopes: []string{c.scope}})
			switch r.status {
			case 400:
			case 200:
				if got := scopesOf(e.claims(r.tok.Token, registrySvc)); len(got) != 0 {
					t.Fatalf("granted %v", got)
				}
			default:
				t.Fatalf("status %d: %s", r.status, r.body)
			}
		})
	}
}

func TestSecretsAreRefusedInTheURL(t *testing.T) {
	e := newEnv(t)
	e.fixture()
	offline := e.post(url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {userPassword}, "access_type": {"offline"}})
	if offline.status != 200 || offline.tok.RefreshToken == "" {
		t.Fatalf("password grant: %d %s", offline.status, offline.body)
	}
	cases := []struct {
		name        string
		query, body url.Values
	}{
		{"a password in the query of a password grant",
			url.Values{"password": {userPassword}},
			url.Values{"grant_type": {"password"}, "username": {"bob"}}},
		{"a password grant entirely in the query",
			url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {userPassword}},
			url.Values{}},
		{"a refresh token in the query of a refresh grant",
			url.Values{"refresh_token": {offline.tok.RefreshToken}},
			url.Values{"grant_type": {"refresh_token"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.body.Set("service", registrySvc)
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/token?"+c.query.Encode(), strings.NewReader(c.body.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r := e.do(req)
			if r.status != http.StatusBadRequest || r.tok.AccessToken != "" {
				t.Fatalf("status %d, want 400 and no token: %s", r.status, r.body)
			}
		})
	}
}
