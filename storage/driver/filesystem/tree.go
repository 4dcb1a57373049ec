package filesystem

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/signet-oss/signet/storage/driver"
)

// Stat describes the object or directory at path; the root always exists. A
// directory's Size is 0.
func (d *Driver) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	if !driver.ValidPath(path) {
		return driver.FileInfo{}, invalidPath(path)
	}
	fi, err := os.Stat(d.full(path))
	if err != nil {
		return driver.FileInfo{}, readErr("stat", path, err)
	}
	return fileInfo(path, fi), nil
}

func fileInfo(path string, fi fs.FileInfo) driver.FileInfo {
	info := driver.FileInfo{Path: path, ModTime: fi.ModTime(), IsDir: fi.IsDir()}
	if !info.IsDir {
		info.Size = fi.Size()
	}
	return info
}

// List returns the full paths of the directory's children in lexical order,
// hiding the private directories. ErrNotFound if path is not a directory.
func (d *Driver) List(ctx context.Context, path string) ([]string, error) {
	if !driver.ValidPath(path) {
		return nil, invalidPath(path)
	}
	entries, err := os.ReadDir(d.full(path)) // sorted by name
	if err != nil {
		return nil, readErr("list", path, err)
	}
	children := make([]string, 0, len(entries))
	for _, e := range entries {
		if validName(e.Name()) {
			children = append(children, child(path, e.Name()))
		}
	}
	return children, nil
}

// Move renames the object at src to dst under dst's lock, creating dst's
// directories, then syncs dst's directory and prunes src's directories left empty.
// A src that is a directory is not an object: ErrNotFound.
func (d *Driver) Move(ctx context.Context, src, dst string) (err error) {
	defer func() { err = d.spaceErr(err) }()
	srcFull, err := d.objectPath(src)
	if err != nil {
		return err
	}
	dstFull, err := d.objectPath(dst)
	if err != nil {
		return err
	}
	unlock, err := d.lock(dst)
	if err != nil {
		return err
	}
	defer unlock()
	if fi, err := os.Stat(srcFull); err != nil || fi.IsDir() {
		if err == nil || isNotExist(err) {
			return notFound(src)
		}
		return fmt.Errorf("filesystem: move %s: %w", src, err)
	}
	if err := d.renameInto(srcFull, dstFull); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return notFound(src) // removed since the Stat
		}
		return writeErr("move to", dst, err)
	}
	if err := d.commits.do(&commit{fd: -1, dirs: []string{filepath.Dir(dstFull)}}); err != nil {
		return fmt.Errorf("filesystem: move %s: %w", dst, err)
	}
	d.prune(filepath.Dir(srcFull))
	return nil
}

// Delete removes the object at path (under its lock) or the directory tree at
// path, then prunes the parent directories left empty, up to the root.
func (d *Driver) Delete(ctx context.Context, path string) error {
	full, err := d.objectPath(path)
	if err != nil {
		return err
	}
	unlock, err := d.lock(path)
	if err != nil {
		return err
	}
	err = syscall.Unlink(full)
	unlock()
	if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EPERM) {
		// Linux reports a directory with EISDIR, other unixes with EPERM.
		if fi, serr := os.Lstat(full); serr == nil && fi.IsDir() {
			err = os.RemoveAll(full)
		}
	}
	if err != nil {
		if isNotExist(err) {
			return notFound(path)
		}
		return fmt.Errorf("filesystem: delete %s: %w", path, err)
	}
	d.prune(filepath.Dir(full))
	return nil
}

// prune removes dir and its parents while they are empty, stopping below the
// root. A writer racing to create a file in a pruned directory recreates it
// (see renameInto and Writer).
func (d *Driver) prune(dir string) {
	for len(dir) > len(d.root) && dir != "/" {
		if syscall.Rmdir(dir) != nil {
			return // not empty, or gone already
		}
		dir = filepath.Dir(dir)
	}
}

// Walk visits everything below the directory at path, depth first, each
// directory's entries in lexical order. ErrNotFound if path is not a directory.
// ErrSkipDir returned for an object has no effect (it has no contents to skip).
// Entries deleted during the walk are skipped.
func (d *Driver) Walk(ctx context.Context, path string, fn func(driver.FileInfo) error) error {
	if !driver.ValidPath(path) {
		return invalidPath(path)
	}
	full := d.full(path)
	fi, err := os.Stat(full)
	if err != nil {
		return readErr("walk", path, err)
	}
	if !fi.IsDir() {
		return notFound(path)
	}
	return d.walk(ctx, path, full, fn)
}

func (d *Driver) walk(ctx context.Context, dir, full string, fn func(driver.FileInfo) error) error {
	entries, err := os.ReadDir(full)
	if err != nil {
		if isNotExist(err) {
			return nil // deleted during the walk
		}
		return fmt.Errorf("filesystem: walk %s: %w", dir, err)
	}
	for _, e := range entries {
		if !validName(e.Name()) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			if isNotExist(err) {
				continue
			}
			return fmt.Errorf("filesystem: walk %s: %w", dir, err)
		}
		info := fileInfo(child(dir, e.Name()), fi)
		err = fn(info)
		if errors.Is(err, driver.ErrSkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if info.IsDir {
			if err := d.walk(ctx, info.Path, full+"/"+e.Name(), fn); err != nil {
				return err
			}
		}
	}
	return nil
}
