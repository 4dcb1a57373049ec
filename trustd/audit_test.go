package trustd_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
)

// auditPage queries GET /api/v1/audit with token and params, wanting status.
func (e *env) auditPage(want int, token string, params url.Values) (audit.Page, []byte) {
	e.t.Helper()
	r := e.mustAPI(want, "GET", "/audit?"+params.Encode(), token, nil)
	var page audit.Page
	if want == http.StatusOK {
		if err := json.Unmarshal(r.body, &page); err != nil {
			e.t.Fatalf("the audit answer is not a page: %v: %s", err, r.body)
		}
	}
	return page, r.body
}

// summary renders records as "action actor subject org", for comparisons.
func summary(recs []audit.Record) []string {
	out := []string{}
	for _, r := range recs {
		f := slices.DeleteFunc([]string{r.Action, r.Actor, r.Subject, r.Org}, func(s string) bool { return s == "" })
		out = append(out, strings.Join(f, " "))
	}
	return out
}

func TestAuditRecordsEveryManagementAction(t *testing.T) {
	e := newEnv(t)
	admin := e.fixture()
	carol := e.login("carol", userPassword)
	g := e.mustAPI(http.StatusCreated, "POST", "/grants", admin, map[string]any{"subject": "dave", "pattern": "acme/**", "actions": []string{"pull"}})
	var grant struct{ ID string }
	json.Unmarshal(g.body, &grant)
	e.mustAPI(http.StatusNoContent, "DELETE", "/grants/"+grant.ID, admin, nil)
	rob := e.mustAPI(http.StatusCreated, "POST", "/orgs/acme/robots", carol, map[string]any{"name": "ci", "scopes": []string{"repository:acme/app:pull"}})
	var robot struct{ Name, Secret string }
	json.Unmarshal(rob.body, &robot)
	off := e.get(basicOpts{user: robot.Name, password: robot.Secret, offline: true, scopes: []string{"repository:acme/app:pull"}})
	if off.status != http.StatusOK || off.tok.RefreshToken == "" {
		t.Fatalf("the robot's offline token: %d %s", off.status, off.body)
	}
	e.mustAPI(http.StatusNoContent, "DELETE", "/orgs/acme/robots/ci", carol, nil)
	e.mustAPI(http.StatusNoContent, "DELETE", "/orgs/acme/members/alice", carol, nil)

	page, body := e.auditPage(http.StatusOK, admin, url.Values{"limit": {"1000"}})
	want := []string{
		"org.create admin acme",
		// fixture's users and members, in map order: checked as a set below
		"grant.create admin dave acme",
		"grant.delete admin dave acme",
		"token.create carol acme+ci acme",
		"token.create acme+ci acme+ci acme",
		"token.revoke carol acme+ci acme",
		"member.remove carol alice acme",
	}
	got := summary(page.Records)
	if len(got) != len(want)+4+3 || got[0] != want[0] || !slices.Equal(got[len(got)-6:], want[1:]) {
		t.Errorf("records:\n%s\nwant org.create, 4 user.create and 3 member.set, then\n%s", strings.Join(got, "\n"), strings.Join(want[1:], "\n"))
	}
	users, members := 0, 0
	for _, r := range page.Records {
		switch r.Action {
		case audit.ActionUserCreate:
			users++
		case audit.ActionMemberSet:
			members++
			if r.Detail == "" {
				t.Errorf("member.set of %s does not say the role", r.Subject)
			}
		}
		if r.Source != "trustd" || r.Outcome != audit.OutcomeSuccess || r.RequestID == "" || r.ID == "" {
			t.Errorf("record %+v lacks its source, outcome, request ID or ID", r)
		}
	}
	if users != 4 || members != 3 {
		t.Errorf("got %d user.create and %d member.set records, want 4 and 3", users, members)
	}
	for name, secret := range map[string]string{"robot secret": robot.Secret, "refresh token": off.tok.RefreshToken, "password": userPassword, "admin password": adminPassword} {
		if strings.Contains(string(body), secret) {
			t.Errorf("the audit log holds the %s", name)
		}
	}
	var revoke audit.Record
	for _, r := range page.Records {
		if r.Action == audit.ActionTokenRevoke {
			revoke = r
		}
	}
	if !strings.Contains(revoke.Detail, "1 refresh tokens") {
		t.Errorf("the revocation says %q, want the one refresh token it revoked", revoke.Detail)
	}

	t.Run("filters reach the API", func(t *testing.T) {
		page, _ := e.auditPage(http.StatusOK, admin, url.Values{"action": {"token.*"}, "actor": {"carol"}})
		if got := summary(page.Records); !slices.Equal(got, []string{"token.create carol acme+ci acme", "token.revoke carol acme+ci acme"}) {
			t.Errorf("got %q", got)
		}
		page, _ = e.auditPage(http.StatusOK, admin, url.Values{"limit": {"2"}})
		if len(page.Records) != 2 || page.Next == "" {
			t.Fatalf("limit 2 gave %d records, next %q", len(page.Records), page.Next)
		}
		next, _ := e.auditPage(http.StatusOK, admin, url.Values{"limit": {"2"}, "after": {page.Next}})
		if len(next.Records) != 2 || next.Records[0].ID <= page.Records[1].ID {
			t.Errorf("the next page does not follow the first: %+v", next.Records)
		}
	})
}

