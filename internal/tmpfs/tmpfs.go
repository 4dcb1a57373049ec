// Package tmpfs gives tests a small filesystem of their own to fill up: a tmpfs
// mounted on a fresh directory, unmounted when the test ends. The tests that put
// the registry and trustd on a full disk run their data directories on one.
//
// Mounting needs root (the tests run as root, here and in CI). A test that cannot
// mount fails with the reason; it never skips.
package tmpfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// FillerName is the file Fill writes. Its "+" makes it a name no storage driver
// path can have, so the filesystem driver never lists it as an object.
const FillerName = "+filler"

// Mount mounts a tmpfs of size bytes on a fresh directory and returns the
// directory. Each call gets its own filesystem, so parallel tests never share
// free space.
func Mount(tb testing.TB, size int64) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "tmpfs")
	MountOn(tb, dir, size)
	return dir
}

// MountOn mounts a tmpfs of size bytes on dir, creating dir, as
// `mount -t tmpfs -o size=SIZE tmpfs DIR` does. It is unmounted when tb ends,
// after the cleanups registered later (so a process started on it afterwards is
// stopped first), and also when tb fails.
func MountOn(tb testing.TB, dir string, size int64) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatalf("tmpfs: %v", err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		tb.Fatalf("tmpfs: mount -t tmpfs -o size=%d tmpfs %s: %v (the disk-full tests mount filesystems: run them as root)", size, dir, err)
	}
	tb.Cleanup(func() {
		if err := unmount(dir); err != nil {
			tb.Errorf("tmpfs: %v", err)
		}
	})
}

// unmount unmounts dir; if a process still holds files there, it detaches the
// mount, which the kernel frees when the last one is closed.
func unmount(dir string) error {
	err := unix.Unmount(dir, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(dir, unix.MNT_DETACH)
	}
	if err != nil {
		return fmt.Errorf("umount %s: %w", dir, err)
	}
	return nil
}

// Free returns how many bytes can still be written on the filesystem of dir.
func Free(tb testing.TB, dir string) int64 {
	tb.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		tb.Fatalf("tmpfs: statfs %s: %v", dir, err)
	}
	return int64(st.Bavail) * st.Bsize
}

// Fill writes dir/FillerName until the filesystem is full, then gives back leave
// bytes (rounded up to whole pages) by shortening it, and returns its path. Remove
// the file to free the space again. A filler already there grows.
func Fill(tb testing.TB, dir string, leave int64) string {
	tb.Helper()
	p := filepath.Join(dir, FillerName)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatalf("tmpfs: %v", err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		_, err := f.Write(buf)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			tb.Fatalf("tmpfs: filling %s: %v", dir, err)
		}
	}
	fi, err := f.Stat()
	if err != nil {
		tb.Fatalf("tmpfs: %v", err)
	}
	page := int64(os.Getpagesize())
	if leave = (leave + page - 1) / page * page; leave > 0 {
		used := (fi.Size() + page - 1) / page * page // a partial last page holds a whole one
		if err := f.Truncate(max(used-leave, 0)); err != nil {
			tb.Fatalf("tmpfs: %v", err)
		}
	}
	if got := Free(tb, dir); got < leave {
		tb.Fatalf("tmpfs: filled %s leaving %d bytes free, want %d", dir, got, leave)
	}
	return p
}

// TrustGraphFiles reads trustd's committed TUF state under root, the data
// directory of its filesystem driver: head.json (the one commit point) and every
// version in meta/, by path. What a refused publish must leave byte for byte.
func TrustGraphFiles(tb testing.TB, root string) map[string][]byte {
	tb.Helper()
	dir := filepath.Join(root, "trustd", "v1", "tuf")
	out := map[string][]byte{}
	for _, sub := range []string{"head.json", "meta"} {
		err := filepath.WalkDir(filepath.Join(dir, sub), func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			out[strings.TrimPrefix(p, dir)] = b
			return err
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	if len(out) < 2 {
		tb.Fatalf("no TUF metadata under %s", dir)
	}
	return out
}

// SameFiles fails tb for each file of before (as TrustGraphFiles reads them)
// that after lacks or holds other bytes of, and for each file after adds.
func SameFiles(tb testing.TB, what string, before, after map[string][]byte) {
	tb.Helper()
	for p, b := range before {
		if a, ok := after[p]; !ok || string(a) != string(b) {
			tb.Errorf("%s: %s changed or went away", what, p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			tb.Errorf("%s: %s appeared", what, p)
		}
	}
}
