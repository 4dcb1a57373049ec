package filesystem

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/signet-oss/signet/storage/driver"
)

// GetContent returns the whole object at path and the hex sha256 of its content.
// It is the manifest GET's only storage call, so it reads with a single buffer
// sized from the file.
func (d *Driver) GetContent(ctx context.Context, path string) ([]byte, string, error) {
	full, err := d.objectPath(path)
	if err != nil {
		return nil, "", err
	}
	data, err := readFile(full)
	if err != nil {
		return nil, "", readErr("get", path, err)
	}
	return data, version(data), nil
}

// PutContent atomically replaces the object at path with data and returns its
// version; see the package comment for how.
func (d *Driver) PutContent(ctx context.Context, path string, data []byte) (string, error) {
	return d.PutContentIf(ctx, path, data, driver.Condition{})
}

// PutContentIf is PutContent guarded by cond. Under the path's lock it re-reads the
// current object, checks cond against it, and writes only if cond holds. A cond
// with both IfAbsent and IfMatch can never hold (the object would have to be both
// missing and present) and always fails with ErrPreconditionFailed.
func (d *Driver) PutContentIf(ctx context.Context, path string, data []byte, cond driver.Condition) (_ string, err error) {
	defer func() { err = d.spaceErr(err) }()
	full, err := d.objectPath(path)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	unlock, err := d.lock(path)
	if err != nil {
		return "", err
	}
	defer unlock()
	if len(data) == 0 && cond.IfMatch == "" {
		// An empty object (a blob link) is made whole by creating it: no
		// temporary file, no data to sync, only the directory entry.
		done, err := d.createEmpty(full, path, cond.IfAbsent)
		if err != nil {
			return "", err
		}
		if done {
			return version(data), nil
		}
	}
	if cond.IfAbsent || cond.IfMatch != "" {
		if err := checkCondition(full, path, cond); err != nil {
			return "", err
		}
	}
	if err := d.replace(full, path, data); err != nil {
		return "", err
	}
	return version(data), nil
}

// createEmpty creates full as an empty file and syncs its directory. It reports
// false, with no error, when an object is already there and the caller must
// replace it (an unconditional put over a non-empty object); an empty one already
// there is done, and with ifAbsent any existing one fails the condition. The
// caller holds the path's lock.
func (d *Driver) createEmpty(full, path string, ifAbsent bool) (bool, error) {
	for range maxAttempts {
		fd, err := openRetry(full, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, fileMode)
		switch {
		case err == nil:
			syscall.Close(fd)
			if err := d.commits.do(&commit{fd: -1, dirs: []string{filepath.Dir(full)}}); err != nil {
				return false, fmt.Errorf("filesystem: put %s: %w", path, err)
			}
			return true, nil
		case errors.Is(err, syscall.EEXIST):
			fi, serr := os.Lstat(full)
			if serr != nil {
				continue // deleted meanwhile: create again
			}
			if fi.IsDir() {
				return false, invalidPath(path)
			}
			if ifAbsent {
				return false, fmt.Errorf("%w: %s exists", driver.ErrPreconditionFailed, path)
			}
			return fi.Size() == 0, nil
		case errors.Is(err, syscall.ENOENT):
			if err := d.mkdirs(filepath.Dir(full)); err != nil && !errors.Is(err, syscall.ENOENT) {
				return false, writeErr("put", path, err)
			}
		default:
			return false, writeErr("put", path, err)
		}
	}
	return false, writeErr("put", path, syscall.ENOENT)
}

// checkCondition reads the object at full and reports ErrPreconditionFailed if
// cond does not hold for it. The caller holds the path's lock.
func checkCondition(full, path string, cond driver.Condition) error {
	current, err := readFile(full)
	exists := err == nil
	if err != nil && !isNotExist(err) {
		if errors.Is(err, syscall.EISDIR) {
			return invalidPath(path) // a directory: no object may be written there
		}
		return fmt.Errorf("filesystem: put %s: read current: %w", path, err)
	}
	switch {
	case cond.IfAbsent && exists:
		return fmt.Errorf("%w: %s exists", driver.ErrPreconditionFailed, path)
	case cond.IfMatch != "" && !exists:
		return fmt.Errorf("%w: %s does not exist", driver.ErrPreconditionFailed, path)
	case cond.IfMatch != "" && version(current) != cond.IfMatch:
		return fmt.Errorf("%w: %s has another version", driver.ErrPreconditionFailed, path)
	}
	return nil
}

// replace writes data to a temporary file and commits it in a group (see
// group.go): once its data is synced it is renamed over full, then full's
// directory is synced. The caller holds the path's lock.
func (d *Driver) replace(full, path string, data []byte) error {
	fd, tmp, err := d.writeTemp(data)
	if err != nil {
		return fmt.Errorf("filesystem: put %s: %w", path, err)
	}
	renamed := false
	err = d.commits.do(&commit{
		fd: fd,
		rename: func() error {
			if err := d.renameInto(tmp, full); err != nil {
				return writeErr("put", path, err)
			}
			renamed = true
			return nil
		},
		dirs: []string{filepath.Dir(full)},
	})
	syscall.Close(fd)
	if !renamed {
		os.Remove(tmp)
	}
	if err != nil {
		if errors.Is(err, driver.ErrInvalidPath) {
			return err
		}
		return fmt.Errorf("filesystem: put %s: %w", path, err)
	}
	return nil
}

