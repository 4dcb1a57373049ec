package tuf_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/signet-oss/signet/registry/storage/driver"
	"github.com/signet-oss/signet/registry/storage/driver/inmemory"
	"github.com/signet-oss/signet/trustd/tuf"
)

// TestReadConsistentWhileCommitting copies the repository again and again
// while a publisher commits new versions, then serves each copy from a trustd
// of its own: every copy verifies, from the original root, with go-tuf's
// updater, and holds a version of the role no older than the one committed
// before the copy began.
func TestReadConsistentWhileCommitting(t *testing.T) {
	ctx := context.Background()
	d := &slowDriver{Driver: inmemory.New()}
	e := newEnv(t, d)
	orgKey, pub := newKey(t), newKey(t)
	e.org("acme", []*key{orgKey}, 1, repoDelegation("acme/app", 1, pub))
	bob := e.user("bob", "acme", "publisher")
	app := tuf.RoleForRepo("acme/app")
	e.mustPut(201, app, sign(t, role(1, nil, targets("acme/app:v", target("1"))), pub), bob)

	const versions = 30
	var mu sync.Mutex
	committed := 1
	done := make(chan struct{})
	go func() {
		defer close(done)
		for v := 2; v <= versions; v++ {
			md := role(int64(v), nil, targets("acme/app:v", target(fmt.Sprint(v))))
			if r := e.put(app, sign(t, md, pub), bob); r.status != 201 {
				t.Errorf("publishing version %d: %d %s", v, r.status, r.body)
				return
			}
			mu.Lock()
			committed = v
			mu.Unlock()
			time.Sleep(5 * time.Millisecond) // let copies run between commits too
		}
	}()
	type copied struct {
		files  []tuf.File
		before int
	}
	var copies []copied
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		mu.Lock()
		before := committed
		mu.Unlock()
		files, err := tuf.ReadConsistent(ctx, d)
		if err != nil {
			<-done
			t.Fatalf("copy %d: %v", len(copies), err)
		}
		copies = append(copies, copied{files, before})
	}
	if len(copies) < 5 {
		t.Fatalf("only %d copies were taken while publishing", len(copies))
	}
	for i, c := range copies {
		// The copy, with the records it needs (accounts, signing key), on a
		// store of its own.
		restored := inmemory.New()
		for _, f := range c.files {
			if _, err := restored.PutContent(ctx, f.Path, f.Data); err != nil {
				t.Fatal(err)
			}
		}
		if err := copyRecords(ctx, d, restored); err != nil {
			t.Fatal(err)
		}
		e2 := startEnv(t, restored)
		e2.rootRaw = e.rootRaw
		got, err := e2.resolve(t, t.TempDir(), e2.admin, "acme/app:v", nil)
		if err != nil {
			t.Fatalf("copy %d does not verify: %v", i, err)
		}
		v := 0
		for n := 1; n <= versions; n++ {
			if want := target(fmt.Sprint(n)); got.Length == want.Length && got.Hashes["sha256"].String() == want.Hashes["sha256"].String() {
				v = n
			}
		}
		if v < c.before {
			t.Fatalf("copy %d holds version %d of the role, older than version %d committed before it began", i, v, c.before)
		}
	}
}

// slowDriver makes reads and moves slow, so commits land while a copy runs
// and between a commit and the moves of its files.
type slowDriver struct{ driver.Driver }

func (d *slowDriver) GetContent(ctx context.Context, path string) ([]byte, string, error) {
	time.Sleep(200 * time.Microsecond)
	return d.Driver.GetContent(ctx, path)
}

func (d *slowDriver) Move(ctx context.Context, src, dst string) error {
	time.Sleep(2 * time.Millisecond)
	return d.Driver.Move(ctx, src, dst)
}

// copyRecords copies trustd's records outside the TUF repository.
func copyRecords(ctx context.Context, from driver.Driver, to *inmemory.Driver) error {
	return from.Walk(ctx, "/trustd/v1", func(fi driver.FileInfo) error {
		if fi.IsDir {
			if fi.Path == "/trustd/v1/tuf" {
				return driver.ErrSkipDir
			}
			return nil
		}
		data, _, err := from.GetContent(ctx, fi.Path)
		if err != nil {
			return err
		}
		_, err = to.PutContent(ctx, fi.Path, data)
		return err
	})
}
