package filesystem_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/signet-oss/signet/internal/tmpfs"
	"github.com/signet-oss/signet/storage/driver"
)

// checkNoSpace checks that err reports a full filesystem under root: ErrNoSpace,
// the errno, and where.
func checkNoSpace(t *testing.T, what string, err error, root string) {
	t.Helper()
	var ns *driver.NoSpaceError
	switch {
	case !errors.Is(err, driver.ErrNoSpace):
		t.Errorf("%s on a full filesystem: %v; want driver.ErrNoSpace", what, err)
	case !errors.Is(err, syscall.ENOSPC):
		t.Errorf("%s on a full filesystem: %v; want it to wrap ENOSPC", what, err)
	case !errors.As(err, &ns) || ns.Where != root:
		t.Errorf("%s on a full filesystem: %v; want a *driver.NoSpaceError naming %s", what, err, root)
	}
}

// TestFullFilesystem: on a full filesystem every write fails with ErrNoSpace
// naming the root, leaves the object it would replace as it was and no
// temporary file behind, and succeeds again once space is freed.
func TestFullFilesystem(t *testing.T) {
	root := tmpfs.Mount(t, 1<<20)
	d := newDriver(t, root)
	ctx := t.Context()
	old := []byte("the object before the disk filled up")
	if _, err := d.PutContent(ctx, "/objects/a", old); err != nil {
		t.Fatal(err)
	}
	_, oldVersion, err := d.GetContent(ctx, "/objects/a")
	if err != nil {
		t.Fatal(err)
	}
	w, err := d.Writer(ctx, "/uploads/u", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	filler := tmpfs.Fill(t, root, 0)
	free := tmpfs.Free(t, root)
	big := bytes.Repeat([]byte("x"), 64<<10)

	_, err = d.PutContent(ctx, "/objects/a", big)
	checkNoSpace(t, "PutContent over an object", err, root)
	_, err = d.PutContent(ctx, "/objects/new/b", big)
	checkNoSpace(t, "PutContent of a new object", err, root)
	_, err = d.PutContentIf(ctx, "/objects/a", big, driver.Condition{IfMatch: oldVersion})
	checkNoSpace(t, "PutContentIf", err, root)
	_, err = w.Write(big)
	checkNoSpace(t, "Writer.Write", err, root)
	w.Cancel(ctx)

	if got, _, err := d.GetContent(ctx, "/objects/a"); err != nil || !bytes.Equal(got, old) {
		t.Errorf("the object after the refused writes: %q, %v; want it unchanged", got, err)
	}
	if _, err := d.Stat(ctx, "/objects/new/b"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("Stat of the object whose write was refused: %v; want ErrNotFound", err)
	}
	if left, _ := os.ReadDir(filepath.Join(root, "+tmp")); len(left) > 0 {
		t.Errorf("temporary files left behind: %d", len(left))
	}
	if got := tmpfs.Free(t, root); got != free {
		t.Errorf("%d bytes free after the refused writes, %d before", got, free)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := d.PutContentIf(ctx, "/objects/a", big, driver.Condition{IfMatch: oldVersion}); err != nil {
		t.Errorf("PutContentIf once space is freed: %v", err)
	}
	w, err = d.Writer(ctx, "/uploads/u", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(big); err != nil {
		t.Errorf("Writer.Write once space is freed: %v", err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Errorf("Commit once space is freed: %v", err)
	}
}
