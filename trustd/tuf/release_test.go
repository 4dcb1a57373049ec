package tuf_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/trustd/tuf"
	"github.com/signet-oss/signet/trustnames"
)

// adminCaller may do anything: the tests here drive bare Repos, without
// trustd's accounts.
type adminCaller struct{}

func (adminCaller) Anonymous() bool       { return false }
func (adminCaller) Admin() bool           { return true }
func (adminCaller) MayPull(string) bool   { return true }
func (adminCaller) MayPush(string) bool   { return true }
func (adminCaller) MayPullIn(string) bool { return true }
func (adminCaller) OwnsOrg(string) bool   { return true }

// adminAuth authenticates every request as adminCaller.
type adminAuth struct{}

func (adminAuth) Authenticate(*http.Request) (tuf.Caller, error) { return adminCaller{}, nil }
func (adminAuth) Challenge(*http.Request) string                 { return `Bearer realm="test"` }

// replicas is two Repos on one driver, as two trustd replicas share a store,
// on one test clock. served is the first replica's HTTP API, for the checks a
// client makes.
type replicas struct {
	a, b   *tuf.Repo
	clk    *clock
	served *env
	org    *key
	pub    *key

	mu sync.Mutex
	// releases is what either replica told OnRelease.
	releases []release
}

// release is one call of OnRelease.
type release struct {
	role string
	res  tuf.PublishResult
}

