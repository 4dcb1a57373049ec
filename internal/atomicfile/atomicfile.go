// Package atomicfile writes a file so that a reader, or the same path after a
// crash, sees either its old content whole or its new content whole.
//
// Each write goes to a temporary file in the target's own directory (a rename
// is atomic only within one file system), which is written, fsynced and given
// its mode before it is renamed (or, for Create, linked) onto the target. The
// directory is then fsynced as well: without that the rename itself may not
// survive a crash, and the old file, or none, comes back, as the registry's
// filesystem storage driver also knows. On any failure the temporary file is
// removed and the target is left as it was.
//
// The parent directory must exist: creating it, and with which mode and owner,
// is the caller's decision.
package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Write replaces path with data, whose mode is exactly perm (the umask does not
// apply: a 0600 secret is never briefly wider).
func Write(path string, data []byte, perm fs.FileMode) error {
	return put(path, perm, writeBytes(data), os.Rename)
}

// WriteFunc replaces path, mode perm, with what write writes. Nothing replaces
// path unless write returns nil, so write may stream from a reader it checks as
// it goes.
func WriteFunc(path string, perm fs.FileMode, write func(io.Writer) error) error {
	return put(path, perm, write, os.Rename)
}

// Create writes a new file at path, mode perm, holding data. If path exists
// already it fails with an error matching fs.ErrExist and leaves it alone.
func Create(path string, data []byte, perm fs.FileMode) error {
	return put(path, perm, writeBytes(data), os.Link)
}

func writeBytes(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

// put writes a temporary file beside path and moves it there with place.
func put(path string, perm fs.FileMode, write func(io.Writer) error, place func(tmp, path string) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // on failure; gone already on success
	err = tmp.Chmod(perm)
	if err == nil {
		err = write(tmp)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := place(tmp.Name(), path); err != nil {
		return err
	}
	// After a link the temporary name is still there: drop it before the sync,
	// so that the sync makes its removal durable too.
	if err := os.Remove(tmp.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(dir)
}

// syncDir is SyncDir; the tests watch it.
var syncDir = SyncDir

// SyncDir fsyncs the directory dir, making the entries created in, renamed into
// or removed from it durable. A file system that cannot sync a directory at all
// (EINVAL or ENOTSUP, as some network and FUSE file systems answer) is not an
// error: there is nothing more a caller could do.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}
