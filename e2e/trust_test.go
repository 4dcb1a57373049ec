package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

// The trust-graph tests drive trustctl against `trustctl up` as operators and
// publishers would, and check the outcome with real TUF clients: package verify,
// and go-tuf's updater used directly, each from a root pinned by `trustctl trust
// add` in a SIGNET_HOME of its own.

// e2ePassphrase encrypts the keys the tests generate.
const e2ePassphrase = "e2e-passphrase-not-secret"

// trustctl runs trustctl as the admin that up logged in, with SIGNET_PASSPHRASE
// set, and fails t unless it succeeds.
func (st *stack) trustctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := st.tryTrustctl(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// trustctlFails runs trustctl and fails t if it succeeds; it returns the output.
func (st *stack) trustctlFails(t *testing.T, args ...string) string {
	t.Helper()
	out, err := st.tryTrustctl(args...)
	var ce *cmdError
	if !errors.As(err, &ce) {
		t.Fatalf("trustctl %s succeeded, want a failure; output:\n%s", strings.Join(args, " "), out)
	}
	return ce.out
}

func (st *stack) tryTrustctl(args ...string) (string, error) {
	tl := &tool{path: trustctlBin, dir: st.Home, env: []string{
		"HOME=" + filepath.Dir(st.Home), "PATH=" + os.Getenv("PATH"), "SIGNET_HOME=" + st.Home,
		"SIGNET_PASSPHRASE=" + e2ePassphrase,
	}}
	return tl.tryInput("", args...)
}

// pushSigned pushes a fresh image to repo:tag as admin and returns its digest.
func (st *stack) pushImage(t *testing.T, repo, tag string) string {
	t.Helper()
	img := newImage(t, repo+":"+tag+":"+newPassword(), newLayer(t, "f.bin", 1024))
	if err := st.admin().pushImage(repo, tag, img, uploadMonolithicPost); err != nil {
		t.Fatal(err)
	}
	return img.ManifestDigest
}

// sign signs HOST/repo:tag (or @digest) with key, the manifest read from the
// registry by digest.
func (st *stack) sign(t *testing.T, ref, key, dgst string) string {
	t.Helper()
	return st.trustctl(t, "sign", st.Addr+"/"+ref, "--key", key, "--digest", dgst)
}

// pinnedRoot runs `trustctl trust add` in a SIGNET_HOME of its own (a client that
// has never logged in) and returns the root it pinned.
func (st *stack) pinnedRoot(t *testing.T) []byte {
	t.Helper()
	home := filepath.Join(t.TempDir(), "client")
	tl := &tool{path: trustctlBin, dir: t.TempDir(), env: []string{
		"HOME=" + filepath.Dir(home), "PATH=" + os.Getenv("PATH"), "SIGNET_HOME=" + home,
	}}
	out, err := tl.try("trust", "add", st.Addr, "--yes")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Pinned the root of "+st.Addr) {
		t.Fatalf("trust add said %q", out)
	}
	root, err := os.ReadFile(filepath.Join(home, "trust", st.Addr, "root.json"))
	if err != nil {
		t.Fatalf("trust add pinned no root: %v", err)
	}
	return root
}