func TestAuditAuthorisation(t *testing.T) {
	e := newEnv(t)
	admin := e.fixture()
	e.mustAPI(http.StatusCreated, "POST", "/orgs", admin, map[string]string{"name": "other"})
	e.mustAPI(http.StatusCreated, "POST", "/grants", admin, map[string]any{"subject": "dave", "pattern": "other/**", "actions": []string{"pull"}})
	carol := e.login("carol", userPassword)
	rob := e.mustAPI(http.StatusCreated, "POST", "/orgs/acme/robots", carol, map[string]any{"name": "ci", "scopes": []string{"repository:acme/app:pull"}})
	var robot struct{ Name, Secret string }
	json.Unmarshal(rob.body, &robot)
	robotTok := e.login(robot.Name, robot.Secret)

	t.Run("an org owner reads only their orgs", func(t *testing.T) {
		page, _ := e.auditPage(http.StatusOK, carol, nil)
		if len(page.Records) == 0 {
			t.Fatal("carol sees no records of acme")
		}
		for _, r := range page.Records {
			if r.Org != "acme" {
				t.Errorf("carol, owner of acme only, sees %+v", r)
			}
		}
	})
	refused := []struct {
		name, token string
		params      url.Values
		want        int
	}{
		{"an owner asking for another org is refused", carol, url.Values{"org": {"other"}}, http.StatusForbidden},
		{"an owner asking for their org and another is refused", carol, url.Values{"org": {"acme,other"}}, http.StatusForbidden},
		{"a reader is refused", e.login("alice", userPassword), nil, http.StatusForbidden},
		{"a publisher is refused", e.login("bob", userPassword), nil, http.StatusForbidden},
		{"a person in no org is refused", e.login("dave", userPassword), nil, http.StatusForbidden},
		{"a robot is refused", robotTok, nil, http.StatusForbidden},
		{"no token is refused", "", nil, http.StatusUnauthorized},
		{"a bad limit is a 400", admin, url.Values{"limit": {"0"}}, http.StatusBadRequest},
		{"a limit over the maximum is a 400", admin, url.Values{"limit": {"5000"}}, http.StatusBadRequest},
		{"a bad since is a 400", admin, url.Values{"since": {"last tuesday"}}, http.StatusBadRequest},
		{"until before since is a 400", admin, url.Values{"since": {"2026-01-02T00:00:00Z"}, "until": {"2026-01-01T00:00:00Z"}}, http.StatusBadRequest},
		{"a bad cursor is a 400", admin, url.Values{"after": {"../../etc"}}, http.StatusBadRequest},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			e.auditPage(tc.want, tc.token, tc.params)
		})
	}
	t.Run("an admin reads every org", func(t *testing.T) {
		page, _ := e.auditPage(http.StatusOK, admin, url.Values{"org": {"other"}})
		if got := summary(page.Records); !slices.Equal(got, []string{"org.create admin other", "grant.create admin dave other"}) {
			t.Errorf("got %q", got)
		}
	})
}

// failingAudit fails every write under trustd's audit log while on is set.
type failingAudit struct {
	driver.Driver
	on atomic.Bool
}

func (f *failingAudit) PutContentIf(ctx context.Context, p string, data []byte, c driver.Condition) (string, error) {
	if f.on.Load() && strings.HasPrefix(p, "/trustd/v1/audit/") {
		return "", errors.New("disk full")
	}
	return f.Driver.PutContentIf(ctx, p, data, c)
}

func TestAuditWriteFailureIsAnError(t *testing.T) {
	d := &failingAudit{Driver: inmemory.New()}
	e := newEnvOn(t, testConfig(), d)
	admin := e.fixture()
	d.on.Store(true)
	r := e.mustAPI(http.StatusInternalServerError, "POST", "/grants", admin, map[string]any{"subject": "dave", "pattern": "acme/**", "actions": []string{"pull"}})
	if !strings.Contains(string(r.body), "audit record") {
		t.Errorf("the 500 does not say the audit record failed: %s", r.body)
	}
	if !strings.Contains(e.logs.String(), "disk full") {
		t.Error("the log does not hold the cause of the failed audit write")
	}
	if off := e.get(basicOpts{user: "dave", password: userPassword, offline: true}); off.status != http.StatusInternalServerError || off.tok.RefreshToken != "" {
		t.Errorf("a refresh token was handed out without its audit record: %d %s", off.status, off.body)
	}
}