// newReplicas initialises the repository through replica a with org-acme
// published (version 1, delegating nothing), then holds org-acme version 2,
// which delegates acme/a and acme/b to pub: the held version whose release the
// tests watch.
func newReplicas(t *testing.T, d driver.Driver) *replicas {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	rs := &replicas{clk: clk, org: newKey(t), pub: newKey(t)}
	cfg := tuf.Config{TimestampExpiry: 24 * time.Hour, SnapshotExpiry: 7 * 24 * time.Hour, ResignBefore: 6 * time.Hour, Now: clk.now,
		OnRelease: func(_ context.Context, role string, res tuf.PublishResult) error {
			rs.mu.Lock()
			defer rs.mu.Unlock()
			rs.releases = append(rs.releases, release{role, res})
			return nil
		}}
	a, err := tuf.New(ctx, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tuf.New(ctx, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := mux.NewRouter()
	a.Register(m, "/tuf", adminAuth{})
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	e := &env{t: t, d: d, srv: srv, admin: "admin", root: newKey(t), targets: newKey(t), keys: map[string]*key{}}
	snapKey, tsKey := a.OnlineKeys()
	root := metadata.Root(clk.now().Add(365 * 24 * time.Hour))
	for r, k := range map[string]*metadata.Key{"root": e.root.tuf, "targets": e.targets.tuf, "snapshot": snapKey, "timestamp": tsKey} {
		if err := root.Signed.AddKey(k, r); err != nil {
			t.Fatal(err)
		}
	}
	e.rootMD, e.rootRaw = root, sign(t, root, e.root)
	if err := a.Init(ctx, e.rootRaw, sign(t, role(1, nil, nil), e.targets)); err != nil {
		t.Fatal(err)
	}
	rs.a, rs.b, rs.served = a, b, e
	rs.publish(t, a, "targets version 2", trustnames.RoleTargets, sign(t, role(2, []delegation{orgDelegation("acme", 1, rs.org)}, nil), e.targets), true)
	rs.publish(t, a, "org-acme version 1", trustnames.RoleForOrg("acme"), sign(t, role(1, nil, nil), rs.org), false)
	ds := []delegation{repoDelegation("acme/a", 1, rs.pub), repoDelegation("acme/b", 1, rs.pub)}
	rs.publish(t, a, "org-acme version 2", trustnames.RoleForOrg("acme"), sign(t, role(2, ds, nil), rs.org), true)
	// The replicas read head.json again when their copy is a second old.
	clk.add(2 * time.Second)
	return rs
}

// publish publishes data through replica r and checks whether it was held.
func (rs *replicas) publish(t *testing.T, r *tuf.Repo, what, roleName string, data []byte, held bool) tuf.PublishResult {
	t.Helper()
	res, err := r.Publish(context.Background(), roleName, data)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if res.Held != held {
		t.Fatalf("%s: held %v, want %v (%+v)", what, res.Held, held, res)
	}
	return res
}

// firstVersion is the first version of repository repo, signed by pub.
func (rs *replicas) firstVersion(t *testing.T, repo string) []byte {
	return sign(t, role(1, nil, targets(repo+":v1", target(repo))), rs.pub)
}

// snapshot returns the snapshot the served replica's timestamp names.
func (rs *replicas) snapshot(t *testing.T) *metadata.Metadata[metadata.SnapshotType] {
	t.Helper()
	e := rs.served
	var ts metadata.Metadata[metadata.TimestampType]
	if _, err := ts.FromBytes(e.do("GET", "/tuf/timestamp.json", "", nil).body); err != nil {
		t.Fatal(err)
	}
	var snap metadata.Metadata[metadata.SnapshotType]
	r := e.do("GET", fmt.Sprintf("/tuf/%d.snapshot.json", ts.Signed.Meta["snapshot.json"].Version), "", nil)
	if _, err := snap.FromBytes(r.body); err != nil {
		t.Fatalf("snapshot: %d %v", r.status, err)
	}
	return &snap
}

// checkReleased checks that the one snapshot after before publishes org-acme
// version 2 with the first versions of acme/a and acme/b, and that clients
// resolve both.
func (rs *replicas) checkReleased(t *testing.T, before int64) {
	t.Helper()
	snap := rs.snapshot(t)
	if snap.Signed.Version != before+1 {
		t.Fatalf("snapshot version %d, want %d: one snapshot for the release", snap.Signed.Version, before+1)
	}
	for roleName, want := range map[string]int64{trustnames.RoleForOrg("acme"): 2, trustnames.RoleForRepo("acme/a"): 1, trustnames.RoleForRepo("acme/b"): 1} {
		if m := snap.Signed.Meta[roleName+".json"]; m == nil || m.Version != want {
			t.Errorf("snapshot version %d lists %s as %+v, want version %d", snap.Signed.Version, roleName, m, want)
		}
	}
	if v, _ := rs.served.heldVersion(t, trustnames.RoleForOrg("acme")); v != 0 {
		t.Errorf("org-acme version %d is still held after the release", v)
	}
	rs.served.snapshotListsEveryDelegation(t)
	for _, name := range []string{"acme/a:v1", "acme/b:v1"} {
		if _, err := rs.served.resolve(t, t.TempDir(), "", name, nil); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// checkRecorded checks that OnRelease was told of the one release, with what
// it published and the changes that made trusted: the delegations of acme/a
// and acme/b and their tags.
func (rs *replicas) checkRecorded(t *testing.T) {
	t.Helper()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.releases) != 1 {
		t.Fatalf("OnRelease told of %d releases, want 1: %+v", len(rs.releases), rs.releases)
	}
	got := rs.releases[0]
	if got.role != trustnames.RoleForOrg("acme") || got.res.Version != 2 {
		t.Errorf("OnRelease told of %s version %d, want org-acme version 2", got.role, got.res.Version)
	}
	var released, changes []string
	for _, r := range got.res.Released {
		released = append(released, fmt.Sprintf("%s v%d", r.Role, r.Version))
	}
	for _, c := range got.res.Changes {
		changes = append(changes, c.Action+" "+c.Repository+":"+c.Tag)
	}
	slices.Sort(released)
	slices.Sort(changes)
	a, b := trustnames.RoleForRepo("acme/a"), trustnames.RoleForRepo("acme/b")
	want := []string{a + " v1", b + " v1"}
	slices.Sort(want)
	if !slices.Equal(released, want) {
		t.Errorf("OnRelease: released %q, want %q", released, want)
	}
	if want := []string{"delegation.add acme/a:", "delegation.add acme/b:", "target.publish acme/a:v1", "target.publish acme/b:v1"}; !slices.Equal(changes, want) {
		t.Errorf("OnRelease: changes %q, want %q", changes, want)
	}
}

// checkUnreleased checks that org-acme version 2 is still held and the
// snapshot is still version want.
func (rs *replicas) checkUnreleased(t *testing.T, want int64) {
	t.Helper()
	if v := rs.snapshot(t).Signed.Version; v != want {
		t.Fatalf("snapshot version %d, want %d: nothing released yet", v, want)
	}
	if v, _ := rs.served.heldVersion(t, trustnames.RoleForOrg("acme")); v != 2 {
		t.Fatalf("held org-acme version %d, want 2", v)
	}
}

// meeting makes the first n lists of staged/ meet: each lists, then waits
// until all n have listed, so n publishes each look for the others' first
// versions before any keeps its own.
type meeting struct {
	driver.Driver
	mu   sync.Mutex
	left int
	met  chan struct{}
}

func (d *meeting) List(ctx context.Context, p string) ([]string, error) {
	names, err := d.Driver.List(ctx, p)
	if !strings.Contains(p, "/staged/") {
		return names, err
	}
	d.mu.Lock()
	wait := d.left > 0
	if wait {
		if d.left--; d.left == 0 {
			close(d.met)
		}
	}
	d.mu.Unlock()
	if wait {
		select {
		case <-d.met:
		case <-time.After(10 * time.Second): // a publish that no longer looks: the test's checks say so
		}
	}
	return names, err
}

func TestReleaseReadyReleasesFirstVersionsCompletedOnTwoReplicasAtOnce(t *testing.T) {
	d := &meeting{Driver: inmemory.New()}
	rs := newReplicas(t, d)
	before := rs.snapshot(t).Signed.Version

	// Each replica takes one of the two first versions, and each looks for
	// the other's before either keeps its own: each sees only its own, so
	// neither releases the set.
	d.mu.Lock()
	d.left, d.met = 2, make(chan struct{})
	d.mu.Unlock()
	var wg sync.WaitGroup
	var resA, resB tuf.PublishResult
	var errA, errB error
	wg.Go(func() {
		resA, errA = rs.a.Publish(context.Background(), trustnames.RoleForRepo("acme/a"), rs.firstVersion(t, "acme/a"))
	})
	wg.Go(func() {
		resB, errB = rs.b.Publish(context.Background(), trustnames.RoleForRepo("acme/b"), rs.firstVersion(t, "acme/b"))
	})
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("the first versions: %v, %v", errA, errB)
	}
	if !resA.Held || !resB.Held {
		t.Fatalf("the first versions on two replicas: %+v and %+v, want both kept, each waiting for the other", resA, resB)
	}
	rs.checkUnreleased(t, before)

	// Run's next tick, past the time a publish gets to commit its own release.
	rs.clk.add(time.Minute)
	n, err := rs.a.ReleaseReady(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("ReleaseReady: released %d, %v; want 1", n, err)
	}
	rs.checkReleased(t, before)
	rs.checkRecorded(t)

	t.Run("the other replica then has nothing to release", func(t *testing.T) {
		rs.clk.add(2 * time.Second)
		if n, err := rs.b.ReleaseReady(context.Background()); err != nil || n != 0 {
			t.Fatalf("ReleaseReady on the other replica: released %d, %v; want 0", n, err)
		}
		if v := rs.snapshot(t).Signed.Version; v != before+1 {
			t.Fatalf("snapshot version %d after a second ReleaseReady, want %d", v, before+1)
		}
		rs.checkRecorded(t)
	})
}

func TestReleaseReadyReleasesASetWhoseLastFirstVersionWasKilledBeforeTheCommitPoint(t *testing.T) {
	d := &failingHead{Driver: inmemory.New()}
	rs := newReplicas(t, d)
	ctx := context.Background()
	before := rs.snapshot(t).Signed.Version
	rs.publish(t, rs.a, "acme/a version 1", trustnames.RoleForRepo("acme/a"), rs.firstVersion(t, "acme/a"), true)

	// acme/b's first version completes the set; the publish dies at the commit
	// point of the release, as a crash there would stop it.
	d.armed.Store(true)
	_, err := rs.a.Publish(ctx, trustnames.RoleForRepo("acme/b"), rs.firstVersion(t, "acme/b"))
	d.armed.Store(false)
	if err == nil {
		t.Fatal("the release committed through a head.json write that fails")
	}
	rs.checkUnreleased(t, before)
	if r := rs.served.do("GET", "/tuf/api/staged/"+trustnames.RoleForRepo("acme/b"), "", nil); r.status != 200 {
		t.Fatalf("acme/b's complete first version is not kept for a later release: %d %s", r.status, r.body)
	}

	rs.clk.add(2 * time.Second)
	if n, err := rs.a.ReleaseReady(ctx); err != nil || n != 0 {
		t.Fatalf("ReleaseReady right after the publish, which may still be committing: released %d, %v; want 0", n, err)
	}
	rs.checkUnreleased(t, before)

	rs.clk.add(time.Minute)
	n, err := rs.a.ReleaseReady(ctx)
	if err != nil || n != 1 {
		t.Fatalf("ReleaseReady: released %d, %v; want 1", n, err)
	}
	rs.checkReleased(t, before)
	rs.checkRecorded(t)

	t.Run("a second ReleaseReady is a no-op", func(t *testing.T) {
		ts := rs.served.do("GET", "/tuf/timestamp.json", "", nil).body
		rs.clk.add(2 * time.Second)
		if n, err := rs.a.ReleaseReady(ctx); err != nil || n != 0 {
			t.Fatalf("the second ReleaseReady: released %d, %v; want 0", n, err)
		}
		if after := rs.served.do("GET", "/tuf/timestamp.json", "", nil).body; string(after) != string(ts) {
			t.Fatal("the second ReleaseReady committed a new timestamp")
		}
		if v := rs.snapshot(t).Signed.Version; v != before+1 {
			t.Fatalf("snapshot version %d after a second ReleaseReady, want %d", v, before+1)
		}
		rs.checkRecorded(t)
	})
}

// releaseDuring runs fn once, after the write that keeps role's first version
// in staged/: between a publish keeping the version completing a set and its
// commit of the release.
type releaseDuring struct {
	driver.Driver
	role string
	once sync.Once
	fn   func()
}

func (d *releaseDuring) PutContentIf(ctx context.Context, p string, data []byte, c driver.Condition) (string, error) {
	v, err := d.Driver.PutContentIf(ctx, p, data, c)
	if err == nil && strings.Contains(p, "/staged/"+d.role+"/") && d.fn != nil {
		d.once.Do(d.fn)
	}
	return v, err
}

func TestReleaseReadyLeavesASetToThePublishReleasingIt(t *testing.T) {
	d := &releaseDuring{Driver: inmemory.New(), role: trustnames.RoleForRepo("acme/b")}
	rs := newReplicas(t, d)
	ctx := context.Background()
	before := rs.snapshot(t).Signed.Version
	rs.publish(t, rs.a, "acme/a version 1", trustnames.RoleForRepo("acme/a"), rs.firstVersion(t, "acme/a"), true)

	// The other replica's ReleaseReady runs while the publish completing the
	// set commits it: every first version is in staged/.
	var n int
	var err error
	d.fn = func() { n, err = rs.b.ReleaseReady(ctx) }
	res, perr := rs.a.Publish(ctx, trustnames.RoleForRepo("acme/b"), rs.firstVersion(t, "acme/b"))
	if err != nil || n != 0 {
		t.Errorf("ReleaseReady during the publish: released %d, %v; want 0", n, err)
	}
	if perr != nil || res.Held || len(res.Released) != 2 {
		t.Fatalf("the publish completing the set: %+v, %v; want it to release org-acme and acme/a", res, perr)
	}
	rs.checkReleased(t, before)
}