// writeTemp writes data to a new file in the temporary directory and returns it
// open, with its name; the caller syncs, closes and renames or removes it.
func (d *Driver) writeTemp(data []byte) (int, string, error) {
	for {
		name := d.tmpDir + "/put-" + strconv.FormatUint(rand.Uint64(), 36)
		const flags = syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL | syscall.O_CLOEXEC
		fd, err := openRetry(name, flags, fileMode)
		if err == syscall.EEXIST {
			continue // a 1 in 2^64 collision
		}
		if err == syscall.ENOENT {
			// The temporary directory was removed under us (an operator cleaning
			// up): recreate it once.
			if err = os.MkdirAll(d.tmpDir, dirMode); err == nil {
				fd, err = openRetry(name, flags, fileMode)
			}
		}
		if err != nil {
			return -1, "", &fs.PathError{Op: "open", Path: name, Err: err}
		}
		if err := writeAll(fd, data); err != nil {
			syscall.Close(fd)
			os.Remove(name)
			return -1, "", &fs.PathError{Op: "write", Path: name, Err: err}
		}
		return fd, name, nil
	}
}

// writeAll writes all of data to fd, retrying on EINTR and short writes.
func writeAll(fd int, data []byte) error {
	for len(data) > 0 {
		n, err := syscall.Write(fd, data)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// renameInto renames the file src to dst, creating dst's missing parent
// directories. A concurrent Delete may prune a parent between its creation and
// the rename, so it retries.
func (d *Driver) renameInto(src, dst string) error {
	var err error
	for range maxAttempts {
		err = syscall.Rename(src, dst)
		if !errors.Is(err, syscall.ENOENT) {
			return err
		}
		if _, serr := os.Lstat(src); serr != nil {
			return serr // the source vanished: nothing to retry
		}
		if err = d.mkdirs(filepath.Dir(dst)); err != nil && !errors.Is(err, syscall.ENOENT) {
			return err
		}
	}
	return err
}

// mkdirs creates dir and its missing parents (not above the root), syncing the
// parent of each directory it creates so that the new entries are durable. A
// directory that exists already is fine; a file in the way is left for the
// caller's next call to report (ENOTDIR).
func (d *Driver) mkdirs(dir string) error {
	if len(dir) <= len(d.root) {
		return nil
	}
	err := syscall.Mkdir(dir, dirMode)
	if errors.Is(err, syscall.ENOENT) {
		if err := d.mkdirs(filepath.Dir(dir)); err != nil {
			return err
		}
		err = syscall.Mkdir(dir, dirMode)
	}
	switch {
	case err == nil:
		return syncDir(filepath.Dir(dir))
	case errors.Is(err, syscall.EEXIST):
		return nil
	default:
		return err
	}
}

// syncDir fsyncs the directory dir, making the entries created in or renamed into
// it durable. Callers ignore ENOENT after a rename: the directory can only be
// gone if a concurrent Delete removed the new entry, leaving nothing to sync.
func syncDir(dir string) error {
	fd, err := openRetry(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	for {
		err = syscall.Fsync(fd)
		if err != syscall.EINTR {
			break
		}
	}
	syscall.Close(fd)
	if err != nil {
		return &fs.PathError{Op: "fsync", Path: dir, Err: err}
	}
	return nil
}

// openRetry is open(2), retried on EINTR.
func openRetry(name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := syscall.Open(name, flags, mode)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// readFile returns the content of the regular file name. It calls open, fstat,
// read and close directly: os.ReadFile's *os.File costs several allocations and a
// poller registration attempt per call, on the hot path of every manifest GET.
// A directory yields EISDIR.
func readFile(name string) ([]byte, error) {
	fd, err := openRetry(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return nil, syscall.EISDIR
	}
	// Read exactly the size fstat reported, saving the read that would return EOF.
	// Objects are replaced by rename, never changed in place, so the size is
	// final; only an upload file may grow, and then this returns the prefix it had
	// at fstat, as a read a moment earlier would have.
	buf := make([]byte, st.Size)
	for off := 0; off < len(buf); {
		n, err := syscall.Read(fd, buf[off:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return buf[:off], nil // truncated since fstat (a resumed upload)
		}
		off += n
	}
	return buf, nil
}

// lock takes the lock of path's stripe: this Driver's mutex, then an exclusive
// flock on the stripe's lock file, which excludes other Drivers and processes.
// The stripe's lock file stays open once opened (flock belongs to the open file,
// and the mutex keeps this Driver's goroutines apart), so a lock costs two flock
// calls, not an open and a close. The returned function releases both.
func (d *Driver) lock(path string) (unlock func(), err error) {
	i := stripeOf(path)
	d.mu[i].Lock()
	fd := d.lockFDs[i]
	if fd <= 0 {
		fd, err = openRetry(d.lockNames[i], syscall.O_RDWR|syscall.O_CREAT|syscall.O_CLOEXEC, fileMode)
		if errors.Is(err, syscall.ENOENT) {
			// The lock directory was removed under us; recreate it.
			if err = os.MkdirAll(d.lockDir, dirMode); err == nil {
				fd, err = openRetry(d.lockNames[i], syscall.O_RDWR|syscall.O_CREAT|syscall.O_CLOEXEC, fileMode)
			}
		}
		if err != nil {
			d.mu[i].Unlock()
			return nil, fmt.Errorf("filesystem: lock %s: %w", path, err)
		}
		d.lockFDs[i] = fd
	}
	for {
		err = syscall.Flock(fd, syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		d.mu[i].Unlock()
		return nil, fmt.Errorf("filesystem: lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(fd, syscall.LOCK_UN)
		d.mu[i].Unlock()
	}, nil
}

// stripeOf returns the lock stripe of path: the first byte of its sha256.
func stripeOf(path string) int {
	sum := sha256.Sum256([]byte(path))
	return int(sum[0])
}