func TestRegistryAuditScopeIsForAdminsOnly(t *testing.T) {
	e := newEnv(t)
	e.fixture()
	for _, tc := range []struct {
		user, password string
		want           []string
	}{
		{"admin", adminPassword, []string{"registry:audit:read"}},
		{"carol", userPassword, []string{}},
		{"dave", userPassword, []string{}},
	} {
		r := e.get(basicOpts{user: tc.user, password: tc.password, scopes: []string{"registry:audit:read"}})
		if r.status != http.StatusOK {
			t.Fatalf("%s asking for registry:audit:read: %d %s", tc.user, r.status, r.body)
		}
		if got := scopesOf(e.claims(r.tok.AccessToken, registrySvc)); !slices.Equal(got, tc.want) {
			t.Errorf("%s got %q, want %q", tc.user, got, tc.want)
		}
	}
}

// hangUpAtAudit cancels the request whose audit record it is asked to write,
// as a client that hangs up right after its change is committed does, and then
// writes the record as a driver that honours cancellation (S3) would: not at
// all once its context is done.
type hangUpAtAudit struct {
	driver.Driver
	on     atomic.Bool
	cancel atomic.Pointer[context.CancelFunc] // the current request's
}

func (d *hangUpAtAudit) PutContentIf(ctx context.Context, p string, data []byte, c driver.Condition) (string, error) {
	if d.on.Load() && strings.HasPrefix(p, "/trustd/v1/audit/") {
		if cancel := d.cancel.Load(); cancel != nil {
			(*cancel)()
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
	}
	return d.Driver.PutContentIf(ctx, p, data, c)
}

// handler gives every request a context that d can cancel.
func (d *hangUpAtAudit) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		d.cancel.Store(&cancel)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func TestAuditRecordOutlivesAClientThatHangsUp(t *testing.T) {
	d := &hangUpAtAudit{Driver: inmemory.New()}
	e := newEnvOn(t, testConfig(), d)
	e.srv.Config.Handler = d.handler(e.srv.Config.Handler)
	admin := e.fixture()
	d.on.Store(true)
	e.mustAPI(http.StatusCreated, "POST", "/grants", admin, map[string]any{"subject": "dave", "pattern": "acme/**", "actions": []string{"pull"}})
	d.on.Store(false)
	page, _ := e.auditPage(http.StatusOK, admin, url.Values{"action": {audit.ActionGrantCreate}})
	if got := summary(page.Records); !slices.Equal(got, []string{"grant.create admin dave acme"}) {
		t.Errorf("the grant made while its client hung up left records %q, want its grant.create", got)
	}
}

func TestClientIDIsPrintableASCII(t *testing.T) {
	e := newEnv(t)
	admin := e.fixture()
	for _, tc := range []struct {
		name, clientID string
		want           int
	}{
		{"a terminal escape is refused", "ci\x1b[2J\x1b]0;pwned\a", http.StatusBadRequest},
		{"a newline is refused", "ci\nforged line", http.StatusBadRequest},
		{"non-ASCII is refused", "clïent", http.StatusBadRequest},
		{"65 characters are refused", strings.Repeat("c", 65), http.StatusBadRequest},
		{"64 printable characters are kept", strings.Repeat("c", 60) + " ~!}", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {userPassword}, "access_type": {"offline"}, "client_id": {tc.clientID}}
			if r := e.post(form); r.status != tc.want {
				t.Errorf("POST /token: %d %s, want %d", r.status, r.body, tc.want)
			}
			q := url.Values{"service": {registrySvc}, "offline_token": {"true"}, "client_id": {tc.clientID}}
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/token?"+q.Encode(), nil)
			req.SetBasicAuth("bob", userPassword)
			r := e.do(req)
			if r.status != tc.want {
				t.Errorf("GET /token: %d %s, want %d", r.status, r.body, tc.want)
			}
			if tc.want == http.StatusBadRequest && !strings.Contains(string(r.body), "client_id") {
				t.Errorf("the 400 does not name client_id: %s", r.body)
			}
		})
	}
	page, _ := e.auditPage(http.StatusOK, admin, url.Values{"action": {audit.ActionTokenCreate}, "actor": {"bob"}})
	if len(page.Records) != 2 {
		t.Fatalf("bob's refresh tokens left %d records, want the 2 accepted", len(page.Records))
	}
	for _, r := range page.Records {
		if !strings.Contains(r.Detail, "(client "+strings.Repeat("c", 60)+" ~!})") {
			t.Errorf("the record's detail %q does not hold the whole client_id", r.Detail)
		}
	}
}
