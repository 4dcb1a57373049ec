package tuf_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/trustd/tuf"
	"github.com/signet-oss/signet/trustnames"
)

// failingHead fails conditional writes of head.json while armed: a publish that
// dies after writing its role file but before its commit point.
type failingHead struct {
	driver.Driver
	armed atomic.Bool
}

func (f *failingHead) PutContentIf(ctx context.Context, path string, data []byte, cond driver.Condition) (string, error) {
	if f.armed.Load() && strings.HasSuffix(path, "/tuf/head.json") {
		return "", errors.New("killed before the commit point")
	}
	return f.Driver.PutContentIf(ctx, path, data, cond)
}

func TestAPublishKilledBeforeItsCommitLeavesThePreviousStateWhole(t *testing.T) {
	d := &failingHead{Driver: inmemory.New()}
	e := newEnv(t, d)
	orgKey, pub := newKey(t), newKey(t)
	e.org("acme", []*key{orgKey}, 1, repoDelegation("acme/app", 1, pub))
	bob := e.user("bob", "acme", "publisher")
	app := trustnames.RoleForRepo("acme/app")
	e.mustPut(201, app, sign(t, role(1, nil, targets("acme/app:v1", target("v1"))), pub), bob)
	cache := t.TempDir()
	if _, err := e.resolve(t, cache, bob, "acme/app:v1", nil); err != nil {
		t.Fatal(err)
	}
	before := e.do("GET", "/tuf/timestamp.json", "", nil).body

	d.armed.Store(true)
	v2 := sign(t, role(2, nil, targets("acme/app:v1", target("v2"))), pub)
	if r := e.put(app, v2, bob); r.status != 500 {
		t.Fatalf("the interrupted publish: %d %s", r.status, r.body)
	}
	d.armed.Store(false)

	t.Run("the timestamp is unchanged", func(t *testing.T) {
		if after := e.do("GET", "/tuf/timestamp.json", "", nil).body; string(after) != string(before) {
			t.Fatal("the timestamp changed")
		}
	})
	t.Run("the role file written before the commit point is never served (mix-and-match)", func(t *testing.T) {
		if r := e.do("GET", "/tuf/2."+app+".json", bob, nil); r.status != 404 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		tf, err := e.resolve(t, cache, bob, "acme/app:v1", nil)
		if err != nil || tf.Length != target("v1").Length {
			t.Fatalf("%v %+v", err, tf)
		}
	})
	t.Run("the next publish of the same version succeeds", func(t *testing.T) {
		e.mustPut(201, app, sign(t, role(2, nil, targets("acme/app:v1", target("v2 again"))), pub), bob)
		tf, err := e.resolve(t, cache, bob, "acme/app:v1", nil)
		if err != nil || tf.Length != target("v2 again").Length {
			t.Fatalf("%v %+v", err, tf)
		}
	})
	t.Run("a restarted trustd serves the same state", func(t *testing.T) {
		e2 := startEnv(t, d)
		e2.rootRaw = e.rootRaw
		if _, err := e2.resolve(t, t.TempDir(), e2.login("bob", userPassword), "acme/app:v1", nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConcurrentPublishes(t *testing.T) {
	e := newEnv(t, nil)
	orgKey, pub := newKey(t), newKey(t)
	const n = 50
	var ds []delegation
	for i := range n {
		ds = append(ds, repoDelegation(fmt.Sprintf("acme/app%d", i), 1, pub))
	}
	e.org("acme", []*key{orgKey}, 1, ds...)
	bob := e.user("bob", "acme", "publisher")
	// The org role delegates all 50 at once: it is held until each has its
	// first version, then published with them.
	for i := range n {
		repo := fmt.Sprintf("acme/app%d", i)
		e.mustPut(map[bool]int{true: 201, false: 202}[i == n-1], trustnames.RoleForRepo(repo), sign(t, role(1, nil, nil), pub), bob)
	}

	t.Run("publishes to 50 different repositories at once all land", func(t *testing.T) {
		var wg sync.WaitGroup
		status := make([]int, n)
		for i := range n {
			wg.Go(func() {
				repo := fmt.Sprintf("acme/app%d", i)
				md := role(2, nil, targets(repo+":v1", target(repo)))
				status[i] = e.put(trustnames.RoleForRepo(repo), sign(t, md, pub), bob).status
			})
		}
		wg.Wait()
		for i, s := range status {
			if s != 201 {
				t.Errorf("acme/app%d: %d", i, s)
			}
		}
		dir := t.TempDir()
		for i := range n {
			if _, err := e.resolve(t, dir, bob, fmt.Sprintf("acme/app%d:v1", i), nil); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("two publishes of the same role and version: one wins, the other gets 409", func(t *testing.T) {
		repo := trustnames.RoleForRepo("acme/app0")
		var wg sync.WaitGroup
		status := make([]int, 2)
		bodies := make([][]byte, 2)
		for i := range 2 {
			md := role(3, nil, targets("acme/app0:v2", target(fmt.Sprint("racer", i))))
			data := sign(t, md, pub)
			wg.Go(func() {
				r := e.put(repo, data, bob)
				status[i], bodies[i] = r.status, r.body
			})
		}
		wg.Wait()
		if !(status[0] == 201 && status[1] == 409 || status[0] == 409 && status[1] == 201) {
			t.Fatalf("statuses %v: %s %s", status, bodies[0], bodies[1])
		}
	})
}

func TestTwoReplicasNeverBothWin(t *testing.T) {
	d := inmemory.New()
	a := newEnv(t, d)
	orgKey, pub := newKey(t), newKey(t)
	a.org("acme", []*key{orgKey}, 1, repoDelegation("acme/app", 1, pub), repoDelegation("acme/web", 1, pub))
	a.user("bob", "acme", "publisher")
	tokA := a.login("bob", userPassword)
	// Both first versions release the held org role (and targets) together.
	a.mustPut(202, trustnames.RoleForRepo("acme/app"), sign(t, role(1, nil, nil), pub), tokA)
	a.mustPut(201, trustnames.RoleForRepo("acme/web"), sign(t, role(1, nil, nil), pub), tokA)
	b := startEnv(t, d) // a second trustd on the same store
	b.rootRaw = a.rootRaw
	tokB := b.login("bob", userPassword)

	for round := 2; round <= 4; round++ {
		var wg sync.WaitGroup
		var sa, sb, sc int
		app := sign(t, role(int64(round), nil, targets("acme/app:v1", target(fmt.Sprint("a", round)))), pub)
		appB := sign(t, role(int64(round), nil, targets("acme/app:v1", target(fmt.Sprint("b", round)))), pub)
		web := sign(t, role(int64(round), nil, targets("acme/web:v1", target(fmt.Sprint("w", round)))), pub)
		wg.Go(func() { sa = a.put(trustnames.RoleForRepo("acme/app"), app, tokA).status })
		wg.Go(func() { sb = b.put(trustnames.RoleForRepo("acme/app"), appB, tokB).status })
		wg.Go(func() { sc = b.put(trustnames.RoleForRepo("acme/web"), web, tokB).status })
		wg.Wait()
		if !(sa == 201 && sb == 409 || sa == 409 && sb == 201) || sc != 201 {
			t.Fatalf("round %d: replica a %d, replica b %d, other role %d", round, sa, sb, sc)
		}
	}
	if _, err := a.resolve(t, t.TempDir(), tokA, "acme/web:v1", nil); err != nil {
		t.Fatal(err)
	}
}

// clock is a test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestResignsBeforeExpiry(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	repo, err := tuf.New(ctx, inmemory.New(), tuf.Config{TimestampExpiry: 24 * time.Hour, SnapshotExpiry: 7 * 24 * time.Hour, ResignBefore: 6 * time.Hour, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	rootKey, targetsKey := newKey(t), newKey(t)
	snapKey, tsKey := repo.OnlineKeys()
	root := metadata.Root(clk.now().Add(365 * 24 * time.Hour))
	for r, k := range map[string]*metadata.Key{"root": rootKey.tuf, "targets": targetsKey.tuf, "snapshot": snapKey, "timestamp": tsKey} {
		root.Signed.AddKey(k, r)
	}
	if err := repo.Init(ctx, sign(t, root, rootKey), sign(t, role(1, nil, nil), targetsKey)); err != nil {
		t.Fatal(err)
	}
	timestamp := func() *metadata.Metadata[metadata.TimestampType] {
		md, err := (&metadata.Metadata[metadata.TimestampType]{}).FromBytes(repo.Timestamp())
		if err != nil {
			t.Fatal(err)
		}
		return md
	}
	for _, c := range []struct {
		name             string
		advance          time.Duration
		resigned         bool
		timestamp, snap  int64
		timestampExpires time.Duration // after the clock
	}{
		{"nothing is re-signed while far from expiry", 17 * time.Hour, false, 1, 1, 7 * time.Hour},
		{"the timestamp is re-signed within resignBefore of expiry", 2 * time.Hour, true, 2, 1, 24 * time.Hour},
		{"a fresh timestamp is left alone", time.Hour, false, 2, 1, 23 * time.Hour},
		{"the snapshot is re-signed too within resignBefore of its expiry", 6*24*time.Hour - time.Hour, true, 3, 2, 24 * time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk.add(c.advance)
			did, err := repo.ResignIfDue(ctx)
			if err != nil || did != c.resigned {
				t.Fatalf("resigned %v, %v", did, err)
			}
			ts := timestamp()
			if ts.Signed.Version != c.timestamp || ts.Signed.Meta["snapshot.json"].Version != c.snap {
				t.Fatalf("timestamp %d, snapshot %d", ts.Signed.Version, ts.Signed.Meta["snapshot.json"].Version)
			}
			if left := ts.Signed.Expires.Sub(clk.now()); left > c.timestampExpires || left < c.timestampExpires-2*time.Second {
				t.Fatalf("the timestamp expires in %s, want %s", left, c.timestampExpires)
			}
			// The online key signed it, as the root requires.
			if err := root.VerifyDelegate("timestamp", ts); err != nil {
				t.Fatal(err)
			}
		})
	}
}
