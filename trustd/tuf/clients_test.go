package tuf_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/internal/testtools"
	"github.com/signet-oss/signet/trustnames"
)

// TUF §4.4: the snapshot lists every delegated targets role. A client walking to
// a role the snapshot does not list fails (go-tuf: "role ... not found in
// snapshot"; tuf-js 6.0.2 throws) where it should answer "not found". These tests
// walk one trust graph with every kind of repository with two independent
// clients, go-tuf's updater and tuf-js from npm, and want each name found or
// plainly not found, never an error.

// clientGraph is a trust graph with:
//   - acme/app, published with acme/app:v1;
//   - acme/empty, delegated by acme but never published (its delegation held);
//   - beta/two, delegated 2-of-2, its first version signed by one key so far;
//   - acme/nobody, delegated by nobody.
type clientGraph struct {
	*env
	bob           string // a publisher of acme and beta, who reads their roles
	two1, two2    *key
	twoFirst      *metadata.Metadata[metadata.TargetsType]
	appV1, twoV1  *metadata.TargetFiles
	heldOrgStatus int
}

func newClientGraph(t *testing.T) *clientGraph {
	e := newEnv(t, nil)
	g := &clientGraph{env: e, two1: newKey(t), two2: newKey(t), appV1: target("app v1"), twoV1: target("two v1")}
	acmeKey, betaKey, pub := newKey(t), newKey(t), newKey(t)
	e.mustAPI(201, "POST", "/orgs", map[string]string{"name": "acme"})
	e.mustAPI(201, "POST", "/orgs", map[string]string{"name": "beta"})
	g.bob = e.user("bob", "acme", "publisher")
	e.mustAPI(200, "PUT", "/orgs/beta/members/bob", map[string]string{"role": "publisher"})
	g.bob = e.login("bob", userPassword)

	// targets delegates both orgs; each org role's first version delegates
	// nothing yet. (Setup steps accept 201 or 202: how trustd answers is not
	// what is tested here.)
	setup := func(role string, md []byte, token string) {
		t.Helper()
		if r := e.put(role, md, token); r.status != 201 && r.status != 202 {
			t.Fatalf("PUT %s: %d %s", role, r.status, r.body)
		}
	}
	setup("targets", sign(t, role(2, []delegation{orgDelegation("acme", 1, acmeKey), orgDelegation("beta", 1, betaKey)}, nil), e.targets), e.admin)
	setup(trustnames.RoleForOrg("acme"), sign(t, role(1, nil, nil), acmeKey), e.admin)
	setup(trustnames.RoleForOrg("beta"), sign(t, role(1, nil, nil), betaKey), e.admin)

	// acme delegates acme/app, which is published; then acme/empty too,
	// which never is.
	setup(trustnames.RoleForOrg("acme"), sign(t, role(2, []delegation{repoDelegation("acme/app", 1, pub)}, nil), acmeKey), e.admin)
	setup(trustnames.RoleForRepo("acme/app"), sign(t, role(1, nil, targets("acme/app:v1", g.appV1)), pub), g.bob)
	r := e.put(trustnames.RoleForOrg("acme"), sign(t, role(3, []delegation{repoDelegation("acme/app", 1, pub), repoDelegation("acme/empty", 1, pub)}, nil), acmeKey), e.admin)
	if r.status != 201 && r.status != 202 {
		t.Fatalf("delegating acme/empty: %d %s", r.status, r.body)
	}
	g.heldOrgStatus = r.status

	// beta delegates beta/two to two keys, both needed; one signs.
	setup(trustnames.RoleForOrg("beta"), sign(t, role(2, []delegation{repoDelegation("beta/two", 2, g.two1, g.two2)}, nil), betaKey), e.admin)
	g.twoFirst = role(1, nil, targets("beta/two:v1", g.twoV1))
	if r := e.put(trustnames.RoleForRepo("beta/two"), sign(t, g.twoFirst, g.two1), g.bob); r.status != 202 {
		t.Fatalf("the first of two signatures of beta/two: %d %s, want 202 (staged)", r.status, r.body)
	}
	return g
}

// secondSignature completes beta/two's first version.
func (g *clientGraph) secondSignature(t *testing.T) {
	t.Helper()
	g.mustPut(201, trustnames.RoleForRepo("beta/two"), sign(t, g.twoFirst, g.two2), g.bob)
}

// lookup is what a client said of one name.
type lookup struct {
	Name   string `json:"name"`
	Result string `json:"result"` // found, not-found, error
	SHA256 string `json:"sha256"`
	Error  string `json:"error"`
}

// goTUFLookups resolves names with go-tuf's updater, a new one per name on one
// cache, as verify.Client does.
func (g *clientGraph) goTUFLookups(t *testing.T, dir string, names []string) []lookup {
	var out []lookup
	for _, name := range names {
		tf, err := g.resolve(t, dir, g.bob, name, nil)
		switch {
		case err == nil:
			out = append(out, lookup{Name: name, Result: "found", SHA256: hex.EncodeToString(tf.Hashes["sha256"])})
		case err.Error() == fmt.Sprintf("target %s not found", name):
			// go-tuf's plain "not found": no role delegated for the name lists it.
			out = append(out, lookup{Name: name, Result: "not-found"})
		default:
			out = append(out, lookup{Name: name, Result: "error", Error: err.Error()})
		}
	}
	return out
}

