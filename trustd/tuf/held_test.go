package tuf_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/trustd/tuf"
	"github.com/signet-oss/signet/trustnames"
)

// heldVersion returns the version of role trustd holds, 0 for none.
func (e *env) heldVersion(t *testing.T, role string) (int64, *metadata.Metadata[metadata.TargetsType]) {
	t.Helper()
	r := e.do("GET", "/tuf/api/held/"+role, e.admin, nil)
	if r.status == 404 {
		return 0, nil
	}
	md, err := (&metadata.Metadata[metadata.TargetsType]{}).FromBytes(r.body)
	if r.status != 200 || err != nil {
		t.Fatalf("GET held %s: %d %s", role, r.status, r.body)
	}
	return md.Signed.Version, md
}

func TestAVersionDelegatingARoleWithoutMetadataIsHeldUntilItsFirstVersion(t *testing.T) {
	e := newEnv(t, nil)
	orgKey, pub := newKey(t), newKey(t)
	e.org("acme", []*key{orgKey}, 1)
	orgRole := trustnames.RoleForOrg("acme")
	bob := e.user("bob", "acme", "publisher")
	put := func(want int, role string, md *metadata.Metadata[metadata.TargetsType], token string, keys ...*key) reply {
		t.Helper()
		return e.mustPut(want, role, sign(t, md, keys...), token)
	}

	r := put(202, orgRole, role(2, []delegation{repoDelegation("acme/a", 1, pub)}, nil), e.admin, orgKey)
	if !contains(r.body, `"held":true`) || !contains(r.body, `"repository":"acme/a"`) {
		t.Fatalf("org-acme v2 delegating acme/a: %s, want held for acme/a", r.body)
	}
	t.Run("a held version is served as held, never as published", func(t *testing.T) {
		if v, _ := e.heldVersion(t, orgRole); v != 2 {
			t.Fatalf("held version %d, want 2", v)
		}
		if r := e.do("GET", "/tuf/2.org-acme.json", e.admin, nil); r.status != 404 {
			t.Errorf("GET /tuf/2.org-acme.json: %d, want 404", r.status)
		}
		if r := e.do("GET", "/tuf/api/held/"+orgRole, "", nil); r.status != 401 {
			t.Errorf("an anonymous read of the held org role: %d, want 401", r.status)
		}
		e.snapshotListsEveryDelegation(t)
	})
	t.Run("a consistent copy for a backup holds the held version", func(t *testing.T) {
		files, err := tuf.ReadConsistent(context.Background(), e.d)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(files, func(f tuf.File) bool { return strings.Contains(f.Path, "/held/"+orgRole+"/2.") }) {
			t.Fatal("the copy lacks the held org-acme v2")
		}
	})
	t.Run("a restarted trustd holds it still", func(t *testing.T) {
		e2 := startEnv(t, e.d)
		if v, _ := e2.heldVersion(t, orgRole); v != 2 {
			t.Fatalf("held version after a restart %d, want 2", v)
		}
	})
	t.Run("a later version still delegating roles without metadata replaces it", func(t *testing.T) {
		put(202, orgRole, role(2, []delegation{repoDelegation("acme/a", 1, pub), repoDelegation("acme/b", 1, pub)}, nil), e.admin, orgKey)
		if _, md := e.heldVersion(t, orgRole); md == nil || len(md.Signed.Delegations.Roles) != 2 {
			t.Fatalf("held %+v, want the version delegating acme/a and acme/b", md)
		}
	})
	t.Run("a first version that waits for its siblings is not published", func(t *testing.T) {
		r := put(202, trustnames.RoleForRepo("acme/a"), role(1, nil, targets("acme/a:v1", target("a"))), bob, pub)
		if !contains(r.body, `"repository":"acme/b"`) {
			t.Fatalf("acme/a v1: %s, want it held for acme/b", r.body)
		}
		if _, err := e.resolve(t, t.TempDir(), bob, "acme/a:v1", nil); err == nil {
			t.Fatal("acme/a:v1 resolves before acme/b has a first version")
		}
		e.snapshotListsEveryDelegation(t)
	})
	t.Run("a later version delegating only published roles is published at once and discards it", func(t *testing.T) {
		put(201, orgRole, role(2, nil, targets("acme/x:v1", target("x"))), e.admin, orgKey)
		if v, _ := e.heldVersion(t, orgRole); v != 0 {
			t.Fatalf("held version %d after a publish, want none", v)
		}
		if _, err := e.resolve(t, t.TempDir(), bob, "acme/x:v1", nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the last first version publishes the held version and every first version in one snapshot", func(t *testing.T) {
		put(202, orgRole, role(3, []delegation{repoDelegation("acme/a", 1, pub), repoDelegation("acme/b", 1, pub)}, nil), e.admin, orgKey)
		// acme/a's complete first version, kept since it was sent, still
		// meets the delegation: acme/b's completes the set.
		r := put(201, trustnames.RoleForRepo("acme/b"), role(1, nil, targets("acme/b:v1", target("b"))), bob, pub)
		for _, released := range []string{`"role":"org-acme","version":3`, `"role":"` + trustnames.RoleForRepo("acme/a") + `","version":1`} {
			if !contains(r.body, released) {
				t.Errorf("acme/b v1: %s, want %s released with it", r.body, released)
			}
		}
		if v, _ := e.heldVersion(t, orgRole); v != 0 {
			t.Errorf("held version %d after the release, want none", v)
		}
		for _, name := range []string{"acme/a:v1", "acme/b:v1"} {
			if _, err := e.resolve(t, t.TempDir(), bob, name, nil); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		e.snapshotListsEveryDelegation(t)
	})
}
