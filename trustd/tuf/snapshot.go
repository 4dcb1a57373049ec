package tuf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/trustnames"
)

// Reading the repository while trustd writes it, for backups.
//
// head.json is the commit point, and no commit rewrites or removes a file an
// earlier head names: a commit writes pending files, swaps head.json, then moves
// the files the new head names from pending/ to meta/ (see layout.go); a
// committed version in meta/ is never replaced, since every later commit is of
// a later version. So a reader that
//
//  1. reads head.json, then
//  2. reads every object of pending/, and only then every object of meta/,
//
// holds every file of the state that head names, however many commits land
// meanwhile: a file of that head not yet moved when pending/ is read is read
// there, and one moved before is in meta/ when meta/ is read after it (a move
// writes its destination before it removes its source). Files newer than that
// head (versions committed after step 1, pending versions of publishes that
// never committed or came later) are left out: every pending/ or meta/ file of
// a version above the head's (root above head.Root, snapshot above
// head.Snapshot, any other role above the version the head's snapshot lists,
// all of a role it does not list) is dropped unread. A repository restored from
// the copy will commit those version numbers again, with other bytes; a
// discarded version left in meta/ would be served in their place. A reader that
// finds a file the head names missing fails rather than return an incomplete
// copy.

// File is one object of the repository and its bytes.
type File struct {
	Path string
	Data []byte
}

// maxSnapshotAttempts bounds how many times ReadConsistent starts again
// because a directory vanished while it was read (the filesystem driver prunes
// emptied directories).
const maxSnapshotAttempts = 10

// HeadPath is head.json, the commit point: a restore writes it last.
const HeadPath = headPath

// ReadConsistent returns every object of the TUF repository on d, complete for
// the head it read first (see above), head.json first. It returns no files and
// no error when the repository has never been initialised.
func ReadConsistent(ctx context.Context, d driver.Driver) ([]File, error) {
	var m memorySink
	if err := CopyConsistent(ctx, d, &m); err != nil {
		return nil, err
	}
	return m.files, nil
}

// A Sink takes the objects of a copy as CopyConsistent reads them.
type Sink interface {
	// Put takes one object; an error stops the copy and is returned.
	Put(File) error
	// Reset drops every object Put so far: the copy starts again, because a
	// directory vanished while it was read.
	Reset() error
}

// CopyConsistent is ReadConsistent for a repository too large to hold: it gives
// every object to sink as it reads it, head.json first, holding only one at a
// time.
func CopyConsistent(ctx context.Context, d driver.Driver, sink Sink) error {
	for range maxSnapshotAttempts {
		ok, err := readOnce(ctx, d, sink)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if err := sink.Reset(); err != nil {
			return err
		}
	}
	return fmt.Errorf("tuf: directories vanished under each of %d attempts to read the repository; try again", maxSnapshotAttempts)
}

// memorySink keeps the objects in memory.
type memorySink struct{ files []File }

func (m *memorySink) Put(f File) error { m.files = append(m.files, f); return nil }
func (m *memorySink) Reset() error     { m.files = nil; return nil }

// readOnce reads the repository once into sink; ok is false when a directory
// vanished while it was walked.
func readOnce(ctx context.Context, d driver.Driver, sink Sink) (ok bool, err error) {
	have := map[string]bool{}
	put := func(f File) error {
		have[f.Path] = true
		return sink.Put(f)
	}
	head, _, err := d.GetContent(ctx, headPath)
	var newer func(p string) bool // a pending/ or meta/ file the head does not reach
	switch {
	case errors.Is(err, driver.ErrNotFound):
		head = nil
		newer = func(string) bool { return false }
	case err != nil:
		return false, fmt.Errorf("reading %s: %w", headPath, err)
	default:
		if newer, err = newerThan(ctx, d, head); err != nil {
			return false, err
		}
		if err := put(File{Path: headPath, Data: head}); err != nil {
			return false, err
		}
	}
	// keys and staged are independent of commits, and a held file is written
	// before the head that names it; pending before meta is the order the
	// guarantee above rests on.
	for _, dir := range []string{rootDir + "/keys", stagedDir, heldDir, pendingDir, metaDir} {
		err := d.Walk(ctx, dir, func(fi driver.FileInfo) error {
			if fi.IsDir || newer(fi.Path) {
				return nil
			}
			data, _, err := d.GetContent(ctx, fi.Path)
			if errors.Is(err, driver.ErrNotFound) {
				return nil // moved to meta/ (read next) or a staged copy cleared
			}
			if err != nil {
				return fmt.Errorf("reading %s: %w", fi.Path, err)
			}
			return put(File{Path: fi.Path, Data: data})
		})
		if errors.Is(err, driver.ErrNotFound) {
			if _, serr := d.Stat(ctx, dir); errors.Is(serr, driver.ErrNotFound) {
				continue // nothing there: never written, or emptied
			}
			return false, nil // a directory vanished while it was walked: read again
		}
		if err != nil {
			return false, err
		}
	}
	if head != nil {
		if err := checkComplete(head, have); err != nil {
			return false, err
		}
	}
	return true, nil
}

// checkComplete checks that the copy, which holds the paths have, holds every
// role version head names, from pending/ or meta/.
func checkComplete(head []byte, have map[string]bool) error {
	var h headRecord
	if err := json.Unmarshal(head, &h); err != nil {
		return fmt.Errorf("tuf: %s is unreadable: %w", headPath, err)
	}
	for _, c := range h.Changed {
		if !have[pendingPath(c.Role, c.Version, c.SHA256)] && !have[metaPath(c.Role, c.Version)] {
			return fmt.Errorf("tuf: %s version %d, which the head names, is neither pending nor in meta/", c.Role, c.Version)
		}
	}
	for _, c := range h.Held {
		if !have[heldPath(c.Role, c.Version, c.SHA256)] {
			return fmt.Errorf("tuf: the held %s version %d, which the head names, is missing", c.Role, c.Version)
		}
	}
	for _, p := range []string{metaPath(trustnames.RoleRoot, h.Root), metaPath(trustnames.RoleSnapshot, h.Snapshot)} {
		if !have[p] && !namedPending(h, p) {
			return fmt.Errorf("tuf: %s, which the head names, is missing", p)
		}
	}
	return nil
}

// namedPending reports whether the meta path p is one the head still names as
// pending (found above under its pending path).
func namedPending(h headRecord, p string) bool {
	for _, c := range h.Changed {
		if metaPath(c.Role, c.Version) == p {
			return true
		}
	}
	return false
}

// newerThan returns whether a pending/ or meta/ path holds a version above
// those head names (see above). It reads the head's snapshot for the versions
// of the roles other than root and snapshot.
func newerThan(ctx context.Context, d driver.Driver, head []byte) (func(p string) bool, error) {
	var h headRecord
	if err := json.Unmarshal(head, &h); err != nil {
		return nil, fmt.Errorf("tuf: %s is unreadable: %w", headPath, err)
	}
	raw, err := store{d: d}.readCommitted(ctx, &h, trustnames.RoleSnapshot, h.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("tuf: snapshot version %d, which the head names: %w", h.Snapshot, err)
	}
	snap, err := (&snapshotMD{}).FromBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("tuf: snapshot version %d: %w", h.Snapshot, err)
	}
	latest := func(role string) int64 {
		switch role {
		case trustnames.RoleRoot:
			return h.Root
		case trustnames.RoleSnapshot:
			return h.Snapshot
		}
		if m := snap.Signed.Meta[role+".json"]; m != nil {
			return m.Version
		}
		return 0
	}
	return func(p string) bool {
		role, n, ok := versionOf(p)
		return ok && n > latest(role)
	}, nil
}

// versionOf parses a pending/ path (<role>/<N>.<sha256>.json) or a meta/ path
// (<role>/<N>.json); ok is false for any other path.
func versionOf(p string) (role string, n int64, ok bool) {
	rel, found := strings.CutPrefix(p, pendingDir+"/")
	if !found {
		if rel, found = strings.CutPrefix(p, metaDir+"/"); !found {
			return "", 0, false
		}
	}
	role, name, found := strings.Cut(rel, "/")
	if !found || strings.Contains(name, "/") {
		return "", 0, false
	}
	num, _, _ := strings.Cut(name, ".")
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return role, n, true
}
