package tuf_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	app := trustnames.RoleForRepo("acme/app")
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

// hookAfterHead runs its hook once, right after head.json is next read.
type hookAfterHead struct {
	driver.Driver
	hook atomic.Pointer[func()]
}

func (d *hookAfterHead) GetContent(ctx context.Context, p string) ([]byte, string, error) {
	data, ver, err := d.Driver.GetContent(ctx, p)
	if p == tuf.HeadPath {
		if hook := d.hook.Swap(nil); hook != nil {
			(*hook)()
		}
	}
	return data, ver, err
}

// stuckMoves refuses to move anything into meta/ while on, so a commit's
// files stay pending, named by the head.
type stuckMoves struct {
	*inmemory.Driver
	on atomic.Bool
}

func (d *stuckMoves) Move(ctx context.Context, src, dst string) error {
	if d.on.Load() && strings.HasPrefix(dst, "/trustd/v1/tuf/meta/") {
		return errors.New("moves are stuck")
	}
	return d.Driver.Move(ctx, src, dst)
}

// TestRestoreServesTheVersionsCommittedAfterIt: a copy is taken while a
// version of a role commits after the copy read head.json. Restored, the
// repository commits that version number again with other content, and serves
// that content, never the discarded version's.
func TestRestoreServesTheVersionsCommittedAfterIt(t *testing.T) {
	ctx := context.Background()
	d := &hookAfterHead{Driver: inmemory.New()}
	e := newEnv(t, d)
	orgKey, pub := newKey(t), newKey(t)
	e.org("acme", []*key{orgKey}, 1, repoDelegation("acme/app", 1, pub))
	bob := e.user("bob", "acme", "publisher")
	app := trustnames.RoleForRepo("acme/app")
	e.mustPut(201, app, sign(t, role(1, nil, targets("acme/app:v", target("one"))), pub), bob)

	publishTwo := func() { e.mustPut(201, app, sign(t, role(2, nil, targets("acme/app:v", target("two"))), pub), bob) }
	d.hook.Store(&publishTwo)
	files, err := tuf.ReadConsistent(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if d.hook.Load() != nil {
		t.Fatal("version 2 was not published while the copy was read")
	}
	discarded, _, err := d.GetContent(ctx, "/trustd/v1/tuf/meta/"+app+"/2.json")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("the copy leaves out what was committed after its head", func(t *testing.T) {
		var head struct{ Snapshot int64 }
		for _, f := range files {
			if f.Path == tuf.HeadPath {
				json.Unmarshal(f.Data, &head)
			}
		}
		newer := []string{"/trustd/v1/tuf/meta/" + app + "/2.json", fmt.Sprintf("/trustd/v1/tuf/meta/snapshot/%d.json", head.Snapshot+1)}
		for _, f := range files {
			if slices.Contains(newer, f.Path) || strings.HasPrefix(f.Path, "/trustd/v1/tuf/pending/"+app+"/2.") {
				t.Errorf("the copy holds %s, committed after the head it copied", f.Path)
			}
		}
	})

	t.Run("the version committed again is served, not the discarded one", func(t *testing.T) {
		restored := &stuckMoves{Driver: inmemory.New()}
		for _, f := range files {
			if _, err := restored.PutContent(ctx, f.Path, f.Data); err != nil {
				t.Fatal(err)
			}
		}
		if err := copyRecords(ctx, d, restored.Driver); err != nil {
			t.Fatal(err)
		}
		// As a copy by an earlier trustd held it.
		if _, err := restored.PutContent(ctx, "/trustd/v1/tuf/meta/"+app+"/2.json", discarded); err != nil {
			t.Fatal(err)
		}
		e2 := startEnv(t, restored)
		e2.rootRaw = e.rootRaw
		restored.on.Store(true)
		bob2 := e2.login("bob", userPassword)
		e2.mustPut(201, app, sign(t, role(2, nil, targets("acme/app:v", target("three"))), pub), bob2)

		r := e2.do("GET", "/tuf/2."+app+".json", bob2, nil)
		md, err := (&metadata.Metadata[metadata.TargetsType]{}).FromBytes(r.body)
		if r.status != 200 || err != nil {
			t.Fatalf("GET 2.%s.json: %d %v %s", app, r.status, err, r.body)
		}
		want := target("three").Hashes["sha256"].String()
		if got := md.Signed.Targets["acme/app:v"]; got == nil || got.Hashes["sha256"].String() != want {
			t.Errorf("version 2 served after the restore is not the one committed there: %+v", md.Signed.Targets)
		}
		got, err := e2.resolve(t, t.TempDir(), bob2, "acme/app:v", nil)
		if err != nil {
			t.Fatalf("the restored repository does not verify: %v", err)
		}
		if got.Hashes["sha256"].String() != want {
			t.Errorf("acme/app:v resolves to %s, want %s", got.Hashes["sha256"], want)
		}
	})
}