// tufJSLookups resolves names with tuf-js 6.0.2 from npm, driven by
// testdata/tufjs-resolve.cjs over loopback.
func (g *clientGraph) tufJSLookups(t *testing.T, modules, dir string, names []string) []lookup {
	t.Helper()
	rootPath := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootPath, g.rootRaw, 0o600); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "tufjs-resolve.cjs"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := testtools.Path("node")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, append([]string{script, modules, g.srv.URL + "/tuf/", rootPath, dir}, names...)...)
	cmd.Env = append(os.Environ(), "TUF_TOKEN="+g.bob)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node tufjs-resolve.cjs: %v\n%s", err, stderr.String())
	}
	var out []lookup
	if err := json.Unmarshal(stdout, &out); err != nil {
		t.Fatalf("tuf-js printed %q: %v", stdout, err)
	}
	return out
}

// check compares what a client said with want (name → "found" or "not-found").
func check(t *testing.T, client string, got []lookup, want map[string]string, sums map[string]*metadata.TargetFiles) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s answered %d names, want %d: %+v", client, len(got), len(want), got)
	}
	for _, l := range got {
		if l.Result == "error" {
			t.Errorf("%s: %s failed instead of answering: %s", client, l.Name, l.Error)
			continue
		}
		if l.Result != want[l.Name] {
			t.Errorf("%s: %s is %s, want %s", client, l.Name, l.Result, want[l.Name])
		}
		if tf := sums[l.Name]; l.Result == "found" && tf != nil && l.SHA256 != hex.EncodeToString(tf.Hashes["sha256"]) {
			t.Errorf("%s: %s has sha256 %s, want %s", client, l.Name, l.SHA256, hex.EncodeToString(tf.Hashes["sha256"]))
		}
	}
}

// snapshotListsEveryDelegation checks §4.4 on the served metadata directly:
// every role a published targets or org role delegates is in the snapshot.
func (g *env) snapshotListsEveryDelegation(t *testing.T) {
	t.Helper()
	var ts metadata.Metadata[metadata.TimestampType]
	if _, err := ts.FromBytes(g.do("GET", "/tuf/timestamp.json", "", nil).body); err != nil {
		t.Fatal(err)
	}
	var snap metadata.Metadata[metadata.SnapshotType]
	if _, err := snap.FromBytes(g.do("GET", fmt.Sprintf("/tuf/%d.snapshot.json", ts.Signed.Meta["snapshot.json"].Version), "", nil).body); err != nil {
		t.Fatal(err)
	}
	for name, m := range snap.Signed.Meta {
		r := g.do("GET", fmt.Sprintf("/tuf/%d.%s", m.Version, name), g.admin, nil)
		var md metadata.Metadata[metadata.TargetsType]
		if _, err := md.FromBytes(r.body); err != nil {
			t.Fatalf("%s v%d: %d %v", name, m.Version, r.status, err)
		}
		if md.Signed.Delegations == nil {
			continue
		}
		for _, d := range md.Signed.Delegations.Roles {
			if snap.Signed.Meta[d.Name+".json"] == nil {
				t.Errorf("%s v%d delegates %s, which snapshot v%d does not list", name, m.Version, d.Name, snap.Signed.Version)
			}
		}
	}
}

func TestGoTUFAndTufJSResolveEveryNameOfTheTrustGraph(t *testing.T) {
	modules := testtools.MustNodeModules(t, "tuf-js@6.0.2")
	g := newClientGraph(t)
	names := []string{"acme/app:v1", "acme/app:v2", "acme/empty:v1", "beta/two:v1", "acme/nobody:v1", "nobody/app:v1"}
	want := map[string]string{
		"acme/app:v1":    "found",
		"acme/app:v2":    "not-found", // an absent tag of a published repository
		"acme/empty:v1":  "not-found", // delegated, never published
		"beta/two:v1":    "not-found", // 1 of 2 signatures
		"acme/nobody:v1": "not-found", // in acme's namespace, delegated by nobody
		"nobody/app:v1":  "not-found", // in no organisation's namespace
	}
	sums := map[string]*metadata.TargetFiles{"acme/app:v1": g.appV1, "beta/two:v1": g.twoV1}
	goDir, jsDir := t.TempDir(), t.TempDir()

	t.Run("the delegation of a repository without metadata is held, not published", func(t *testing.T) {
		if g.heldOrgStatus != 202 {
			t.Errorf("org-acme v3, delegating acme/empty: %d, want 202 (held)", g.heldOrgStatus)
		}
		g.snapshotListsEveryDelegation(t)
	})
	t.Run("go-tuf: found or plainly not found, before the second signature", func(t *testing.T) {
		check(t, "go-tuf", g.goTUFLookups(t, goDir, names), want, sums)
	})
	t.Run("tuf-js: found or not found, before the second signature", func(t *testing.T) {
		check(t, "tuf-js", g.tufJSLookups(t, modules, jsDir, names), want, sums)
	})

	g.secondSignature(t)
	want["beta/two:v1"] = "found"
	t.Run("the second signature publishes beta/two; every delegation is still listed", func(t *testing.T) {
		g.snapshotListsEveryDelegation(t)
	})
	t.Run("go-tuf: beta/two:v1 is found after the second signature", func(t *testing.T) {
		check(t, "go-tuf", g.goTUFLookups(t, goDir, names), want, sums)
	})
	t.Run("tuf-js: beta/two:v1 is found after the second signature", func(t *testing.T) {
		check(t, "tuf-js", g.tufJSLookups(t, modules, jsDir, names), want, sums)
	})
	if t.Failed() {
		return
	}
	t.Run("both clients agree name by name", func(t *testing.T) {
		a, b := g.goTUFLookups(t, t.TempDir(), names), g.tufJSLookups(t, modules, t.TempDir(), names)
		for i := range a {
			if !slices.Equal([]string{a[i].Result, a[i].SHA256}, []string{b[i].Result, b[i].SHA256}) {
				t.Errorf("%s: go-tuf %+v, tuf-js %+v", names[i], a[i], b[i])
			}
		}
	})
}
