package tuf_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/signet-oss/signet/trustnames"
)

// The snapshot is public and lists every repository role by its hash; a refused
// publish or read of such a role must not turn the hash back into the name of a
// repository the caller may not read.
func TestARefusalNamesNoRepositoryTheCallerMayNotRead(t *testing.T) {
	a := newAttackEnv(t)
	app := trustnames.RoleForRepo("acme/app")
	body := sign(t, role(2, nil, targets("acme/app:v2", target("v2"))), a.stranger)
	for _, c := range []struct {
		name   string
		token  string
		status int
	}{
		{"an anonymous publish", "", http.StatusUnauthorized},
		{"a publish by someone outside the org", a.dave, http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := a.put(app, body, c.token)
			if r.status != c.status {
				t.Fatalf("PUT %s: %d %s, want %d", app, r.status, r.body, c.status)
			}
			if strings.Contains(string(r.body), "acme/app") {
				t.Fatalf("the refusal names the repository: %s", r.body)
			}
			for _, path := range []string{"/tuf/api/roles/" + app, "/tuf/api/staged/" + app, "/tuf/1." + app + ".json"} {
				if r := a.do("GET", path, c.token, nil); r.status != c.status || strings.Contains(string(r.body), "acme/app") {
					t.Fatalf("GET %s: %d %s, want %d naming no repository", path, r.status, r.body, c.status)
				}
			}
		})
	}
	t.Run("a reader of the repository is told which one", func(t *testing.T) {
		reader := a.user("rita", "acme", "reader")
		if r := a.put(app, body, reader); r.status != http.StatusForbidden || !strings.Contains(string(r.body), "needs push on acme/app") {
			t.Fatalf("PUT %s as a reader: %d %s, want 403 naming acme/app", app, r.status, r.body)
		}
	})
}
