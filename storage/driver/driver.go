// Package driver defines the storage driver interface that holds all of Signet's
// state (the registry's blobs, manifests, tags, referrer links and upload sessions;
// trustd's records and TUF role versions; the audit log; the notification queue),
// so that the servers above it stay stateless.
//
// A driver stores opaque objects under slash-separated paths. Its main invariants:
//
//   - An object becomes visible whole or not at all: a reader never sees a partial
//     PutContent, and a Writer's bytes are visible at its path only as they are
//     written to an upload area, never at a path that the registry serves until Move.
//   - No object is ever stored at a path that is a prefix of another object's path
//     ("a" and "a/b" cannot both be objects). The callers' layout guarantees this;
//     drivers may reject a violation with ErrInvalidPath.
//   - Conditional writes (PutContentIf) are atomic compare-and-swap operations with
//     respect to every other writer, in this process and in others sharing the store.
//
// Every driver runs the shared suite in the testsuite package.
package driver

import (
	"context"
	"errors"
	"io"
	"regexp"
	"time"
)

// Errors returned by drivers. Callers match them with errors.Is.
var (
	// ErrNotFound: no object (or, for List, no directory) at the path.
	ErrNotFound = errors.New("storage: path not found")
	// ErrPreconditionFailed: a conditional write's condition did not hold.
	ErrPreconditionFailed = errors.New("storage: precondition failed")
	// ErrInvalidPath: the path is not a valid driver path.
	ErrInvalidPath = errors.New("storage: invalid path")
	// ErrInvalidOffset: a read or resumed write at an offset past the object's end.
	ErrInvalidOffset = errors.New("storage: invalid offset")
)

// ErrUnavailable: the backend failed in a way that may pass (a 5xx or throttling
// answer, a reset or silent connection), after the driver's own bounded retries.
// The operation may or may not have taken effect, so a caller retries it
// whole; the server above answers 503 with Retry-After, never a 500.
var ErrUnavailable = errors.New("storage: backend temporarily unavailable")

// UnavailableRetryAfter is how long the servers ask a client to wait
// (Retry-After) after ErrUnavailable. The driver has already retried for about
// a second; a few more spread the clients' retries over the time a throttling
// store needs.
const UnavailableRetryAfter = 5 * time.Second

// Condition guards a conditional write. The zero Condition is unconditional.
type Condition struct {
	// IfAbsent: write only when no object exists at the path (put-if-absent).
	IfAbsent bool
	// IfMatch: write only when the object exists and its current version equals
	// this value (put-if-match, compare-and-swap). Empty means no such check.
	IfMatch string
}

// FileInfo describes one object.
type FileInfo struct {
	Path    string
	Size    int64
	ModTime time.Time
	// IsDir is true for a directory: a path prefix under which objects exist.
	IsDir bool
}

// Driver is the storage contract. Paths are absolute, slash-separated, made of
// components matching PathRegexp ("/blobs/sha256/ab/abcd.../data"). All methods are
// safe for concurrent use.
type Driver interface {
	// Name identifies the driver in logs and configuration ("filesystem").
	Name() string

	// GetContent returns the whole object at path and its version: an opaque string,
	// derived from the content (like an S3 ETag), that differs whenever the content
	// differs and that PutContentIf accepts as IfMatch.
	// ErrNotFound if there is no object.
	GetContent(ctx context.Context, path string) (data []byte, version string, err error)

	// PutContent stores data at path, replacing any object there, atomically: readers
	// see the old object or the new one, never a mix. The object is durable (synced)
	// when PutContent returns. It returns the new version.
	PutContent(ctx context.Context, path string, data []byte) (version string, err error)

	// PutContentIf is PutContent guarded by cond, checked and applied atomically
	// against every concurrent writer. ErrPreconditionFailed if cond does not hold.
	PutContentIf(ctx context.Context, path string, data []byte, cond Condition) (version string, err error)

	// Reader opens the object at path for reading from offset. ErrNotFound if there
	// is no object; ErrInvalidOffset if offset is past its end. A driver may return
	// an *os.File (or a value with a ReadFrom-friendly type) so that servers can let
	// the kernel copy bytes.
	Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error)

	// Writer opens a writer for a large object at path, which must be in an upload
	// area that the registry does not serve. With resume false it starts an empty
	// object; with resume true it continues the existing one at offset, discarding
	// any bytes past offset (left by a writer that was killed), and returns
	// ErrInvalidOffset if the object is shorter than offset. Written bytes are
	// readable at path (for resumption and hashing) but durable only after Commit.
	Writer(ctx context.Context, path string, resume bool, offset int64) (FileWriter, error)

	// Stat describes the object or directory at path. ErrNotFound if neither.
	Stat(ctx context.Context, path string) (FileInfo, error)

	// List returns the full paths of the direct children (objects and directories)
	// of the directory at path, in lexical order. ErrNotFound if the directory does
	// not exist.
	List(ctx context.Context, path string) ([]string, error)

	// Move atomically moves the object at src to dst, replacing any object at dst.
	// After Move returns, dst is durable and src no longer exists.
	Move(ctx context.Context, src, dst string) error

	// Delete removes the object at path, or the directory at path with everything
	// below it. ErrNotFound if nothing exists there.
	Delete(ctx context.Context, path string) error

	// Walk calls fn for every object and directory below path, depth first in
	// lexical order. If fn returns ErrSkipDir for a directory, its contents are
	// skipped; any other error stops the walk and is returned.
	Walk(ctx context.Context, path string, fn func(FileInfo) error) error
}

// MoveCopier is implemented by drivers whose Move copies the bytes (object stores,
// where a rename is a server-side copy and a delete) instead of renaming them.
// Callers that commit large objects can then leave the bytes where they were
// written and record where they are, instead of moving them.
type MoveCopier interface {
	MoveCopies() bool
}

// ErrSkipDir, returned by a Walk callback for a directory, skips that directory.
var ErrSkipDir = errors.New("storage: skip directory")

// FileWriter writes one large object. Write appends. Exactly one of Commit, Cancel
// or Close must end it: Close keeps the bytes written so far for a later resumed
// Writer (an interrupted upload), Commit makes them durable, Cancel removes them.
type FileWriter interface {
	io.Writer
	// Size is the object's size so far, including bytes from before a resume.
	Size() int64
	// Close releases the writer, keeping what was written (not necessarily synced).
	Close() error
	// Commit syncs the object to durable storage and releases the writer.
	Commit(ctx context.Context) error
	// Cancel removes the object and releases the writer.
	Cancel(ctx context.Context) error
}

// PathRegexp is the form of a valid driver path (ValidPath checks it without a
// regular expression, since it runs on every call).
var PathRegexp = regexp.MustCompile(`^(/[A-Za-z0-9._:-]+)+$`)

// ValidPath reports whether path is a valid driver path: "/" (the root, for List and
// Walk), or absolute with components of letters, digits and "._:-", none of them "."
// or "..".
func ValidPath(path string) bool {
	if path == "/" {
		return true
	}
	if len(path) < 2 || path[0] != '/' {
		return false
	}
	start := 1
	for i := 1; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' {
			if !pathByte[path[i]] {
				return false
			}
			continue
		}
		switch c := path[start:i]; c {
		case "", ".", "..":
			return false
		}
		start = i + 1
	}
	return true
}

// pathByte marks the bytes allowed in a path component.
var pathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "._:-" {
		t[c] = true
	}
	return t
}()
