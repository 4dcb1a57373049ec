package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/tuftest"
	"github.com/signet-oss/signet/trustnames"

	"github.com/opencontainers/go-digest"
)

const (
	imageType = "application/vnd.oci.image.manifest.v1+json"
	indexType = "application/vnd.oci.image.index.v1+json"
)

// fixture is a repository with org acme (key acme-org) delegating acme/app and
// acme/team/app to alice, and three targets signed.
type fixture struct {
	repo                *tuftest.Repo
	v1, index, teamV1   string // digests
	child1, child2      string
	v1Manifest, idxBody []byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	r := tuftest.NewRepo(t)
	f := &fixture{repo: r, v1Manifest: []byte(`{"schemaVersion":2,"mediaType":"` + imageType + `","layers":[]}`)}
	r.Delegate("targets", "org-acme", trustnames.OrgPaths("acme"), "acme-org")
	r.Delegate("org-acme", trustnames.RoleForRepo("acme/app"), trustnames.RepoPaths("acme/app"), "alice")
	r.Delegate("org-acme", trustnames.RoleForRepo("acme/team/app"), trustnames.RepoPaths("acme/team/app"), "alice")
	f.v1 = r.AddTarget(trustnames.RoleForRepo("acme/app"), "acme/app:v1", f.v1Manifest, imageType)
	f.child1, f.child2 = string(digest.FromString("one")), string(digest.FromString("two"))
	f.idxBody = []byte(`{"schemaVersion":2,"mediaType":"` + indexType + `","manifests":[]}`)
	f.index = r.AddTarget(trustnames.RoleForRepo("acme/app"), "acme/app:multi", f.idxBody, indexType, f.child1, f.child2)
	r.AddTarget(trustnames.RoleForRepo("acme/app"), "acme/app@"+f.v1, f.v1Manifest, imageType)
	f.teamV1 = r.AddTarget(trustnames.RoleForRepo("acme/team/app"), "acme/team/app:v1", []byte("team manifest"), imageType)
	r.Publish("targets", "org-acme", trustnames.RoleForRepo("acme/app"), trustnames.RoleForRepo("acme/team/app"))
	return f
}

func (f *fixture) client(t *testing.T, mod ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{TrustdURL: f.repo.Srv.URL, Root: f.repo.RootBytes(), CacheDir: t.TempDir()}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResolveThroughOrgAndRepoDelegations(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, path, digest, mediaType string
		length                        int
		closure                       []digest.Digest
	}{
		{"a tag of a two-component repository resolves to its manifest", "acme/app:v1", f.v1, imageType, len(f.v1Manifest), nil},
		{"an index carries its closure of child manifests", "acme/app:multi", f.index, indexType, len(f.idxBody), []digest.Digest{digest.Digest(f.child1), digest.Digest(f.child2)}},
		{"a digest target resolves to the digest it is named by", "acme/app@" + f.v1, f.v1, imageType, len(f.v1Manifest), nil},
		{"a three-component repository resolves through the org's patterns", "acme/team/app:v1", f.teamV1, imageType, len("team manifest"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Resolve(ctx, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Digest) != tc.digest || got.Length != int64(tc.length) || got.MediaType != tc.mediaType || got.Path != tc.path {
				t.Errorf("got %+v, want digest %s length %d mediaType %s", got, tc.digest, tc.length, tc.mediaType)
			}
			if len(got.Closure) != len(tc.closure) {
				t.Fatalf("closure %v, want %v", got.Closure, tc.closure)
			}
			for i := range tc.closure {
				if got.Closure[i] != tc.closure[i] {
					t.Errorf("closure %v, want %v", got.Closure, tc.closure)
				}
			}
		})
	}
}

