// Package filesystem is the storage driver that keeps every object as a plain file
// under one root directory: the object at "/a/b" is the file <root>/a/b, and a
// directory exists exactly while objects exist below it (deleting the last object
// below a directory prunes it).
//
// Invariants:
//
//   - Whole-object writes (PutContent, PutContentIf) go to a temporary file in the
//     private directory <root>/+tmp, are synced, then renamed over the target, and
//     the target's directory is synced: readers see the old file or the new one,
//     and the object is durable when the call returns. Concurrent writes share
//     these syncs where syncs are slow (group commit, see group.go).
//   - Writes that replace an object (PutContent, PutContentIf, Move onto dst,
//     Delete of an object) hold the path's lock: an in-process mutex stripe plus an
//     flock on <root>/+locks/<first byte of sha256(path) in hex>, the same stripe
//     for both. That makes PutContentIf a compare-and-swap across goroutines and
//     across processes sharing the root. Writer and whole-tree Delete do not lock;
//     callers use them only in upload areas, where nothing compares and swaps.
//   - The private directories' names start with "+", which no valid driver path
//     component contains, so they can never collide with an object, and List and
//     Walk hide every entry whose name is not a valid component.
//   - The driver rejects, with driver.ErrInvalidPath, a write at a path that is a
//     directory or lies below an object (a filesystem cannot hold both).
//   - A write that finds the filesystem full or over quota fails with a
//     *driver.NoSpaceError (driver.ErrNoSpace) naming the root. A whole-object
//     write removes its temporary file first, so the old object stays and no
//     space is held; a Writer's partial bytes stay in the upload area for its
//     caller to cancel or truncate.
//
// The driver needs flock(2), so it runs on unix systems only.
package filesystem

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/signet-oss/signet/storage/driver"
)

const (
	// tmpDirName holds temporary files of whole-object writes, on the same
	// filesystem as the objects so that rename is atomic.
	tmpDirName = "+tmp"
	// lockDirName holds the lock files of the path lock stripes.
	lockDirName = "+locks"
	// staleTmpAge is how old a temporary file must be for New to remove it: a
	// leftover of a process killed mid-write, never one still being written.
	staleTmpAge = 24 * time.Hour
	// stripes is the number of path lock stripes (one per value of the first byte
	// of sha256(path)).
	stripes = 256
	// maxAttempts bounds the retries of a write whose parent directory a
	// concurrent Delete keeps pruning.
	maxAttempts = 32
	// syncfsFrom is how many files or directories a group commit syncs with one
	// syncfs(2) rather than one call each (see group.go).
	syncfsFrom = 2
	// File and directory modes, before the umask. Only the server's own user
	// may read what it stores: trustd keeps private keys and secrets on its
	// driver, the registry its upload-session key.
	fileMode = 0o600
	dirMode  = 0o700
)

// Driver is the filesystem driver. Create it with New; the zero value is not usable.
// All methods are safe for concurrent use, and several Drivers (in one process or
// in several) may share a root.
type Driver struct {
	root    string // absolute and cleaned, without a trailing slash ("" for "/")
	tmpDir  string
	lockDir string
	// lockNames[i] is the lock file of stripe i, built once so locking allocates nothing.
	lockNames [stripes]string
	// lockFDs[i] is the open lock file of stripe i (0 until first used), guarded
	// by mu[i]. They stay open for the Driver's life: at most 256 descriptors.
	lockFDs [stripes]int
	// mu[i] serializes this Driver's holders of stripe i, so that at most one
	// goroutine per Driver waits on the stripe's flock.
	mu [stripes]sync.Mutex
	// commits groups the syncs of concurrent writes (see group.go).
	commits committer
}

var _ driver.Driver = (*Driver)(nil)

// New returns a driver rooted at root, creating root and its private directories
// if needed and removing temporary files older than a day (left by killed
// processes).
func New(root string) (*Driver, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("filesystem: root %q: %w", root, err)
	}
	d := &Driver{root: strings.TrimSuffix(abs, "/")}
	d.tmpDir = d.root + "/" + tmpDirName
	d.commits.syncfsRoot, d.commits.syncfsFrom = d.tmpDir, syncfsFrom
	d.commits.groupAbove = groupSlowerThan
	d.lockDir = d.root + "/" + lockDirName
	for _, dir := range []string{abs, d.tmpDir, d.lockDir} {
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return nil, fmt.Errorf("filesystem: root %q: %w", root, err)
		}
	}
	for i := range d.lockNames {
		d.lockNames[i] = d.lockDir + "/" + hex.EncodeToString([]byte{byte(i)})
	}
	if err := d.removeStaleTemps(time.Now().Add(-staleTmpAge)); err != nil {
		return nil, fmt.Errorf("filesystem: root %q: %w", root, err)
	}
	return d, nil
}

// removeStaleTemps removes the temporary files last modified before cutoff.
func (d *Driver) removeStaleTemps(cutoff time.Time) error {
	entries, err := os.ReadDir(d.tmpDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue // gone already, or possibly still being written
		}
		if err := os.Remove(filepath.Join(d.tmpDir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Name returns "filesystem".
func (d *Driver) Name() string { return "filesystem" }

// full returns the file path of a valid driver path.
func (d *Driver) full(path string) string {
	if path == "/" {
		if d.root == "" {
			return "/"
		}
		return d.root
	}
	return d.root + path
}

// objectPath validates a path that names an object (anything but the root) and
// returns its file path.
func (d *Driver) objectPath(path string) (string, error) {
	if path == "/" || !driver.ValidPath(path) {
		return "", invalidPath(path)
	}
	return d.root + path, nil
}

// validName reports whether name is a valid driver path component; entries of
// the root that are not (the private directories, stray files) are hidden.
func validName(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// child joins a driver directory path and a name.
func child(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

func notFound(path string) error    { return fmt.Errorf("%w: %s", driver.ErrNotFound, path) }
func invalidPath(path string) error { return fmt.Errorf("%w: %q", driver.ErrInvalidPath, path) }

// isNotExist reports whether err means that a file, or a directory on its path,
// does not exist: ENOENT, or ENOTDIR when a prefix of the path is a file.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// readErr maps the error of a read of path to the driver's errors.
func readErr(op, path string, err error) error {
	if isNotExist(err) || errors.Is(err, syscall.EISDIR) {
		return notFound(path)
	}
	return fmt.Errorf("filesystem: %s %s: %w", op, path, err)
}

// writeErr maps the error of a write at path to the driver's errors: a path below
// an object (ENOTDIR) or at a directory (EISDIR, EEXIST, ENOTEMPTY) breaks the
// prefix rule.
func writeErr(op, path string, err error) error {
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) ||
		errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
		return fmt.Errorf("%w: %s %s: below an object or at a directory", driver.ErrInvalidPath, op, path)
	}
	return fmt.Errorf("filesystem: %s %s: %w", op, path, err)
}

// spaceErr reports an error of a write that found the filesystem full or over
// quota (ENOSPC, EDQUOT) as a *driver.NoSpaceError naming the root, so that the
// servers tell a full disk (free space, retry) from a broken one; any other error
// is returned as it is. Write, fsync, create, mkdir and rename can each meet it.
func (d *Driver) spaceErr(err error) error {
	if err == nil || !(errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
		return err
	}
	where := d.root
	if where == "" {
		where = "/"
	}
	return &driver.NoSpaceError{Where: where, Err: err}
}

// version is the object version: the hex sha256 of its content.
func version(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
