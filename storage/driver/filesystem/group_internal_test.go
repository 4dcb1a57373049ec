package filesystem

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-oss/signet/storage/driver"
)

// distinctStripes returns n object paths in dir whose lock stripes differ from
// each other and from avoid's, so that none waits for another's path lock.
func distinctStripes(dir string, n int, avoid string) []string {
	seen := map[int]bool{stripeOf(avoid): true}
	var paths []string
	for i := 0; len(paths) < n; i++ {
		p := dir + "/o" + strconv.Itoa(i)
		if !seen[stripeOf(p)] {
			seen[stripeOf(p)] = true
			paths = append(paths, p)
		}
	}
	return paths
}

// TestGroupCommit: commits that arrive while a group is being synced share the
// next group's syncs (one per file, one per distinct directory), each gets its own
// result, and a lone commit is synced at once in a group of its own.
func TestGroupCommit(t *testing.T) {
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// As on a disk whose syncs are slow: commits always queue behind a group.
	d.commits.groupAbove = 0
	ctx := t.Context()
	var mu sync.Mutex
	var sizes []int
	d.commits.testHookGroup = func(n int) {
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
	}

	// Alone: each put is a group of one, synced by the caller before it returns,
	// with two syncs (its file, its directory).
	for i := range 3 {
		if _, err := d.PutContent(ctx, "/lone/o"+strconv.Itoa(i), []byte("x")); err != nil {
			t.Fatal(err)
		}
		if g, s := d.commits.groups.Load(), d.commits.syncs.Load(); g != int64(i+1) || s != int64(2*(i+1)) {
			t.Fatalf("after %d lone puts: %d groups, %d syncs; want %d and %d", i+1, g, s, i+1, 2*(i+1))
		}
	}
	if !slices.Equal(sizes, []int{1, 1, 1}) {
		t.Fatalf("lone puts were synced in groups of %v, want [1 1 1]", sizes)
	}

	// Together: the first put's group is held while k more arrive; they must all
	// go in the next group. One of them cannot be written (its path lies below an
	// object) and fails alone.
	if _, err := d.PutContent(ctx, "/file", []byte("an object")); err != nil {
		t.Fatal(err)
	}
	const k = 8
	first := "/objs/first"
	paths := distinctStripes("/objs", k-1, first)
	paths = append(paths, "/file/below")
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	mu.Lock()
	sizes = nil
	mu.Unlock()
	d.commits.testHookGroup = func(n int) {
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
		once.Do(func() { close(held); <-release })
	}
	groups0, syncs0 := d.commits.groups.Load(), d.commits.syncs.Load()
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := d.PutContent(ctx, first, []byte("first")); err != nil {
			t.Error(err)
		}
	})
	<-held
	errs := make([]error, len(paths))
	for i, p := range paths {
		wg.Go(func() { _, errs[i] = d.PutContent(ctx, p, []byte(p)) })
	}
	for d.commits.queued() < k {
		runtimeGosched()
	}
	close(release)
	wg.Wait()

	if !slices.Equal(sizes, []int{1, k}) {
		t.Fatalf("groups of %v, want [1 %d]: the queued puts did not share a group", sizes, k)
	}
	// First group: a file and a directory. Second: one syncfs for its k files
	// (the failed put's too: its rename fails only after), one fsync for the
	// one directory its renames touched.
	if g, s := d.commits.groups.Load()-groups0, d.commits.syncs.Load()-syncs0; g != 2 || s != 2+2 {
		t.Fatalf("%d puts made %d groups and %d syncs, want 2 and 4", k+1, g, s)
	}
	for i, p := range paths {
		wantFail := p == "/file/below"
		if wantFail != (errs[i] != nil) || wantFail && !errors.Is(errs[i], driver.ErrInvalidPath) {
			t.Errorf("put %s in a group: %v (want it to fail: %v, with ErrInvalidPath)", p, errs[i], wantFail)
		}
		if !wantFail {
			if got, _, err := d.GetContent(ctx, p); err != nil || string(got) != p {
				t.Errorf("%s after its group: %q, %v", p, got, err)
			}
		}
	}
}

// TestGroupCommitFastSyncs: where syncs are fast, a commit arriving while a
// group is being synced does not wait for it, and syncs by itself.
func TestGroupCommitFastSyncs(t *testing.T) {
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d.commits.groupAbove = time.Hour // every sync counts as fast
	ctx := t.Context()
	held, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	d.commits.testHookGroup = func(int) {
		if first.CompareAndSwap(false, true) {
			close(held)
			<-release
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := d.PutContent(ctx, "/objs/first", []byte("first")); err != nil {
			t.Error(err)
		}
	})
	<-held
	// The first put's group is held until this one is done: had it queued, it
	// would never be.
	paths := distinctStripes("/objs", 1, "/objs/first")
	if _, err := d.PutContent(ctx, paths[0], []byte("second")); err != nil {
		t.Fatal(err)
	}
	close(release)
	wg.Wait()
	if g := d.commits.groups.Load(); g != 2 {
		t.Fatalf("%d groups, want 2 of one commit each", g)
	}
}

// BenchmarkGroupCommit compares ways to make 2 KiB puts from 8 goroutines
// durable: each alone (no grouping), always grouped with one fdatasync per file
// and one fsync per directory, always grouped with two syncfs(2) per group,
// always grouped with syncfs for groups of two or more, and the default (that,
// where syncs are slow enough).
func BenchmarkGroupCommit(b *testing.B) {
	data := bytes.Repeat([]byte{'m'}, 2<<10)
	for _, mode := range []string{"alone", "fdatasync", "syncfs", "hybrid", "default"} {
		b.Run(mode, func(b *testing.B) {
			d, err := New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			d.commits.syncfsRoot = d.root
			if mode != "default" {
				d.commits.groupAbove = 0 // always group
			}
			switch mode {
			case "alone":
				d.commits.alone = true
				d.commits.syncfsFrom = 0
			case "fdatasync":
				d.commits.syncfsFrom = 0
			case "syncfs":
				d.commits.syncfsFrom = 1
			case "hybrid":
				d.commits.syncfsFrom = 2
			}
			var n sync.Mutex
			next := 0
			b.SetParallelism(4) // 8 goroutines on 2 CPUs
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				n.Lock()
				w := next
				next++
				n.Unlock()
				i := 0
				for pb.Next() {
					p := fmt.Sprintf("/repos/r%d/_manifests/sha256/m%d", w, i%64)
					if _, err := d.PutContent(b.Context(), p, data); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			b.ReportMetric(float64(d.commits.syncs.Load())/float64(b.N), "syncs/op")
		})
	}
}

func runtimeGosched() { runtime.Gosched() }
