package filesystem_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/filesystem"
	"github.com/signet-oss/signet/storage/driver/testsuite"
)

func newDriver(t testing.TB, root string) *filesystem.Driver {
	t.Helper()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSuite(t *testing.T) {
	testsuite.Run(t, func(t *testing.T) driver.Driver { return newDriver(t, t.TempDir()) })
}

// TestCASAcrossDrivers stands two Drivers on one root in for two processes: their
// in-process mutexes are separate, so only the flock keeps the counter exact.
func TestCASAcrossDrivers(t *testing.T) {
	root := t.TempDir()
	drivers := []*filesystem.Driver{newDriver(t, root), newDriver(t, root)}
	const path, perDriver = "/tags/latest", 8
	if _, err := drivers[0].PutContent(t.Context(), path, []byte("0")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 2 * perDriver {
		d := drivers[i%2]
		wg.Go(func() {
			for {
				data, v, err := d.GetContent(t.Context(), path)
				if err != nil {
					t.Error(err)
					return
				}
				n, _ := strconv.Atoi(string(data))
				_, err = d.PutContentIf(t.Context(), path, []byte(strconv.Itoa(n+1)), driver.Condition{IfMatch: v})
				if err == nil {
					return
				}
				if !errors.Is(err, driver.ErrPreconditionFailed) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	data, _, err := drivers[1].GetContent(t.Context(), path)
	if err != nil || string(data) != strconv.Itoa(2*perDriver) {
		t.Fatalf("counter = %q, %v; want %d", data, err, 2*perDriver)
	}

	// And put-if-absent has one winner across the two.
	wins := make(chan int, 2*perDriver)
	for i := range 2 * perDriver {
		d := drivers[i%2]
		wg.Go(func() {
			_, err := d.PutContentIf(t.Context(), "/tags/new", []byte(strconv.Itoa(i)), driver.Condition{IfAbsent: true})
			if err == nil {
				wins <- i
			} else if !errors.Is(err, driver.ErrPreconditionFailed) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(wins)
	if n := len(wins); n != 1 {
		t.Fatalf("%d put-if-absent winners across two drivers, want 1", n)
	}
}

// TestPrivateDirsHidden checks that the temporary and lock directories, which
// every write uses, never appear as objects or directories.
func TestPrivateDirsHidden(t *testing.T) {
	root := t.TempDir()
	d := newDriver(t, root)
	ctx := t.Context()
	if _, err := d.PutContentIf(ctx, "/a/obj", []byte("x"), driver.Condition{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	// Objects named like the usual private directories are ordinary objects.
	if _, err := d.PutContent(ctx, "/_tmp", []byte("y")); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"+tmp", "+locks"} {
		if fi, err := os.Stat(filepath.Join(root, dir)); err != nil || !fi.IsDir() {
			t.Fatalf("private directory %s missing: %v", dir, err)
		}
	}
	got, err := d.List(ctx, "/")
	if err != nil || !slices.Equal(got, []string{"/_tmp", "/a"}) {
		t.Fatalf("List(/) = %q, %v; want [/_tmp /a]", got, err)
	}
	var walked []string
	if err := d.Walk(ctx, "/", func(fi driver.FileInfo) error {
		walked = append(walked, fi.Path)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(walked, []string{"/_tmp", "/a", "/a/obj"}) {
		t.Fatalf("Walk(/) visited %q, want [/_tmp /a /a/obj]", walked)
	}
	for _, p := range []string{"/a", "/_tmp"} {
		if err := d.Delete(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := d.List(ctx, "/"); err != nil || len(got) != 0 {
		t.Fatalf("List(/) of an emptied store = %q, %v; want nothing", got, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "+tmp")); len(entries) != 0 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

// TestStaleTempsRemoved checks that New removes temporary files a killed process
// left more than a day ago, and keeps recent ones (possibly still being written).
func TestStaleTempsRemoved(t *testing.T) {
	root := t.TempDir()
	newDriver(t, root)
	stale := filepath.Join(root, "+tmp", "put-stale")
	fresh := filepath.Join(root, "+tmp", "put-fresh")
	for _, f := range []string{stale, fresh} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-25 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	newDriver(t, root)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file survived New: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("recent temporary file removed by New: %v", err)
	}
}

// TestPrefixRuleRejected pins this driver's choice: a write that would put an
// object at a prefix of another object's path fails with ErrInvalidPath.
func TestPrefixRuleRejected(t *testing.T) {
	d := newDriver(t, t.TempDir())
	ctx := t.Context()
	if _, err := d.PutContent(ctx, "/a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/a", "/a/b/c"} {
		if _, err := d.PutContent(ctx, p, []byte("y")); !errors.Is(err, driver.ErrInvalidPath) {
			t.Errorf("PutContent(%s) error = %v, want ErrInvalidPath", p, err)
		}
	}
}

// TestReaderIsFile checks that Reader hands out the *os.File, which lets an HTTP
// server use sendfile.
func TestReaderIsFile(t *testing.T) {
	d := newDriver(t, t.TempDir())
	if _, err := d.PutContent(t.Context(), "/blob", []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	r, err := d.Reader(t.Context(), "/blob", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, ok := r.(*os.File)
	if !ok {
		t.Fatalf("Reader returned %T, want *os.File", r)
	}
	if off, err := f.Seek(0, 1); err != nil || off != 3 {
		t.Fatalf("file offset = %d, %v; want 3", off, err)
	}
}

// TestConcurrentPruneAndWrite races writers into a directory against deletes
// that prune it; no write may fail because its directory vanished.
func TestConcurrentPruneAndWrite(t *testing.T) {
	d := newDriver(t, t.TempDir())
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 50 {
				p := "/repo/x/y/obj" + strconv.Itoa(i)
				if j%2 == 0 {
					if _, err := d.PutContent(ctx, p, []byte("x")); err != nil {
						t.Errorf("PutContent: %v", err)
						return
					}
				} else {
					w, err := d.Writer(ctx, p+"-upload", false, 0)
					if err != nil {
						t.Errorf("Writer: %v", err)
						return
					}
					w.Cancel(ctx)
				}
				if err := d.Delete(ctx, p); err != nil && !errors.Is(err, driver.ErrNotFound) {
					t.Errorf("Delete: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestObjectsAreReadableByTheOwnerOnly(t *testing.T) {
	root := t.TempDir()
	d := newDriver(t, root)
	ctx := t.Context()
	if _, err := d.PutContent(ctx, "/secrets/key.pem", []byte("private")); err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(ctx, "/uploads/u1", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("data"))
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for _, p := range []string{"secrets/key.pem", "uploads/u1", "secrets", "uploads"} {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v: group or others may access it", p, perm)
		}
	}
}