func TestResolveRefusesWhatIsNotSigned(t *testing.T) {
	f := newFixture(t)
	r := f.repo
	// acme-corp is another org whose key also signs a role for acme/app's name:
	// it must not be reachable from acme's namespace.
	r.Delegate("targets", "org-acme-corp", trustnames.OrgPaths("acme-corp"), "corp-org")
	r.Delegate("org-acme-corp", trustnames.RoleForRepo("acme-corp/app"), trustnames.RepoPaths("acme-corp/app"), "mallory")
	r.AddTarget(trustnames.RoleForRepo("acme-corp/app"), "acme-corp/app:v1", []byte("corp"), imageType)
	// A repository delegated but never published.
	r.Delegate("org-acme", trustnames.RoleForRepo("acme/new"), trustnames.RepoPaths("acme/new"), "alice")
	r.Publish("targets", "org-acme", "org-acme-corp", trustnames.RoleForRepo("acme-corp/app"))
	c := f.client(t)
	if _, err := c.Resolve(context.Background(), "acme-corp/app:v1"); err != nil {
		t.Fatalf("acme-corp/app:v1 should resolve through its own org: %v", err)
	}
	for _, tc := range []struct{ name, path string }{
		{"a tag that no role lists", "acme/app:v2"},
		{"a repository no org delegates", "other/app:v1"},
		{"acme's name under acme-corp's role", "acme/app-corp:v1"},
		{"a repository delegated but never published", "acme/new:v1"},
		{"a digest that is not a target", "acme/app@" + string(digest.FromString("x"))},
		{"a name deeper than the org's patterns", "acme/a/b/c/d:v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Resolve(context.Background(), tc.path)
			if !errors.Is(err, ErrNotSigned) {
				t.Fatalf("Resolve(%s) = %v, want ErrNotSigned", tc.path, err)
			}
			for _, other := range []error{ErrExpired, ErrUnreachable, ErrInvalidMetadata} {
				if errors.Is(err, other) {
					t.Errorf("error %v also matches %v", err, other)
				}
			}
		})
	}
}

func TestRevokedPublisherKeyUntrustsItsTargetsAtTheNextRefresh(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	ctx := context.Background()
	if _, err := c.Resolve(ctx, "acme/app:v1"); err != nil {
		t.Fatal(err)
	}
	// The org now delegates acme/app to bob only; the repo role is still alice's.
	f.repo.Delegate("org-acme", trustnames.RoleForRepo("acme/app"), trustnames.RepoPaths("acme/app"), "bob")
	f.repo.Publish("org-acme")
	if _, err := c.Resolve(ctx, "acme/app:v1"); !errors.Is(err, ErrNotSigned) {
		t.Fatalf("after revoking alice: %v, want ErrNotSigned", err)
	}
	// bob re-signs: trusted again.
	f.repo.Signers[trustnames.RoleForRepo("acme/app")] = []string{"bob"}
	f.repo.Publish(trustnames.RoleForRepo("acme/app"))
	if got, err := c.Resolve(ctx, "acme/app:v1"); err != nil || string(got.Digest) != f.v1 {
		t.Fatalf("after bob re-signed: %+v, %v", got, err)
	}
}

func TestFreezeExpiredTimestamp(t *testing.T) {
	f := newFixture(t)
	later := time.Now().Add(36 * time.Hour) // the timestamp expires after a day
	c := f.client(t, func(cfg *Config) { cfg.Now = func() time.Time { return later } })
	_, err := c.Resolve(context.Background(), "acme/app:v1")
	if !errors.Is(err, ErrExpired) {
		t.Fatalf("a client whose clock is past the timestamp's expiry: %v, want ErrExpired", err)
	}
}

func TestRollbackOfTimestampIsRefused(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	ctx := context.Background()
	old := f.repo.File("timestamp.json")
	f.repo.Publish(trustnames.RoleForRepo("acme/app"))
	if _, err := c.Resolve(ctx, "acme/app:v1"); err != nil {
		t.Fatal(err)
	}
	f.repo.SetFile("timestamp.json", old) // an older, still valid, timestamp
	_, err := c.Resolve(ctx, "acme/app:v1")
	if !errors.Is(err, ErrInvalidMetadata) {
		t.Fatalf("a served timestamp older than the one seen: %v, want ErrInvalidMetadata", err)
	}
}

func TestTamperedMetadataIsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(f *fixture)
	}{
		{"a timestamp signed by another key", func(f *fixture) {
			f.repo.Keys["timestamp"] = tuftest.NewKey(t)
			f.repo.Publish()
		}},
		{"a snapshot longer than the timestamp says (endless data)", func(f *fixture) {
			name := fmt.Sprintf("%d.snapshot.json", f.repo.Snapshot.Signed.Version)
			f.repo.SetFile(name, append(f.repo.File(name), make([]byte, 1<<20)...))
		}},
		{"a snapshot the timestamp names but the server lacks", func(f *fixture) {
			f.repo.Remove(fmt.Sprintf("%d.snapshot.json", f.repo.Snapshot.Signed.Version))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.tamper(f)
			_, err := f.client(t).Resolve(context.Background(), "acme/app:v1")
			if !errors.Is(err, ErrInvalidMetadata) {
				t.Fatalf("got %v, want ErrInvalidMetadata", err)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	f := newFixture(t)
	f.repo.Srv.Close()
	_, err := f.client(t).Resolve(context.Background(), "acme/app:v1")
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("trustd down: %v, want ErrUnreachable", err)
	}
}

func TestTokenGoesOnlyWithDelegatedRoles(t *testing.T) {
	f := newFixture(t)
	f.repo.RequireToken = "secret-token"
	if _, err := f.client(t).Resolve(context.Background(), "acme/app:v1"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("without a token: %v, want ErrUnreachable (401 on a delegated role)", err)
	}
	c := f.client(t, func(cfg *Config) {
		cfg.Token = func(context.Context) (string, error) { return "secret-token", nil }
	})
	if _, err := c.Resolve(context.Background(), "acme/app:v1"); err != nil {
		t.Fatal(err)
	}
	seen := f.repo.Seen()
	for name, auth := range seen {
		role := name[len("1."):]
		if name == "timestamp.json" || role == "root.json" || role == "snapshot.json" || role == "targets.json" {
			if auth != "" {
				t.Errorf("%s was fetched with a token: public metadata must go without", name)
			}
		}
	}
	if seen["1.org-acme.json"] != "Bearer secret-token" {
		t.Errorf("1.org-acme.json fetched with %q, want the bearer token", seen["1.org-acme.json"])
	}
}

func TestCacheMakesANoChangeRefreshOneRequest(t *testing.T) {
	f := newFixture(t)
	counting := &countingTransport{}
	c := f.client(t, func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: counting} })
	ctx := context.Background()
	if _, err := c.Resolve(ctx, "acme/app:v1"); err != nil {
		t.Fatal(err)
	}
	counting.n = 0
	if _, err := c.Resolve(ctx, "acme/app:v1"); err != nil {
		t.Fatal(err)
	}
	// 2.root.json (404: no new root) and timestamp.json.
	if counting.n != 2 {
		t.Errorf("a refresh with nothing changed made %d requests, want 2 (next root, timestamp)", counting.n)
	}
}

func TestRootRotationIsFollowedAndCacheOfAnotherPinIsDropped(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	c := f.client(t, func(cfg *Config) { cfg.CacheDir = dir })
	ctx := context.Background()
	if _, err := c.Resolve(ctx, "acme/app:v1"); err != nil {
		t.Fatal(err)
	}
	// Rotate the root key: root v2 signed by the old and the new key.
	old := f.repo.Keys["root"]
	nk := tuftest.NewKey(t)
	f.repo.Root.Signed.RevokeKey(old.ID(), "root")
	f.repo.Root.Signed.AddKey(nk.TUF, "root")
	f.repo.Root.Signed.Version++
	f.repo.Sign(f.repo.Root, old, nk)
	b, _ := f.repo.Root.ToBytes(false)
	f.repo.SetFile("2.root.json", b)
	f.repo.Keys["root"] = nk
	if _, err := c.Resolve(ctx, "acme/app:v1"); err != nil {
		t.Fatalf("after a root rotation: %v", err)
	}
	cached, err := os.ReadFile(filepath.Join(dir, "root.json"))
	if err != nil || string(cached) != string(b) {
		t.Fatalf("the cache holds %q (%v), want root v2", cached, err)
	}
	// A client pinned to another repository's root on the same cache must not
	// start from this cache.
	other := newFixture(t)
	c2, err := New(Config{TrustdURL: other.repo.Srv.URL, Root: other.repo.RootBytes(), CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Resolve(ctx, "acme/app:v1"); err != nil {
		t.Fatalf("a new pin on an old cache: %v", err)
	}
}

type countingTransport struct{ n int }

func (ct *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ct.n++
	return http.DefaultTransport.RoundTrip(req)
}
