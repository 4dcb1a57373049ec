package tuf_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/trustd/tuf"
	"github.com/signet-oss/signet/trustnames"
)

// attackEnv is acme (org key, acme/app delegated to pub) and acme-corp (its own
// keys), with bob publishing and carol owning acme.
type attackEnv struct {
	*env
	orgKey, pub, corpKey, corpPub, stranger *key
	bob, carol, dave                        string
}

func newAttackEnv(t *testing.T) *attackEnv {
	a := &attackEnv{env: newEnv(t, nil), orgKey: newKey(t), pub: newKey(t), corpKey: newKey(t), corpPub: newKey(t), stranger: newKey(t)}
	a.org("acme", []*key{a.orgKey}, 1, repoDelegation("acme/app", 1, a.pub))
	a.bob = a.user("bob", "acme", "publisher")
	a.carol = a.user("carol", "acme", "owner")
	a.dave = a.user("dave", "", "")
	// acme/app's first version publishes org-acme and the targets version
	// that delegates it, held until then; acme-corp stays held until
	// acme-corp/app has its first version.
	a.mustPut(201, trustnames.RoleForRepo("acme/app"), sign(t, role(1, nil, targets("acme/app:v1", target("v1"))), a.pub), a.bob)
	a.org("acme-corp", []*key{a.corpKey}, 1, repoDelegation("acme-corp/app", 1, a.corpPub))
	return a
}

func TestPublishRefusesTheAttackList(t *testing.T) {
	a := newAttackEnv(t)
	app := trustnames.RoleForRepo("acme/app")
	corpApp := trustnames.RoleForRepo("acme-corp/app")
	v2 := func(ts map[string]*metadata.TargetFiles) *metadata.Metadata[metadata.TargetsType] {
		return role(2, nil, ts)
	}
	withExpiry := func(md *metadata.Metadata[metadata.TargetsType], d time.Duration) *metadata.Metadata[metadata.TargetsType] {
		md.Signed.Expires = time.Now().Add(d).UTC().Truncate(time.Second)
		return md
	}
	noSHA := target("v2")
	noSHA.Hashes = metadata.Hashes{"sha512": bytes.Repeat([]byte{1}, 64)}
	empty := target("v2")
	empty.Length = 0
	otherSum := sha256.Sum256([]byte("other"))
	nonTerminating := role(2, []delegation{repoDelegation("acme/app", 1, a.pub)}, nil)
	nonTerminating.Signed.Delegations.Roles[0].Terminating = false
	widened := role(2, []delegation{{name: app, paths: []string{"acme/app:*", "acme/app@*", "acme/*"}, keys: []*key{a.pub}, threshold: 1}}, nil)
	hashBins := role(2, []delegation{repoDelegation("acme/app", 1, a.pub)}, nil)
	hashBins.Signed.Delegations.Roles[0].Paths = nil
	hashBins.Signed.Delegations.Roles[0].PathHashPrefixes = []string{"ab"}
	badThreshold := role(2, []delegation{repoDelegation("acme/app", 2, a.pub)}, nil)
	rootAsTargets, _ := a.rootMD.ToBytes(false)

	for _, c := range []struct {
		name   string
		role   string
		body   []byte
		token  string
		status int
		msg    string
	}{
		{"a rollback to the current version is refused with 409", app,
			sign(t, role(1, nil, targets("acme/app:v1", target("evil"))), a.pub), a.bob, 409, "rollback"},
		{"a version that skips ahead is refused with 409", app,
			sign(t, role(3, nil, targets("acme/app:v1", target("v3"))), a.pub), a.bob, 409, "publish version 2"},
		{"an expired role is refused", app,
			sign(t, withExpiry(v2(targets("acme/app:v2", target("v2"))), -time.Hour), a.pub), a.bob, 400, "expired"},
		{"an expiry beyond two years is refused", app,
			sign(t, withExpiry(v2(targets("acme/app:v2", target("v2"))), 3*365*24*time.Hour), a.pub), a.bob, 400, "more than"},
		{"a role signed by the wrong key is refused", app,
			sign(t, v2(targets("acme/app:v2", target("v2"))), a.stranger), a.bob, 400, "signed by none"},
		{"an unsigned role is refused", app,
			sign(t, v2(targets("acme/app:v2", target("v2")))), a.bob, 400, "signed by none"},
		{"a repository key signing outside its repository is refused", app,
			sign(t, v2(targets("acme/other:v1", target("v2"))), a.pub), a.bob, 400, "outside"},
		{"a repository key signing for a prefix-sharing org is refused", app,
			sign(t, v2(targets("acme-corp/app:v1", target("v2"))), a.pub), a.bob, 400, "outside"},
		{"an org key signing another org's repository is refused", trustnames.RoleForOrg("acme"),
			sign(t, role(2, []delegation{repoDelegation("acme/app", 1, a.pub)}, targets("acme-corp/app:v1", target("x"))), a.orgKey), a.carol, 400, "outside organisation"},
		{"an org key signing another org's repository role is refused", corpApp,
			sign(t, role(1, nil, targets("acme-corp/app:v1", target("x"))), a.orgKey), a.admin, 400, "signed by none"},
		{"an org owner cannot publish another org's role", trustnames.RoleForOrg("acme-corp"),
			sign(t, role(2, nil, nil), a.orgKey), a.carol, 403, "owner of acme-corp"},
		{"a delegation leaving the org's namespace is refused", trustnames.RoleForOrg("acme"),
			sign(t, role(2, []delegation{repoDelegation("acme-corp/app", 1, a.pub)}, nil), a.orgKey), a.carol, 400, "leaves"},
		{"a delegation overlapping a sibling is refused", trustnames.RoleForOrg("acme"),
			sign(t, role(2, []delegation{repoDelegation("acme/app", 1, a.pub), repoDelegation("acme/app", 1, a.stranger)}, nil), a.orgKey), a.carol, 400, "overlap"},
		{"a delegation with extra paths is refused", trustnames.RoleForOrg("acme"),
			sign(t, widened, a.orgKey), a.carol, 400, "exactly the paths"},
		{"a delegation of a 5-component repository is refused", trustnames.RoleForOrg("acme"),
			sign(t, role(2, []delegation{repoDelegation("acme/a/b/c/d", 1, a.pub)}, nil), a.orgKey), a.carol, 400, "components"},
		{"a non-terminating delegation is refused", trustnames.RoleForOrg("acme"),
			sign(t, nonTerminating, a.orgKey), a.carol, 400, "terminating"},
		{"a hash-bin delegation is refused", trustnames.RoleForOrg("acme"),
			sign(t, hashBins, a.orgKey), a.carol, 400, "path_hash_prefixes"},
		{"a threshold above the number of keys is refused", trustnames.RoleForOrg("acme"),
			sign(t, badThreshold, a.orgKey), a.carol, 400, "threshold"},
		// a.targetsMD is the held targets version delegating acme-corp: the
		// next version of targets replaces it, under its number.
		{"an org delegation with another org's paths is refused", "targets",
			sign(t, role(a.targetsMD.Signed.Version, []delegation{{name: "org-acme", paths: trustnames.OrgPaths("acme-corp"), keys: []*key{a.orgKey}, threshold: 1}}, nil), a.targets), a.admin, 400, "exactly the paths"},
		{"targets signed by an org key is refused", "targets",
			sign(t, role(a.targetsMD.Signed.Version, nil, nil), a.orgKey), a.admin, 400, "signed by none"},
		{"a target without a sha256 hash is refused", app,
			sign(t, v2(targets("acme/app:v2", noSHA)), a.pub), a.bob, 400, "sha256"},
		{"a target without a length is refused", app,
			sign(t, v2(targets("acme/app:v2", empty)), a.pub), a.bob, 400, "length"},
		{"a digest target whose hash differs from its path is refused", app,
			sign(t, v2(targets("acme/app@sha256:"+strings.Repeat("a", 64), &metadata.TargetFiles{Length: 5, Hashes: metadata.Hashes{"sha256": otherSum[:]}})), a.pub), a.bob, 400, "differs"},
		{"a malformed target path is refused", app,
			sign(t, v2(targets("acme/app", target("v2"))), a.pub), a.bob, 400, "not <repository>"},
		{"a bad role name is refused", "repo-xyz", []byte("{}"), a.admin, 400, "not a role name"},
		{"an upper-case org role name is refused", "org-ACME", []byte("{}"), a.admin, 400, "not an organisation name"},
		{"an online role cannot be published", "snapshot", []byte("{}"), a.admin, 400, "online key"},
		{"root metadata under a targets role is refused", app, rootAsTargets, a.bob, 400, "not TUF targets"},
		{"a body that is not JSON is refused", app, []byte("not json"), a.bob, 400, "not TUF"},
		{"an oversized body is refused with 413", app, bytes.Repeat([]byte(" "), tuf.MaxRoleSize+1), a.bob, 413, "limit"},
		{"a caller without push is refused with 403", app,
			sign(t, v2(targets("acme/app:v2", target("v2"))), a.pub), a.dave, 403, "push on the repository it is delegated for"},
		{"an anonymous caller is refused with 401", app,
			sign(t, v2(targets("acme/app:v2", target("v2"))), a.pub), "", 401, "push"},
		{"a publisher cannot publish the org role", trustnames.RoleForOrg("acme"),
			sign(t, role(2, nil, nil), a.orgKey), a.bob, 403, "owner"},
		{"a repository role nobody delegated is refused", trustnames.RoleForRepo("acme/nobody"),
			sign(t, role(1, nil, targets("acme/nobody:v1", target("x"))), a.pub), a.admin, 404, "not delegated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := a.put(c.role, c.body, c.token)
			var body struct {
				Errors []struct{ Code, Message string }
			}
			json.Unmarshal(r.body, &body)
			if r.status != c.status || len(body.Errors) != 1 || !strings.Contains(body.Errors[0].Message, c.msg) {
				t.Fatalf("got %d %s, want %d with %q", r.status, r.body, c.status, c.msg)
			}
		})
	}
	t.Run("after every refusal the role is still at version 1", func(t *testing.T) {
		r := a.do("GET", "/tuf/api/roles/"+app, a.bob, nil)
		if !contains(r.body, `"version":1`) {
			t.Fatalf("%s", r.body)
		}
	})
}

