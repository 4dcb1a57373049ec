package verify

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/tuftest"
	"github.com/signet-oss/signet/trustnames"

	"github.com/opencontainers/go-digest"
)

// memStore is a MetadataStore in memory.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memStore) Load(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[name]
	if !ok {
		return nil, ErrNotStored
	}
	return b, nil
}

func (s *memStore) Save(_ context.Context, name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[name] = data
	return nil
}

func (f *fixture) newIndex(t *testing.T, store MetadataStore, mod ...func(*IndexConfig)) *Index {
	t.Helper()
	cfg := IndexConfig{TrustdURL: f.repo.Srv.URL, Root: f.repo.RootBytes(), Store: store, MinInterval: time.Nanosecond}
	for _, m := range mod {
		m(&cfg)
	}
	ix, err := NewIndex(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestIndexHoldsEveryCurrentTargetOfEveryRepository(t *testing.T) {
	f := newFixture(t)
	ix := f.newIndex(t, &memStore{})
	if _, err := ix.Lookup("acme/app"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("before any refresh: %v, want ErrUnreachable", err)
	}
	if err := ix.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	rt, err := ix.Lookup("acme/app")
	if err != nil || rt == nil {
		t.Fatalf("acme/app: %+v %v", rt, err)
	}
	if got := rt.Tags["v1"]; got == nil || string(got.Digest) != f.v1 {
		t.Fatalf("acme/app:v1 = %+v, want %s", got, f.v1)
	}
	if rt.Digests[digest.Digest(f.v1)] == nil {
		t.Fatal("the digest target acme/app@v1 is missing")
	}
	for _, d := range []string{f.v1, f.index, f.child1, f.child2} {
		if !rt.Covered[digest.Digest(d)] {
			t.Errorf("%s should be covered (a target or an index's closure)", d)
		}
	}
	if ids := rt.Keys.IDs(); rt.Keys.Len() != 1 || len(ids) != 1 || ids[0] != f.repo.Keys["alice"].ID() || rt.Threshold != 1 {
		t.Fatalf("publisher keys %v threshold %d, want alice's, 1", ids, rt.Threshold)
	}
	if team, _ := ix.Lookup("acme/team/app"); team == nil || string(team.Tags["v1"].Digest) != f.teamV1 {
		t.Fatalf("a three-component repository: %+v", team)
	}
	if other, err := ix.Lookup("other/app"); other != nil || err != nil {
		t.Fatalf("an unknown repository: %+v %v, want nothing", other, err)
	}
}

func TestIndexIgnoresTargetsOutsideTheirDelegation(t *testing.T) {
	f := newFixture(t)
	// alice's role for acme/app lists a target of acme/other: outside its paths.
	f.repo.AddTarget(trustnames.RoleForRepo("acme/app"), "acme/other:v1", []byte("sneaky"), imageType)
	f.repo.Publish(trustnames.RoleForRepo("acme/app"))
	ix := f.newIndex(t, &memStore{})
	if err := ix.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rt, _ := ix.Lookup("acme/other"); rt != nil {
		t.Fatalf("a target outside its role's delegation was indexed: %+v", rt.Tags)
	}
}

func TestIndexRevocationAndANoChangeRefresh(t *testing.T) {
	f := newFixture(t)
	counting := &countingTransport{}
	ix := f.newIndex(t, &memStore{}, func(c *IndexConfig) { c.HTTPClient = &http.Client{Transport: counting} })
	ctx := context.Background()
	if err := ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	counting.n = 0
	if err := ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if counting.n != 1 {
		t.Errorf("a refresh with nothing changed made %d requests, want 1 (the timestamp)", counting.n)
	}
	f.repo.Delegate("org-acme", trustnames.RoleForRepo("acme/app"), trustnames.RepoPaths("acme/app"), "bob")
	f.repo.Publish("org-acme")
	if err := ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if rt, _ := ix.Lookup("acme/app"); rt != nil && len(rt.Tags) > 0 {
		t.Fatalf("after alice was revoked acme/app still has %v", rt.Tags)
	}
	if len(ix.Problems()) != 1 {
		t.Fatalf("problems %v, want alice's role left out", ix.Problems())
	}
}

func TestIndexRefreshesAtMostTwicePerIntervalAndAlwaysAfterTheCall(t *testing.T) {
	f := newFixture(t)
	ix := f.newIndex(t, &memStore{}, func(c *IndexConfig) { c.MinInterval = 300 * time.Millisecond })
	ctx := context.Background()
	if err := ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// Published right after a refresh: a caller now still sees it, after the pause.
	f.repo.AddTarget(trustnames.RoleForRepo("acme/app"), "acme/app:late", []byte("late"), imageType)
	f.repo.Publish(trustnames.RoleForRepo("acme/app"))
	var wg sync.WaitGroup
	for range 300 {
		wg.Add(1)
		go func() { defer wg.Done(); ix.Refresh(ctx) }()
	}
	wg.Wait()
	if n := ix.Refreshes(); n > 3 {
		t.Fatalf("1 + 300 concurrent refresh calls reached trustd %d times, want at most 3", n)
	}
	if rt, _ := ix.Lookup("acme/app"); rt == nil || rt.Tags["late"] == nil {
		t.Fatal("a target published before the calls was not seen")
	}
}

func TestIndexServesThroughAnOutageUntilExpiryAndSurvivesARestart(t *testing.T) {
	f := newFixture(t)
	store := &memStore{}
	now := time.Now()
	clock := func() time.Time { return now }
	ix := f.newIndex(t, store, func(c *IndexConfig) { c.Now = func() time.Time { return clock() } })
	ctx := context.Background()
	if err := ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	f.repo.Srv.Close() // trustd is down
	if err := ix.Refresh(ctx); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("refresh with trustd down: %v, want ErrUnreachable", err)
	}
	if rt, err := ix.Lookup("acme/app"); err != nil || rt.Tags["v1"] == nil {
		t.Fatalf("during the outage: %+v %v", rt, err)
	}
	// A new process on the same store serves at once, without trustd.
	restarted := f.newIndex(t, store)
	if err := restarted.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if rt, err := restarted.Lookup("acme/app"); err != nil || rt.Tags["v1"] == nil {
		t.Fatalf("after a restart: %+v %v", rt, err)
	}
	// Past the timestamp's expiry (a day) everything fails closed.
	now = now.Add(36 * time.Hour)
	if _, err := ix.Lookup("acme/app"); !errors.Is(err, ErrExpired) {
		t.Fatalf("past expiry: %v, want ErrExpired", err)
	}
}

func TestIndexRefusesARollbackBelowWhatItStored(t *testing.T) {
	f := newFixture(t)
	store := &memStore{}
	ctx := context.Background()
	oldTimestamp := f.repo.File("timestamp.json")
	f.repo.AddTarget(trustnames.RoleForRepo("acme/app"), "acme/app:v2", []byte("v2"), imageType)
	f.repo.Publish(trustnames.RoleForRepo("acme/app"))
	if err := f.newIndex(t, store).Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// trustd (or a thief of its online keys) now serves the older timestamp: a
	// new replica on the same store must not go back.
	f.repo.SetFile("timestamp.json", oldTimestamp)
	fresh := f.newIndex(t, store)
	if err := fresh.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Refresh(ctx); err == nil {
		t.Fatal("a rolled-back timestamp was accepted")
	}
	if rt, _ := fresh.Lookup("acme/app"); rt == nil || rt.Tags["v2"] == nil {
		t.Fatal("the view went back to before v2")
	}
}

func TestIndexFollowsARotatedTimestampKeyBetweenRootProbes(t *testing.T) {
	f := newFixture(t)
	ix := f.newIndex(t, &memStore{})
	ctx := context.Background()
	if err := ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// Root v2 replaces the timestamp key; the next timestamp is signed with it.
	r := f.repo
	old := r.Keys["timestamp"]
	nk := tuftest.NewKey(t)
	r.Root.Signed.RevokeKey(old.ID(), "timestamp")
	r.Root.Signed.AddKey(nk.TUF, "timestamp")
	r.Root.Signed.Version++
	r.SignRoot()
	r.Keys["timestamp"] = nk
	r.AddTarget(trustnames.RoleForRepo("acme/app"), "acme/app:after", []byte("after"), imageType)
	r.Publish(trustnames.RoleForRepo("acme/app"))
	if err := ix.Refresh(ctx); err != nil {
		t.Fatalf("after a timestamp key rotation: %v", err)
	}
	if rt, _ := ix.Lookup("acme/app"); rt == nil || rt.Tags["after"] == nil {
		t.Fatal("the view did not move past the rotation")
	}
}

func TestIndexDropsADelegatedRoleThatExpiresWhileTheViewIsHeld(t *testing.T) {
	f := newFixture(t)
	// acme/app's role expires in an hour, well before the timestamp (a day).
	role := f.repo.Delegated[trustnames.RoleForRepo("acme/app")]
	role.Signed.Expires = f.repo.Now.Add(time.Hour)
	f.repo.Publish(trustnames.RoleForRepo("acme/app"))
	now := time.Now()
	ix := f.newIndex(t, &memStore{}, func(c *IndexConfig) { c.Now = func() time.Time { return now } })
	ctx := context.Background()
	if err := ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if rt, _ := ix.Lookup("acme/app"); rt == nil || rt.Tags["v1"] == nil {
		t.Fatal("acme/app:v1 is missing before its role expires")
	}
	now = now.Add(2 * time.Hour)
	// Nothing changed at trustd (or it is down): the view is not rebuilt, but
	// the expired role's targets must not be served from it.
	ix.Refresh(ctx)
	if rt, err := ix.Lookup("acme/app"); err != nil || (rt != nil && (len(rt.Tags) > 0 || len(rt.Covered) > 0)) {
		t.Fatalf("after acme/app's role expired: %+v %v, want no targets", rt, err)
	}
	if rt, err := ix.Lookup("acme/team/app"); err != nil || rt == nil || rt.Tags["v1"] == nil {
		t.Fatalf("another repository's role that did not expire: %+v %v", rt, err)
	}
}

func TestIndexMeasuresThePauseBetweenRefreshesOnItsClock(t *testing.T) {
	f := newFixture(t)
	clock := &tuftest.Clock{}
	ix := f.newIndex(t, &memStore{}, func(c *IndexConfig) { c.Now, c.MinInterval = clock.Now, time.Hour })
	if err := ix.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.repo.AddTarget(trustnames.RoleForRepo("acme/app"), "acme/app:later", []byte("later"), imageType)
	f.repo.Publish(trustnames.RoleForRepo("acme/app"))
	// An hour passes on the index's clock: the next refresh need not wait.
	clock.Advance(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ix.Refresh(ctx); err != nil {
		t.Fatalf("a refresh an hour (on the index's clock) after the last: %v", err)
	}
	if rt, _ := ix.Lookup("acme/app"); rt == nil || rt.Tags["later"] == nil {
		t.Fatal("a target published before the refresh was not seen")
	}
}

func TestIndexAsksForANewerRootWhenItsClockSaysItIsTime(t *testing.T) {
	f := newFixture(t)
	clock := &tuftest.Clock{}
	counting := &countingTransport{}
	ix := f.newIndex(t, &memStore{}, func(c *IndexConfig) {
		c.Now, c.RootCheckInterval, c.HTTPClient = clock.Now, time.Hour, &http.Client{Transport: counting}
	})
	ctx := context.Background()
	if err := ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := requestsOfARefresh(t, ix, counting); n != 1 {
		t.Fatalf("a refresh within the root check interval made %d requests, want 1 (the timestamp)", n)
	}
	clock.Advance(time.Hour)
	if n := requestsOfARefresh(t, ix, counting); n != 2 {
		t.Fatalf("a refresh a root check interval later made %d requests, want 2 (next root, timestamp)", n)
	}
}

// requestsOfARefresh refreshes ix and returns how many requests that made
// through counting, ix's transport.
func requestsOfARefresh(t *testing.T, ix *Index, counting *countingTransport) int {
	t.Helper()
	counting.n = 0
	if err := ix.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return counting.n
}
