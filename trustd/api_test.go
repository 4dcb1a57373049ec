package trustd_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-oss/signet/trustd"
)

type robotReply struct {
	Name    string   `json:"name"`
	Secret  string   `json:"secret"`
	Scopes  []string `json:"scopes"`
	Expires string   `json:"expires"`
	Created string   `json:"created"`
}

func TestRobots(t *testing.T) {
	e := newEnv(t)
	e.fixture()
	owner := e.login("carol", userPassword)

	r := e.mustAPI(http.StatusCreated, "POST", "/orgs/acme/robots", owner, map[string]any{"name": "ci-bot", "scopes": []string{"repository:acme/app:pull"}, "ttl": "720h"})
	var rob robotReply
	json.Unmarshal(r.body, &rob)
	if rob.Name != "acme+ci-bot" || len(rob.Secret) < 43 || !slices.Equal(rob.Scopes, []string{"repository:acme/app:pull"}) {
		t.Fatalf("robot %s", r.body)
	}
	if exp, err := time.Parse(time.RFC3339, rob.Expires); err != nil || exp.Sub(time.Now()) < 719*time.Hour || exp.Sub(time.Now()) > 721*time.Hour {
		t.Fatalf("expires %q", rob.Expires)
	}

	t.Run("a robot never gets more than its scopes", func(t *testing.T) {
		r := e.get(basicOpts{user: rob.Name, password: rob.Secret, scopes: []string{"repository:acme/app:pull,push,delete", "repository:acme/other:pull"}})
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if got := scopesOf(e.claims(r.tok.Token, registrySvc)); !slices.Equal(got, []string{"repository:acme/app:pull"}) {
			t.Fatalf("granted %v", got)
		}
	})
	t.Run("a robot's wrong secret is refused with 401", func(t *testing.T) {
		// Change the last character, whatever it is.
		last := "A"
		if strings.HasSuffix(rob.Secret, last) {
			last = "B"
		}
		if r := e.get(basicOpts{user: rob.Name, password: rob.Secret[:len(rob.Secret)-1] + last}); r.status != 401 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("the robot list shows no secrets", func(t *testing.T) {
		r := e.mustAPI(200, "GET", "/orgs/acme/robots", owner, nil)
		if strings.Contains(string(r.body), rob.Secret) || !strings.Contains(string(r.body), `"acme+ci-bot"`) {
			t.Fatalf("list %s", r.body)
		}
	})
	t.Run("a robot cannot create orgs", func(t *testing.T) {
		tok := e.login(rob.Name, rob.Secret)
		e.mustAPI(http.StatusForbidden, "POST", "/orgs", tok, map[string]string{"name": "robotorg"})
		e.mustAPI(http.StatusForbidden, "POST", "/orgs/acme/robots", tok, map[string]any{"name": "child", "scopes": []string{"repository:acme/app:pull"}})
		r := e.mustAPI(200, "GET", "/whoami", tok, nil)
		if string(r.body) != `{"name":"acme+ci-bot","kind":"robot","admin":false,"orgs":{"acme":"robot"}}` {
			t.Fatalf("whoami %s", r.body)
		}
	})
	t.Run("a duplicate robot name is refused with 409", func(t *testing.T) {
		e.mustAPI(http.StatusConflict, "POST", "/orgs/acme/robots", owner, map[string]any{"name": "ci-bot", "scopes": []string{"repository:acme/app:pull"}})
	})
	for _, c := range []struct{ name, scope string }{
		{"a scope outside the org is refused with 400", "repository:other/app:pull"},
		{"a scope on a prefix-sharing org is refused with 400", "repository:acmecorp/app:pull"},
		{"a catalog scope is refused with 400", "registry:catalog:*"},
		{"a * action is refused with 400", "repository:acme/app:*"},
		{"a malformed scope is refused with 400", "repository:acme/App:pull"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.mustAPI(http.StatusBadRequest, "POST", "/orgs/acme/robots", owner, map[string]any{"name": "bad-bot", "scopes": []string{c.scope}})
		})
	}

	// A refresh token for the robot, taken before it is revoked.
	form := url.Values{"grant_type": {"password"}, "username": {rob.Name}, "password": {rob.Secret}, "access_type": {"offline"}}
	rt := e.post(form).tok.RefreshToken
	if rt == "" {
		t.Fatal("no refresh token for the robot")
	}
	e.mustAPI(http.StatusNoContent, "DELETE", "/orgs/acme/robots/ci-bot", owner, nil)

	t.Run("a revoked robot's Basic auth is refused", func(t *testing.T) {
		if r := e.get(basicOpts{user: rob.Name, password: rob.Secret}); r.status != 401 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("a revoked robot's refresh token is refused", func(t *testing.T) {
		if r := e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); r.status != 401 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("a robot made again under the same name does not revive old refresh tokens", func(t *testing.T) {
		e.mustAPI(http.StatusCreated, "POST", "/orgs/acme/robots", owner, map[string]any{"name": "ci-bot", "scopes": []string{"repository:acme/app:pull"}})
		if r := e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); r.status != 401 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("a robot's records survive a restart", func(t *testing.T) {
		e2 := newEnvOn(t, e.cfg, e.d)
		r := e2.mustAPI(200, "GET", "/orgs/acme/robots", e2.login("carol", userPassword), nil)
		var list []robotReply
		json.Unmarshal(r.body, &list)
		if len(list) != 1 || list[0].Name != "acme+ci-bot" {
			t.Fatalf("robots after restart: %s", r.body)
		}
	})
}

func TestExpiredRobotIsRefused(t *testing.T) {
	e := newEnv(t)
	admin := e.fixture()
	r := e.mustAPI(http.StatusCreated, "POST", "/orgs/acme/robots", admin, map[string]any{"name": "brief", "scopes": []string{"repository:acme/app:pull"}, "ttl": "1s"})
	var rob robotReply
	json.Unmarshal(r.body, &rob)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if r := e.get(basicOpts{user: rob.Name, password: rob.Secret}); r.status == 401 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("a robot past its expiry still gets tokens")
}

func TestManagementAPIAuthorisation(t *testing.T) {
	e := newEnv(t)
	admin := e.fixture()
	reader := e.login("alice", userPassword)
	owner := e.login("carol", userPassword)
	outsider := e.login("dave", userPassword)
	registryToken := e.get(basicOpts{user: "admin", password: adminPassword}).tok.Token
	robotBody := map[string]any{"name": "bot", "scopes": []string{"repository:acme/app:pull"}}

	cases := []struct {
		name   string
		token  string
		method string
		path   string
		body   any
		status int
	}{
		{"a request without a token is refused with 401", "", "GET", "/whoami", nil, 401},
		{"a token for the registry is refused with 401", registryToken, "GET", "/whoami", nil, 401},
		{"a garbage token is refused with 401", "a.b.c", "GET", "/whoami", nil, 401},
		{"a reader cannot create robots", reader, "POST", "/orgs/acme/robots", robotBody, 403},
		{"a reader cannot list robots", reader, "GET", "/orgs/acme/robots", nil, 403},
		{"a reader cannot add members", reader, "PUT", "/orgs/acme/members/dave", map[string]string{"role": "owner"}, 403},
		{"a reader may read the org", reader, "GET", "/orgs/acme", nil, 200},
		{"an outsider cannot read the org", outsider, "GET", "/orgs/acme", nil, 403},
		{"an owner cannot create orgs", owner, "POST", "/orgs", map[string]string{"name": "mine"}, 403},
		{"an owner cannot create users", owner, "POST", "/users", map[string]string{"name": "eve", "password": userPassword}, 403},
		{"an owner cannot grant", owner, "POST", "/grants", map[string]any{"subject": "dave", "pattern": "**", "actions": []string{"push"}}, 403},
		{"an owner cannot manage another org", owner, "POST", "/orgs/other/robots", robotBody, 403},
		{"an owner may add members", owner, "PUT", "/orgs/acme/members/dave", map[string]string{"role": "reader"}, 200},
		{"an unknown role is refused with 400", owner, "PUT", "/orgs/acme/members/dave", map[string]string{"role": "god"}, 400},
		{"a member who is not a person is refused with 404", owner, "PUT", "/orgs/acme/members/nobody", map[string]string{"role": "reader"}, 404},
		{"an owner may remove members", owner, "DELETE", "/orgs/acme/members/dave", nil, 204},
		{"an owner may create robots", owner, "POST", "/orgs/acme/robots", robotBody, 201},
		{"unknown JSON fields are refused with 400", admin, "POST", "/orgs", map[string]any{"name": "x", "admin": true}, 400},
		{"an invalid org name is refused with 400", admin, "POST", "/orgs", map[string]string{"name": "Acme"}, 400},
		{"an invalid user name is refused with 400", admin, "POST", "/users", map[string]string{"name": "a/b", "password": userPassword}, 400},
		{"a short password is refused with 400", admin, "POST", "/users", map[string]string{"name": "eve", "password": "short"}, 400},
		{"a grant for an unknown user is refused with 404", admin, "POST", "/grants", map[string]any{"subject": "ghost", "pattern": "x/**", "actions": []string{"pull"}}, 404},
		{"a grant with a bad pattern is refused with 400", admin, "POST", "/grants", map[string]any{"subject": "dave", "pattern": "x/**y", "actions": []string{"pull"}}, 400},
		{"a grant with * as action is refused with 400", admin, "POST", "/grants", map[string]any{"subject": "dave", "pattern": "x/**", "actions": []string{"*"}}, 400},
		{"an unknown endpoint is 404", admin, "GET", "/nothing", nil, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.api(c.method, c.path, c.token, c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if c.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Bearer realm="http://`) {
				t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestManagementAPI(t *testing.T) {
	e := newEnv(t)
	admin := e.login("admin", adminPassword)

	t.Run("creating an org is idempotent", func(t *testing.T) {
		e.mustAPI(http.StatusCreated, "POST", "/orgs", admin, map[string]string{"name": "acme"})
		r := e.mustAPI(http.StatusOK, "POST", "/orgs", admin, map[string]string{"name": "acme"})
		if string(r.body) != `{"name":"acme","members":{}}` {
			t.Fatalf("org %s", r.body)
		}
	})
	t.Run("a duplicate user is refused with 409", func(t *testing.T) {
		e.mustAPI(http.StatusCreated, "POST", "/users", admin, map[string]string{"name": "alice", "password": userPassword})
		r := e.mustAPI(http.StatusConflict, "POST", "/users", admin, map[string]string{"name": "alice", "password": "another-password"})
		if !strings.Contains(string(r.body), `"CONFLICT"`) {
			t.Fatalf("body %s", r.body)
		}
		if s := e.get(basicOpts{user: "alice", password: "another-password"}).status; s != 401 {
			t.Fatalf("the duplicate's password works: %d", s)
		}
	})
	t.Run("whoami names the admin", func(t *testing.T) {
		r := e.mustAPI(200, "GET", "/whoami", admin, nil)
		if string(r.body) != `{"name":"admin","kind":"person","admin":true}` {
			t.Fatalf("whoami %s", r.body)
		}
	})
	t.Run("members appear in the org", func(t *testing.T) {
		e.mustAPI(200, "PUT", "/orgs/acme/members/alice", admin, map[string]string{"role": "publisher"})
		r := e.mustAPI(200, "GET", "/orgs/acme", admin, nil)
		if string(r.body) != `{"name":"acme","members":{"alice":"publisher"}}` {
			t.Fatalf("org %s", r.body)
		}
	})
	t.Run("grants are listed and deleted", func(t *testing.T) {
		r := e.mustAPI(http.StatusCreated, "POST", "/grants", admin, map[string]any{"subject": "alice", "pattern": "team/**", "actions": []string{"push", "pull"}})
		var g struct {
			ID      string   `json:"id"`
			Actions []string `json:"actions"`
		}
		json.Unmarshal(r.body, &g)
		if g.ID == "" || !slices.Equal(g.Actions, []string{"pull", "push"}) {
			t.Fatalf("grant %s", r.body)
		}
		tok := e.get(basicOpts{user: "alice", password: userPassword, scopes: []string{"repository:team/a/b:push"}}).tok.Token
		if got := scopesOf(e.claims(tok, registrySvc)); !slices.Equal(got, []string{"repository:team/a/b:push"}) {
			t.Fatalf("granted %v", got)
		}
		if r := e.mustAPI(200, "GET", "/grants", admin, nil); !strings.Contains(string(r.body), g.ID) {
			t.Fatalf("list %s", r.body)
		}
		e.mustAPI(http.StatusNoContent, "DELETE", "/grants/"+g.ID, admin, nil)
		e.mustAPI(http.StatusNotFound, "DELETE", "/grants/"+g.ID, admin, nil)
		tok = e.get(basicOpts{user: "alice", password: userPassword, scopes: []string{"repository:team/a/b:push"}}).tok.Token
		if got := scopesOf(e.claims(tok, registrySvc)); len(got) != 0 {
			t.Fatalf("a deleted grant still grants %v", got)
		}
	})
	t.Run("a removed member loses access at the next exchange", func(t *testing.T) {
		e.mustAPI(204, "DELETE", "/orgs/acme/members/alice", admin, nil)
		tok := e.get(basicOpts{user: "alice", password: userPassword, scopes: []string{"repository:acme/app:pull"}}).tok.Token
		if got := scopesOf(e.claims(tok, registrySvc)); len(got) != 0 {
			t.Fatalf("granted %v", got)
		}
	})
}

func TestFirstStart(t *testing.T) {
	t.Run("a generated admin password is shown once, never logged, and works", func(t *testing.T) {
		e := newEnv(t, func(c *trustd.Config) { c.AdminPassword = "" })
		out := e.notice.String()
		fields := strings.Fields(out)
		if len(fields) == 0 {
			t.Fatal("no admin password was shown")
		}
		pw := fields[len(fields)-1]
		if strings.Contains(e.logs.String(), pw) {
			t.Fatal("the generated password is in the log")
		}
		if r := e.get(basicOpts{user: "admin", password: pw}); r.status != 200 {
			t.Fatalf("the generated password does not work: %d", r.status)
		}
		e2 := newEnvOn(t, e.cfg, e.d)
		if e2.notice.Len() != 0 {
			t.Fatal("a second start showed a password again")
		}
	})
	t.Run("SIGNET_ADMIN_USER and SIGNET_ADMIN_PASSWORD override the config", func(t *testing.T) {
		t.Setenv("SIGNET_ADMIN_USER", "root")
		t.Setenv("SIGNET_ADMIN_PASSWORD", "from-the-environment")
		cfg, err := trustd.LoadConfig("")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.AdminUser != "root" || cfg.AdminPassword != "from-the-environment" {
			t.Fatalf("admin %q / %q", cfg.AdminUser, cfg.AdminPassword)
		}
	})
}

func TestNoSecretsInLogs(t *testing.T) {
	e := newEnv(t)
	admin := e.fixture()
	r := e.mustAPI(http.StatusCreated, "POST", "/orgs/acme/robots", admin, map[string]any{"name": "ci-bot", "scopes": []string{"repository:acme/app:pull"}})
	var rob robotReply
	json.Unmarshal(r.body, &rob)
	refresh := e.get(basicOpts{user: "alice", password: userPassword, offline: true}).tok.RefreshToken
	access := e.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}).tok.AccessToken
	e.get(basicOpts{user: "alice", password: "a-wrong-password"})
	e.get(basicOpts{user: rob.Name, password: rob.Secret})

	logs := e.logs.String()
	for what, secret := range map[string]string{
		"the admin password": adminPassword, "a user password": userPassword, "a wrong password": "a-wrong-password",
		"a robot secret": rob.Secret, "a refresh token": refresh, "an access token": access, "an admin token": admin,
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("%s is in the log", what)
		}
	}
	if !strings.Contains(logs, "sub=alice") || !strings.Contains(logs, "status=401") {
		t.Errorf("the access log lacks the subject or status:\n%s", logs)
	}
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*trustd.Config)
		key  string
	}{
		{"a token TTL under 60s is refused", func(c *trustd.Config) { c.TokenTTL = 30 * time.Second }, "tokenTTL"},
		{"an invalid anonymousPull pattern is refused", func(c *trustd.Config) { c.AnonymousPull = []string{"Acme/**"} }, "anonymousPull[0]"},
		{"a bcrypt cost out of range is refused", func(c *trustd.Config) { c.BcryptCost = 40 }, "bcryptCost"},
		{"a service equal to trustd's own is refused", func(c *trustd.Config) { c.Services = []string{"trustd"} }, "services[0]"},
		{"a bad trusted proxy is refused", func(c *trustd.Config) { c.TrustedProxies = []string{"localhost"} }, "trustedProxies"},
		{"a short admin password is refused", func(c *trustd.Config) { c.AdminPassword = "short" }, "adminPassword"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := trustd.Defaults()
			c.mod(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.key+":") && !strings.Contains(err.Error(), c.key+" ") {
				t.Fatalf("error %v does not name %s", err, c.key)
			}
		})
	}
	if err := trustd.Defaults().Validate(); err != nil {
		t.Fatalf("the defaults are invalid: %v", err)
	}
}