func TestOrgsThatSharePrefixesStayApart(t *testing.T) {
	a := newAttackEnv(t)
	corp := a.user("cora", "acme-corp", "publisher")
	a.mustPut(201, trustnames.RoleForRepo("acme-corp/app"), sign(t, role(1, nil, targets("acme-corp/app:v1", target("corp v1"))), a.corpPub), corp)
	admin := a.admin
	for _, c := range []struct {
		name, path, want string
	}{
		{"acme/app:v1 resolves to acme's signed manifest", "acme/app:v1", "v1"},
		{"acme-corp/app:v1 resolves to acme-corp's signed manifest", "acme-corp/app:v1", "corp v1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tf, err := a.resolve(t, t.TempDir(), admin, c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := target(c.want); !bytes.Equal(tf.Hashes["sha256"], want.Hashes["sha256"]) {
				t.Fatalf("resolved to another manifest")
			}
		})
	}
	t.Run("an acme member may not read acme-corp's org role", func(t *testing.T) {
		if r := a.do("GET", "/tuf/1.org-acme-corp.json", a.bob, nil); r.status != 403 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if r := a.do("GET", "/tuf/1.org-acme.json", a.bob, nil); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

func TestThresholdStagesUntilMet(t *testing.T) {
	e := newEnv(t, nil)
	orgKey, k1, k2 := newKey(t), newKey(t), newKey(t)
	e.org("acme", []*key{orgKey}, 1, repoDelegation("acme/two", 2, k1, k2))
	bob := e.user("bob", "acme", "publisher")
	repo := trustnames.RoleForRepo("acme/two")
	md := role(1, nil, targets("acme/two:v1", target("two v1")))

	r := e.mustPut(202, repo, sign(t, md, k1), bob)
	if !contains(r.body, `"staged":true`) || !contains(r.body, `"signatures":1`) || !contains(r.body, `"threshold":2`) {
		t.Fatalf("staged answer %s", r.body)
	}
	if _, err := e.resolve(t, t.TempDir(), bob, "acme/two:v1", nil); err == nil {
		t.Fatal("a staged target resolved")
	}
	if r := e.do("GET", "/tuf/api/staged/"+repo, bob, nil); r.status != 200 || !contains(r.body, k1.id) {
		t.Fatalf("staged copy: %d %s", r.status, r.body)
	}
	// The same signature again changes nothing.
	e.mustPut(202, repo, sign(t, md, k1), bob)
	r = e.mustPut(201, repo, sign(t, md, k2), bob)
	if !contains(r.body, `"version":1`) {
		t.Fatalf("published answer %s", r.body)
	}
	if _, err := e.resolve(t, t.TempDir(), bob, "acme/two:v1", nil); err != nil {
		t.Fatalf("after the second signature: %v", err)
	}
	if r := e.do("GET", "/tuf/api/staged/"+repo, bob, nil); r.status != 404 {
		t.Fatalf("the staged copy outlived its publication: %d", r.status)
	}
}
