package filesystem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/signet-oss/signet/storage/driver"
)

// Reader returns the object's *os.File itself, positioned at offset. (The
// registry copies it to the socket with a large buffer rather than sendfile,
// which measured slower here: see registry's statusRecorder.ReadFrom.)
// Reading at the end yields no bytes; past it, ErrInvalidOffset.
func (d *Driver) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	full, err := d.objectPath(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(full)
	if err != nil {
		return nil, readErr("read", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, readErr("read", path, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, notFound(path)
	}
	if offset < 0 || offset > fi.Size() {
		f.Close()
		return nil, fmt.Errorf("%w: %d in %s of %d bytes", driver.ErrInvalidOffset, offset, path, fi.Size())
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("filesystem: read %s: %w", path, err)
		}
	}
	return f, nil
}

// Writer opens the file at path for writing in place (callers use it only in
// upload areas, where nothing serves the file). With resume false it creates or
// truncates the file, creating its directories, and offset is ignored; with resume
// true it reopens the existing file (ErrNotFound if there is none), fails with
// ErrInvalidOffset if the file is shorter than offset, and truncates what lies past
// offset (bytes from a killed writer) before writing there.
func (d *Driver) Writer(ctx context.Context, path string, resume bool, offset int64) (_ driver.FileWriter, err error) {
	defer func() { err = d.spaceErr(err) }()
	full, err := d.objectPath(path)
	if err != nil {
		return nil, err
	}
	if resume {
		return d.resumeWriter(full, path, offset)
	}
	var f *os.File
	for range maxAttempts {
		f, err = os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileMode)
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
		// Missing directories, or pruned by a concurrent Delete: (re)create them.
		if err = d.mkdirs(filepath.Dir(full)); err != nil && !errors.Is(err, syscall.ENOENT) {
			break
		}
	}
	if err != nil {
		return nil, writeErr("write", path, err)
	}
	return &fileWriter{d: d, f: f, path: path, full: full, created: true}, nil
}

func (d *Driver) resumeWriter(full, path string, offset int64) (driver.FileWriter, error) {
	f, err := os.OpenFile(full, os.O_WRONLY, 0)
	if err != nil {
		return nil, readErr("resume", path, err)
	}
	fi, err := f.Stat()
	if err == nil && (offset < 0 || fi.Size() < offset) {
		f.Close()
		return nil, fmt.Errorf("%w: resume %s of %d bytes at %d", driver.ErrInvalidOffset, path, fi.Size(), offset)
	}
	dirty := false
	if err == nil && fi.Size() > offset {
		err = f.Truncate(offset)
		dirty = true
	}
	if err == nil {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("filesystem: resume %s: %w", path, err)
	}
	return &fileWriter{d: d, f: f, path: path, full: full, size: offset, kicked: offset, dirty: dirty}, nil
}

// fileWriter writes one upload file in place. It is not safe for concurrent use.
type fileWriter struct {
	d       *Driver
	f       *os.File
	path    string
	full    string
	size    int64
	created bool // Commit must also sync the directory entry
	dirty   bool // written or truncated since opened
	done    bool
	kicked  int64 // bytes already handed to writeback
}

// Write appends p with a single unbuffered write: callers pass large buffers.
func (w *fileWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("filesystem: write %s: %w", w.path, fs.ErrClosed)
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	w.dirty = true
	if err != nil {
		return n, w.d.spaceErr(fmt.Errorf("filesystem: write %s: %w", w.path, err))
	}
	if w.size-w.kicked >= writebackChunk {
		// Start writing the bytes so far back to disk now, without waiting, so
		// the sync at Commit has little left to do: the disk works while the
		// rest of the upload still streams in.
		unix.SyncFileRange(int(w.f.Fd()), w.kicked, w.size-w.kicked, unix.SYNC_FILE_RANGE_WRITE)
		w.kicked = w.size
	}
	return n, nil
}

// writebackChunk is how many written bytes start an early writeback.
const writebackChunk = 8 << 20

// Size is the file's size so far, including bytes from before a resume.
func (w *fileWriter) Size() int64 { return w.size }

// Close releases the file, keeping its bytes (unsynced) for a resumed Writer.
func (w *fileWriter) Close() error {
	if w.done {
		return fmt.Errorf("filesystem: close %s: %w", w.path, fs.ErrClosed)
	}
	w.done = true
	return w.d.spaceErr(w.f.Close()) // a network filesystem may report ENOSPC only here
}

// Commit syncs the file (and, if this writer created it, its directory entry) and
// releases it.
func (w *fileWriter) Commit(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("filesystem: commit %s: %w", w.path, fs.ErrClosed)
	}
	w.done = true
	var err error
	if w.dirty || w.created {
		// The file's data and, for a new file, its directory entry are synced
		// together, in a group with other writes (see group.go).
		cm := &commit{fd: int(w.f.Fd())}
		if w.created {
			cm.dirs = []string{filepath.Dir(w.full)}
		}
		err = w.d.commits.do(cm)
	} else {
		// A resumed file this writer did not change (an upload's last, empty
		// chunk) is usually durable already, and then its sync returns at once:
		// it is not worth a place in a group. Bytes a closed writer left
		// unsynced are synced here all the same.
		err = fdatasync(int(w.f.Fd()))
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return w.d.spaceErr(fmt.Errorf("filesystem: commit %s: %w", w.path, err))
	}
	return nil
}

// Cancel releases and removes the file, pruning directories left empty.
func (w *fileWriter) Cancel(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("filesystem: cancel %s: %w", w.path, fs.ErrClosed)
	}
	w.done = true
	w.f.Close()
	if err := os.Remove(w.full); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filesystem: cancel %s: %w", w.path, err)
	}
	w.d.prune(filepath.Dir(w.full))
	return nil
}