// trustdToken returns an access token for trustd's own API (audience trustd),
// which delegated roles need, for the admin.
func (st *stack) trustdToken(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(st.Trustd + "/api/v1/whoami")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ch, ok := challenge(resp.Header.Get("WWW-Authenticate"))
	if !ok {
		t.Fatalf("trustd's whoami sent no Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
	}
	return st.passwordGrant(t, ch, "admin", st.AdminPassword, false).Token
}

// verifier is a package verify client of the pinned root, with its own cache.
func (st *stack) verifier(t *testing.T, root []byte, now func() time.Time) *verify.Client {
	t.Helper()
	tok := st.trustdToken(t)
	c, err := verify.New(verify.Config{
		TrustdURL: st.Trustd, Root: root, CacheDir: t.TempDir(), Now: now,
		Token: func(context.Context) (string, error) { return tok, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mustResolve checks that c resolves path to dgst.
func mustResolve(t *testing.T, c *verify.Client, path, dgst string) *verify.Target {
	t.Helper()
	got, err := c.Resolve(context.Background(), path)
	if err != nil {
		t.Fatalf("Resolve(%s): %v", path, err)
	}
	if string(got.Digest) != dgst {
		t.Fatalf("Resolve(%s) = %s, want %s", path, got.Digest, dgst)
	}
	return got
}

// mustNotResolve checks that c refuses path with kind.
func mustNotResolve(t *testing.T, c *verify.Client, path string, kind error) {
	t.Helper()
	got, err := c.Resolve(context.Background(), path)
	if !errors.Is(err, kind) {
		t.Fatalf("Resolve(%s) = %+v, %v; want %v", path, got, err, kind)
	}
}

// bearer adds a token to every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(req)
}

// tufUpdater is go-tuf's own updater on metadataURL with root and cacheDir; a
// token, when given, goes with every request.
func tufUpdater(t *testing.T, metadataURL string, root []byte, cacheDir, token string) *updater.Updater {
	t.Helper()
	cfg, err := config.New(metadataURL, root)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LocalMetadataDir = cacheDir
	cfg.LocalTargetsDir = filepath.Join(cacheDir, "targets")
	f := fetcher.NewDefaultFetcher()
	if token != "" {
		f.SetHTTPClient(&http.Client{Transport: bearer{token}, Timeout: 30 * time.Second})
	}
	cfg.Fetcher = f
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return up
}

// TestTrustSignAndResolve is the publisher's path end to end: a key, an org, a
// delegation, an image pushed with crane, `trustctl sign`; then TUF clients with
// the root pinned by `trust add` resolve the tag to that digest through the org
// and repository delegations. On the same stack: orgs whose names share a prefix
// stay apart, a three-component repository resolves, a moved tag keeps its old
// digest pullable, and revoking a publisher key untrusts what it signed.
func TestTrustSignAndResolve(t *testing.T) {
	t.Parallel()
	st := startStack(t, openAll...)
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")

	crane := newTool(t, "crane", "DOCKER_CONFIG="+st.Home)
	layerPath := filepath.Join(t.TempDir(), "layer.tar.gz")
	if err := os.WriteFile(layerPath, newLayer(t, "app/bin", 4096).Blob, 0o644); err != nil {
		t.Fatal(err)
	}
	crane.run(t, "append", "--oci-empty-base", "-f", layerPath, "-t", st.Addr+"/acme/app:v1")
	d1 := strings.TrimSpace(crane.run(t, "digest", st.Addr+"/acme/app:v1"))
	manifest := crane.run(t, "manifest", st.Addr+"/acme/app:v1")
	out := st.sign(t, "acme/app:v1", "alice", d1)
	if !strings.Contains(out, "Signed acme/app:v1 as "+d1) {
		t.Errorf("sign said %q", out)
	}

	root := st.pinnedRoot(t)
	vc := st.verifier(t, root, nil)
	token := st.trustdToken(t)

	t.Run("verify resolves the tag through org and repository roles", func(t *testing.T) {
		got := mustResolve(t, vc, "acme/app:v1", d1)
		if got.Length != int64(len(manifest)) || got.MediaType != mediaTypeOCIManifest || len(got.Closure) != 0 {
			t.Errorf("target %+v: want length %d, media type %s, no closure", got, len(manifest), mediaTypeOCIManifest)
		}
	})

	t.Run("go-tuf's updater resolves it from the pinned root", func(t *testing.T) {
		up := tufUpdater(t, st.Trustd+"/tuf/", root, t.TempDir(), token)
		if err := up.Refresh(); err != nil {
			t.Fatal(err)
		}
		tf, err := up.GetTargetInfo("acme/app:v1")
		if err != nil {
			t.Fatal(err)
		}
		if got := "sha256:" + tf.Hashes["sha256"].String(); got != d1 || tf.Length != int64(len(manifest)) {
			t.Errorf("go-tuf: %s, %d bytes; want %s, %d", got, tf.Length, d1, len(manifest))
		}
		trusted := up.GetTrustedMetadataSet()
		for _, role := range []string{"targets", "org-acme", trustnames.RoleForRepo("acme/app")} {
			if trusted.Targets[role] == nil {
				t.Errorf("the walk did not go through %s", role)
			}
		}
	})

	t.Run("acme and acme-corp stay apart", func(t *testing.T) {
		st.trustctl(t, "keys", "generate", "mallory")
		st.trustctl(t, "org", "create", "acme-corp")
		st.trustctl(t, "org", "delegate", "acme-corp/app", "--key", "mallory")
		dc := st.pushImage(t, "acme-corp/app", "v1")
		st.sign(t, "acme-corp/app:v1", "mallory", dc)
		mustResolve(t, vc, "acme-corp/app:v1", dc)
		// mallory's key, delegated for acme-corp/app, cannot sign acme/app.
		da := st.pushImage(t, "acme/app", "evil")
		out := st.trustctlFails(t, "sign", st.Addr+"/acme/app:evil", "--key", "mallory", "--digest", da)
		if !strings.Contains(out, "not delegated for acme/app") {
			t.Errorf("signing acme/app with mallory's key: %s", out)
		}
		mustNotResolve(t, vc, "acme/app:evil", verify.ErrNotSigned)
		mustNotResolve(t, vc, "acme-corp/app:v2", verify.ErrNotSigned)
	})

	t.Run("a three-component repository resolves", func(t *testing.T) {
		st.trustctl(t, "org", "delegate", "acme/team/app", "--key", "alice")
		d := st.pushImage(t, "acme/team/app", "v1")
		st.sign(t, "acme/team/app:v1", "alice", d)
		mustResolve(t, vc, "acme/team/app:v1", d)
	})

	t.Run("a moved tag keeps its previous digest as a digest target", func(t *testing.T) {
		d2 := st.pushImage(t, "acme/app", "v1")
		out := st.sign(t, "acme/app:v1", "alice", d2)
		if !strings.Contains(out, "Kept the previous digest as acme/app@"+d1) {
			t.Errorf("sign of a moved tag said %q", out)
		}
		mustResolve(t, vc, "acme/app:v1", d2)
		mustResolve(t, vc, "acme/app@"+d1, d1)
		d1 = d2
	})

	t.Run("a revoked publisher key's targets are untrusted at the next refresh", func(t *testing.T) {
		st.trustctl(t, "keys", "generate", "bob")
		st.trustctl(t, "org", "delegate", "acme/app", "--key", "bob")
		mustNotResolve(t, vc, "acme/app:v1", verify.ErrNotSigned)
		// alice can no longer sign; bob can, and the tag is trusted again.
		out := st.trustctlFails(t, "sign", st.Addr+"/acme/app:v1", "--key", "alice", "--digest", d1)
		if !strings.Contains(out, "not delegated") {
			t.Errorf("alice signing after her revocation: %s", out)
		}
		st.sign(t, "acme/app:v1", "bob", d1)
		mustResolve(t, vc, "acme/app:v1", d1)
		// a three-component repository of the same org, still alice's, is unaffected.
		if _, err := vc.Resolve(context.Background(), "acme/team/app:v1"); err != nil {
			t.Errorf("acme/team/app after revoking alice for acme/app: %v", err)
		}
	})
}

// TestTrustThresholdAndOrgKeyRotation: a repository delegated 2-of-3 is staged by
// the first signature and published by the second; then the org key is rotated,
// and what was signed stays trusted while the new key delegates.
func TestTrustThresholdAndOrgKeyRotation(t *testing.T) {
	t.Parallel()
	st := startStack(t, openAll...)
	for _, k := range []string{"a", "b", "c"} {
		st.trustctl(t, "keys", "generate", k)
	}
	st.trustctl(t, "org", "create", "acme")
	if out := st.trustctl(t, "org", "create", "acme"); !strings.Contains(out, "nothing to change") {
		t.Errorf("a second org create changed something: %q", out)
	}
	st.trustctl(t, "org", "delegate", "acme/svc", "--key", "a", "--key", "b", "--key", "c", "--threshold", "2")
	vc := st.verifier(t, st.pinnedRoot(t), nil)
	d := st.pushImage(t, "acme/svc", "v1")

	out := st.sign(t, "acme/svc:v1", "a", d)
	if !regexp.MustCompile(`staged: 1 of 2 signatures`).MatchString(out) {
		t.Fatalf("the first of two signatures: %q, want it staged (1 of 2)", out)
	}
	mustNotResolve(t, vc, "acme/svc:v1", verify.ErrNotSigned)
	out = st.sign(t, "acme/svc:v1", "b", d)
	if strings.Contains(out, "staged") {
		t.Fatalf("the second of two signatures: %q, want it published", out)
	}
	mustResolve(t, vc, "acme/svc:v1", d)

	t.Run("org key rotation", func(t *testing.T) {
		st.trustctl(t, "org", "rotate-key", "acme", "--key", "org-acme-2")
		mustResolve(t, vc, "acme/svc:v1", d)
		st.trustctl(t, "keys", "generate", "dave")
		st.trustctl(t, "org", "delegate", "acme/web", "--key", "dave")
		dw := st.pushImage(t, "acme/web", "v1")
		st.sign(t, "acme/web:v1", "dave", dw)
		mustResolve(t, vc, "acme/web:v1", dw)
	})

	t.Run("sign from an OCI layout", func(t *testing.T) {
		crane := newTool(t, "crane", "DOCKER_CONFIG="+st.Home)
		layout := filepath.Join(t.TempDir(), "oci")
		crane.run(t, "pull", "--format", "oci", st.Addr+"/acme/web:v1", layout)
		st.trustctl(t, "sign", st.Addr+"/acme/web:stable", "--key", "dave", "--layout", layout)
		got := mustResolve(t, vc, "acme/web:stable", strings.TrimSpace(crane.run(t, "digest", st.Addr+"/acme/web:v1")))
		if got.MediaType == "" {
			t.Errorf("a target signed from a layout has no media type: %+v", got)
		}
	})
}

// TestTrustDelegationTakesEffectWithTheFirstPush: a repository delegated to a
// publisher's exported public key (no private key here) is held by trustd until
// the publisher's first signed version, which publishes the org role's version
// and the repository's first in one snapshot; meanwhile clients answer "not
// signed" without error, later org changes are built on the held version, and
// undelegating the last pending repository publishes at once.
func TestTrustDelegationTakesEffectWithTheFirstPush(t *testing.T) {
	t.Parallel()
	st := startStack(t, openAll...)
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "keys", "generate", "carol")
	st.trustctl(t, "org", "create", "acme")
	dir := t.TempDir()
	alicePub, carolPub := st.exportKey(t, "alice", dir), st.exportKey(t, "carol", dir)
	vc := st.verifier(t, st.pinnedRoot(t), nil)

	out := st.trustctl(t, "org", "delegate", "acme/app", "--key", alicePub)
	if !strings.Contains(out, "held until acme/app has its first signed version") || !strings.Contains(out, "publisher's first push") {
		t.Errorf("org delegate to an exported key said %q, want it held until acme/app's first signed version", out)
	}
	mustNotResolve(t, vc, "acme/app:v1", verify.ErrNotSigned)

	// A second delegation is built on the held version: acme/app stays pending.
	out = st.trustctl(t, "org", "delegate", "acme/lib", "--key", carolPub)
	if !strings.Contains(out, "acme/app, acme/lib") {
		t.Errorf("the second delegation said %q, want it held for acme/app and acme/lib", out)
	}
	// Undelegating acme/lib keeps acme/app pending.
	out = st.trustctl(t, "org", "undelegate", "acme/lib")
	if !strings.Contains(out, "held until acme/app has its first signed version") {
		t.Errorf("undelegating acme/lib said %q, want acme/app still pending", out)
	}

	// The publisher's first signed version makes the delegation take effect.
	d := st.pushImage(t, "acme/app", "v1")
	out = st.sign(t, "acme/app:v1", "alice", d)
	if !strings.Contains(out, "Signed acme/app:v1 as "+d) || strings.Contains(out, "held") {
		t.Fatalf("alice's first sign said %q, want it published", out)
	}
	mustResolve(t, vc, "acme/app:v1", d)
	dl := st.pushImage(t, "acme/lib", "v1")
	if out := st.trustctlFails(t, "sign", st.Addr+"/acme/lib:v1", "--key", "carol", "--digest", dl); !strings.Contains(out, "not delegated") {
		t.Errorf("signing the undelegated acme/lib: %s", out)
	}

	// With nothing else pending, undelegating a pending repository publishes
	// the org role at once.
	st.trustctl(t, "org", "delegate", "acme/tmp", "--key", carolPub)
	out = st.trustctl(t, "org", "undelegate", "acme/tmp")
	if !strings.Contains(out, "is no longer delegated (org-acme v") || !strings.Contains(out, "published") || strings.Contains(out, "held") {
		t.Errorf("undelegating the only pending repository said %q, want the org role published", out)
	}
	mustResolve(t, vc, "acme/app:v1", d)
}

// TestTrustClientRefusesFreezeAndRollback: the attacks a TUF client refuses on
// its own. Freeze: a client whose clock is past the timestamp's expiry (as when
// trustd stops re-signing) refuses the metadata. Rollback: a client that has seen
// version N refuses a server that serves N-1 (older metadata copied from trustd
// onto a file server), while a client without that state would accept it.
func TestTrustClientRefusesFreezeAndRollback(t *testing.T) {
	t.Parallel()
	st := startStack(t, openAll...)
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")
	d1 := st.pushImage(t, "acme/app", "v1")
	st.sign(t, "acme/app:v1", "alice", d1)
	root := st.pinnedRoot(t)
	token := st.trustdToken(t)

	t.Run("freeze: an expired timestamp", func(t *testing.T) {
		later := time.Now().Add(25 * time.Hour) // timestamps live a day
		vc := st.verifier(t, root, func() time.Time { return later })
		mustNotResolve(t, vc, "acme/app:v1", verify.ErrExpired)
		up := tufUpdater(t, st.Trustd+"/tuf/", root, t.TempDir(), token)
		up.UnsafeSetRefTime(later)
		if err := up.Refresh(); !errors.Is(err, &metadata.ErrExpiredMetadata{}) {
			t.Fatalf("go-tuf with a clock past the timestamp's expiry: %v, want expired metadata", err)
		}
	})

	t.Run("rollback: a client that saw version N refuses N-1", func(t *testing.T) {
		old := t.TempDir()
		copyMetadata(t, st.Trustd, token, old)
		d2 := st.pushImage(t, "acme/app", "v2")
		st.sign(t, "acme/app:v2", "alice", d2)

		cache := t.TempDir()
		up := tufUpdater(t, st.Trustd+"/tuf/", root, cache, token)
		if _, err := up.GetTargetInfo("acme/app:v2"); err != nil {
			t.Fatal(err)
		}
		files := httptest.NewServer(http.FileServer(http.Dir(old)))
		defer files.Close()
		up = tufUpdater(t, files.URL+"/", root, cache, "")
		err := up.Refresh()
		if !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
			t.Fatalf("refreshing from the older copy with version N cached: %v, want a bad version number", err)
		}
		// Without the cached state the same copy is accepted: the cache is
		// what protects (the registry keeps it on its storage for this reason).
		fresh := tufUpdater(t, files.URL+"/", root, t.TempDir(), "")
		if err := fresh.Refresh(); err != nil {
			t.Fatalf("a client without state refreshing from the older copy: %v", err)
		}
	})
}

// copyMetadata copies trustd's current metadata (timestamp, root versions, and
// every role the snapshot names) into dir, as a static TUF repository.
func copyMetadata(t *testing.T, trustd, token, dir string) {
	t.Helper()
	get := func(name string) []byte {
		req, _ := http.NewRequest(http.MethodGet, trustd+"/tuf/"+name, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", name, resp.Status, b)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return b
	}
	ts, err := metadata.Timestamp().FromBytes(get("timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := metadata.Root().FromBytes(get("root.json"))
	if err != nil {
		t.Fatal(err)
	}
	for v := int64(1); v <= rt.Signed.Version; v++ {
		get(fmt.Sprintf("%d.root.json", v))
	}
	sv := ts.Signed.Meta["snapshot.json"].Version
	sn, err := metadata.Snapshot().FromBytes(get(fmt.Sprintf("%d.snapshot.json", sv)))
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range sn.Signed.Meta {
		get(fmt.Sprintf("%d.%s", m.Version, name))
	}
}
