package tuf_test

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/signet-oss/signet/trustnames"
)

// bearer adds a token to every request of a go-tuf updater.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.next.RoundTrip(r)
}

// resolve refreshes a new go-tuf updater (root pinned, cache in dir) and looks up
// target path; it returns the target or the updater's error.
func (e *env) resolve(t *testing.T, dir, token, path string, rt http.RoundTripper) (*metadata.TargetFiles, error) {
	t.Helper()
	if rt == nil {
		rt = http.DefaultTransport
	}
	cfg, err := config.New(e.srv.URL+"/tuf", e.rootRaw)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LocalMetadataDir = dir
	cfg.LocalTargetsDir = filepath.Join(dir, "targets")
	cfg.SnapshotMaxLength = 64 << 20
	// Not SetDefaultFetcherTransport: on go-tuf's default fetcher it changes
	// http.DefaultClient's transport for the whole process.
	if err := cfg.SetDefaultFetcherHTTPClient(&http.Client{Transport: bearer{token, rt}}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.EnsurePathsExist(); err != nil {
		t.Fatal(err)
	}
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Refresh(); err != nil {
		return nil, err
	}
	return up.GetTargetInfo(path)
}

func TestPublishThroughOrgAndRepoDelegations(t *testing.T) {
	e := newEnv(t, nil)
	orgKey, pubKey := newKey(t), newKey(t)
	e.org("acme", []*key{orgKey}, 1, repoDelegation("acme/app", 1, pubKey), repoDelegation("acme/team/tool", 1, pubKey))
	bob := e.user("bob", "acme", "publisher")
	repoRole := trustnames.RoleForRepo("acme/app")
	// org-acme v1 delegates both repositories: it and the targets version that
	// delegates org-acme are held until both have their first versions, then
	// published with them in one snapshot.
	held := e.mustPut(202, repoRole, sign(t, role(1, nil, targets("acme/app:v1", target("manifest v1"))), pubKey), bob)
	if !contains(held.body, `"held":true`) || !contains(held.body, `"repository":"acme/team/tool"`) {
		t.Fatalf("the first of two first versions: %s, want it held for acme/team/tool", held.body)
	}
	e.mustPut(201, trustnames.RoleForRepo("acme/team/tool"), sign(t, role(1, nil, targets("acme/team/tool:v1", target("tool v1"))), pubKey), bob)

	t.Run("the go-tuf updater with the root pinned resolves acme/app:v1 through org and repo delegations", func(t *testing.T) {
		tf, err := e.resolve(t, t.TempDir(), bob, "acme/app:v1", nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := target("manifest v1"); tf.Length != want.Length || hex.EncodeToString(tf.Hashes["sha256"]) != hex.EncodeToString(want.Hashes["sha256"]) {
			t.Fatalf("target %+v", tf)
		}
	})
	t.Run("a 3-component repository resolves through its org's patterns", func(t *testing.T) {
		if _, err := e.resolve(t, t.TempDir(), bob, "acme/team/tool:v1", nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("an anonymous client cannot read the org role", func(t *testing.T) {
		if _, err := e.resolve(t, t.TempDir(), "", "acme/app:v1", nil); err == nil {
			t.Fatal("resolved without pull rights")
		}
		if r := e.do("GET", "/tuf/1.org-acme.json", "", nil); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("a user outside the org is refused the repository role with 403", func(t *testing.T) {
		dave := e.user("dave", "", "")
		if r := e.do("GET", "/tuf/1."+repoRole+".json", dave, nil); r.status != 403 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("cache headers fit each file", func(t *testing.T) {
		for path, want := range map[string]string{
			"/tuf/timestamp.json":          "no-cache",
			"/tuf/root.json":               "no-cache",
			"/tuf/1.root.json":             "public, max-age=31536000, immutable",
			"/tuf/2.targets.json":          "public, max-age=31536000, immutable",
			"/tuf/1.snapshot.json":         "public, max-age=31536000, immutable",
			"/tuf/1." + repoRole + ".json": "private, max-age=31536000, immutable",
		} {
			r := e.do("GET", path, bob, nil)
			if r.status != 200 || r.header.Get("Cache-Control") != want {
				t.Errorf("%s: %d %q, want %q", path, r.status, r.header.Get("Cache-Control"), want)
			}
		}
	})
	t.Run("the role info names a repository role's repository", func(t *testing.T) {
		r := e.do("GET", "/tuf/api/roles/"+repoRole, bob, nil)
		var info struct {
			Version    int64
			Repository string
		}
		json.Unmarshal(r.body, &info)
		if r.status != 200 || info.Version != 1 || info.Repository != "acme/app" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }
