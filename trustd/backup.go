package trustd

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/trustd/tuf"
)

// Backup and restore of all of trustd's state: every object under /trustd on
// its storage driver (accounts, robots, organisations, grants, refresh tokens,
// the token signing key, the audit log, and the TUF repository with its online
// keys, staged and pending role versions).
//
// The archive is a gzip-compressed tar. Its first entry, MANIFEST.json, lists
// every object's driver path, size and sha256; then comes one entry per object,
// named by its driver path without the leading slash, mode 0600. A restore
// checks every entry against the manifest before it writes anything.
//
// Neither holds the state in memory: both pass the objects through a spool, a
// temporary file of their own (mode 0600, removed when they return), one
// object in memory at a time. Backup refuses state that Restore would refuse
// (an object over maxObjectSize, more than maxBackupSize in all, a manifest
// over maxManifestSize), so an archive written is one that restores.
//
// Consistency: the TUF repository is copied complete as of one commit, the
// head read first (tuf.CopyConsistent: head.json, then pending/, then meta/,
// leaving out versions committed after that head), however many commits land
// meanwhile, so the root, targets, snapshot, timestamp and delegated roles
// restored verify together; every other record is one JSON object written
// atomically, copied whole as it was at some moment of the backup. A record
// changed while the backup runs (a login's refresh token, a new member) may be
// in it before or after that change, and a role published during the backup is
// in the restored repository only if its commit came before the head was read.
//
// The audit log is never removed: a restore with force replaces every other
// object of the target's state but keeps its audit records (those newer than
// the archive among them), and writes the archive's with put-if-absent.

// manifestName is the archive's first entry.
const manifestName = "MANIFEST.json"

// backupFormat names the archive format in its manifest.
const backupFormat = "signet-trustd-backup/v1"

// Limits of a restore, so a corrupt archive cannot exhaust memory.
const (
	maxManifestSize = 64 << 20
	maxObjectSize   = 64 << 20
	maxBackupSize   = 4 << 30
)

// BackupManifest is MANIFEST.json.
type BackupManifest struct {
	Format  string        `json:"format"`
	Created time.Time     `json:"created"`
	Files   []BackupEntry `json:"files"`
}

// BackupEntry is one object of the archive.
type BackupEntry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// BackupReport says what a backup or restore copied.
type BackupReport struct {
	Files int
	Bytes int64
	// Kept counts the archive's audit records a restore found on the target
	// already and left as they were.
	Kept int
}

// Backup writes all of trustd's state on d to w (see above). It works while
// trustd serves from d.
func Backup(ctx context.Context, d driver.Driver, w io.Writer, now time.Time) (BackupReport, error) {
	sp, err := newSpool()
	if err != nil {
		return BackupReport{}, err
	}
	defer sp.close()
	if err := readState(ctx, d, sp); err != nil {
		return BackupReport{}, err
	}
	m := BackupManifest{Format: backupFormat, Created: now.UTC().Truncate(time.Second)}
	var rep BackupReport
	for _, e := range sp.entries {
		m.Files = append(m.Files, e.BackupEntry)
		rep.Files++
		rep.Bytes += e.Size
	}
	mdata, err := json.Marshal(m)
	if err != nil {
		return BackupReport{}, err
	}
	if len(mdata) > maxManifestSize {
		return BackupReport{}, fmt.Errorf("the manifest of %d objects is %d bytes, more than the %d a restore accepts: the state is too large for one archive", len(m.Files), len(mdata), maxManifestSize)
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	put := func(name string, size int64, r io.Reader) error {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: m.Created, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	if err := put(manifestName, int64(len(mdata)), bytes.NewReader(mdata)); err != nil {
		return BackupReport{}, err
	}
	for _, e := range sp.entries {
		if err := put(strings.TrimPrefix(e.Path, "/"), e.Size, sp.section(e)); err != nil {
			return BackupReport{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return BackupReport{}, err
	}
	if err := gz.Close(); err != nil {
		return BackupReport{}, err
	}
	return rep, nil
}

// readState reads every object under /trustd into sp: the records (each
// whole), then the TUF repository as of one commit.
func readState(ctx context.Context, d driver.Driver, sp *spool) error {
	tufDir := path.Dir(tuf.HeadPath)
	err := d.Walk(ctx, stateRoot, func(fi driver.FileInfo) error {
		if fi.IsDir {
			if fi.Path == tufDir {
				return driver.ErrSkipDir
			}
			return nil
		}
		if fi.Size > maxObjectSize {
			return errTooLarge(fi.Path, fi.Size)
		}
		data, _, err := d.GetContent(ctx, fi.Path)
		if errors.Is(err, driver.ErrNotFound) {
			return nil // removed since it was listed (an expired refresh token)
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", fi.Path, err)
		}
		return sp.Put(tuf.File{Path: fi.Path, Data: data})
	})
	if errors.Is(err, driver.ErrNotFound) {
		return fmt.Errorf("there is no trustd state on this storage (%s): check --data, --storage or the config file", stateRoot)
	}
	if err != nil {
		return err
	}
	sp.mark()
	return tuf.CopyConsistent(ctx, d, sp)
}

func errTooLarge(p string, size int64) error {
	return fmt.Errorf("%s is %d bytes, more than the %d a restore accepts for one object", p, size, maxObjectSize)
}

// spool holds the objects of a backup or a restore in a temporary file of its
// own (mode 0600, removed by close), so only one is ever in memory. It is the
// tuf.Sink a backup copies the TUF repository into, and enforces the limits of
// a restore as objects come in.
type spool struct {
	f       *os.File
	size    int64
	entries []spooled
	// marked is where Reset goes back to: the entries and size at mark.
	markedEntries int
	markedSize    int64
}

// spooled is an object in the spool: its manifest entry and where it is.
type spooled struct {
	BackupEntry
	off int64
}

func newSpool() (*spool, error) {
	f, err := os.CreateTemp("", "trustd-backup-*.spool") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("making a temporary file for the backup's objects (set TMPDIR to a directory with room): %w", err)
	}
	return &spool{f: f}, nil
}

// Put adds f, refusing an object or a total a restore would refuse.
func (sp *spool) Put(f tuf.File) error {
	size := int64(len(f.Data))
	if size > maxObjectSize {
		return errTooLarge(f.Path, size)
	}
	if sp.size+size > maxBackupSize {
		return fmt.Errorf("trustd's state is more than the %d bytes a restore accepts (at %s): it is too large for one archive", int64(maxBackupSize), f.Path)
	}
	if _, err := sp.f.WriteAt(f.Data, sp.size); err != nil {
		return fmt.Errorf("spooling %s: %w", f.Path, err)
	}
	sum := sha256.Sum256(f.Data)
	sp.entries = append(sp.entries, spooled{BackupEntry{Path: f.Path, Size: size, SHA256: hex.EncodeToString(sum[:])}, sp.size})
	sp.size += size
	return nil
}

// mark makes the current content what Reset goes back to.
func (sp *spool) mark() { sp.markedEntries, sp.markedSize = len(sp.entries), sp.size }

// Reset drops what was Put since mark.
func (sp *spool) Reset() error {
	sp.entries, sp.size = sp.entries[:sp.markedEntries], sp.markedSize
	return sp.f.Truncate(sp.size)
}

// section reads e back.
func (sp *spool) section(e spooled) *io.SectionReader {
	return io.NewSectionReader(sp.f, e.off, e.Size)
}

// read returns e's bytes.
func (sp *spool) read(e spooled) ([]byte, error) {
	data := make([]byte, e.Size)
	if _, err := sp.f.ReadAt(data, e.off); err != nil && !(errors.Is(err, io.EOF) && e.Size == 0) {
		return nil, fmt.Errorf("reading %s back from the temporary file: %w", e.Path, err)
	}
	return data, nil
}

func (sp *spool) close() {
	sp.f.Close()
	os.Remove(sp.f.Name())
}

// stateRoot holds every object of trustd's state.
const stateRoot = "/trustd"

// ErrNotEmpty: a restore found trustd state on its target.
var ErrNotEmpty = errors.New("the target storage already holds trustd state")

// Restore writes the archive r onto d, which must hold no trustd state unless
// force: then every object of the state there is deleted first, but for its
// audit log (see above). Every entry is checked against the manifest (its
// path, size and sha256; none missing, none extra) before anything is written,
// audit records are written with put-if-absent, and head.json, the TUF commit
// point, is written last.
func Restore(ctx context.Context, d driver.Driver, r io.Reader, force bool) (BackupReport, error) {
	if !force {
		if err := checkEmpty(ctx, d); err != nil {
			return BackupReport{}, err
		}
	}
	sp, err := newSpool()
	if err != nil {
		return BackupReport{}, err
	}
	defer sp.close()
	m, err := readArchive(r, sp)
	if err != nil {
		return BackupReport{}, fmt.Errorf("the archive is not a valid trustd backup: %w", err)
	}
	if force {
		if err := deleteAllBut(ctx, d, stateRoot, auditRoot); err != nil {
			return BackupReport{}, fmt.Errorf("deleting the state there: %w", err)
		}
	} else if err := checkEmpty(ctx, d); err != nil {
		return BackupReport{}, err
	}
	at := make(map[string]spooled, len(sp.entries))
	for _, e := range sp.entries {
		at[e.Path] = e
	}
	var rep BackupReport
	write := func(e spooled) error {
		data, err := sp.read(e)
		if err != nil {
			return err
		}
		if strings.HasPrefix(e.Path, auditRoot+"/") {
			_, err = d.PutContentIf(ctx, e.Path, data, driver.Condition{IfAbsent: true})
			if errors.Is(err, driver.ErrPreconditionFailed) {
				rep.Kept++ // a record is never overwritten
				return nil
			}
		} else {
			_, err = d.PutContent(ctx, e.Path, data)
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", e.Path, err)
		}
		rep.Files++
		rep.Bytes += e.Size
		return nil
	}
	for _, me := range m.Files {
		if me.Path != tuf.HeadPath {
			if err := write(at[me.Path]); err != nil {
				return rep, err
			}
		}
	}
	if head, ok := at[tuf.HeadPath]; ok {
		if err := write(head); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// deleteAllBut deletes everything under dir except keep, a path below it.
func deleteAllBut(ctx context.Context, d driver.Driver, dir, keep string) error {
	children, err := d.List(ctx, dir)
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, p := range children {
		switch {
		case p == keep:
		case strings.HasPrefix(keep, p+"/"):
			if err := deleteAllBut(ctx, d, p, keep); err != nil {
				return err
			}
		default:
			if err := d.Delete(ctx, p); err != nil && !errors.Is(err, driver.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

func checkEmpty(ctx context.Context, d driver.Driver) error {
	_, err := d.Stat(ctx, stateRoot)
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w (%s exists): restore onto a fresh data directory or an empty bucket or prefix, or pass --force to replace it (its audit log is kept)", ErrNotEmpty, stateRoot)
}

// readArchive reads and checks the whole archive into sp, returning its
// manifest.
func readArchive(r io.Reader, sp *spool) (*BackupManifest, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(gz)
	hdr, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("reading its first entry: %w", err)
	}
	if hdr.Name != manifestName || hdr.Size > maxManifestSize {
		return nil, fmt.Errorf("its first entry is %q, not %s", hdr.Name, manifestName)
	}
	var m BackupManifest
	if err := json.NewDecoder(io.LimitReader(tr, maxManifestSize)).Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", manifestName, err)
	}
	if m.Format != backupFormat {
		return nil, fmt.Errorf("%s: format %q, want %q", manifestName, m.Format, backupFormat)
	}
	want := make(map[string]BackupEntry, len(m.Files))
	var total int64
	for _, e := range m.Files {
		if !driver.ValidPath(e.Path) || !strings.HasPrefix(e.Path, stateRoot+"/") {
			return nil, fmt.Errorf("%s lists %q, which is not a path of trustd's state", manifestName, e.Path)
		}
		if _, dup := want[e.Path]; dup {
			return nil, fmt.Errorf("%s lists %s twice", manifestName, e.Path)
		}
		if e.Size < 0 || e.Size > maxObjectSize || len(e.SHA256) != sha256.Size*2 {
			return nil, fmt.Errorf("%s: the entry of %s is malformed", manifestName, e.Path)
		}
		if total += e.Size; total > maxBackupSize {
			return nil, fmt.Errorf("%s lists more than %d bytes", manifestName, int64(maxBackupSize))
		}
		want[e.Path] = e
	}
	seen := make(map[string]bool, len(want))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		p := "/" + hdr.Name
		e, ok := want[p]
		if !ok {
			return nil, fmt.Errorf("entry %q is not in %s", hdr.Name, manifestName)
		}
		if seen[p] {
			return nil, fmt.Errorf("entry %q appears twice", hdr.Name)
		}
		seen[p] = true
		if hdr.Typeflag != tar.TypeReg || hdr.Size != e.Size {
			return nil, fmt.Errorf("entry %q: %d bytes, %s lists %d", hdr.Name, hdr.Size, manifestName, e.Size)
		}
		data, err := io.ReadAll(io.LimitReader(tr, e.Size+1))
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != e.Size || hex.EncodeToString(sum[:]) != e.SHA256 {
			return nil, fmt.Errorf("entry %q: its sha256 is %x, %s lists %s: the archive is corrupt", hdr.Name, sum, manifestName, e.SHA256)
		}
		if err := sp.Put(tuf.File{Path: p, Data: data}); err != nil {
			return nil, err
		}
	}
	// Reading to the end checks the gzip trailer's CRC and length too.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return nil, err
	}
	for _, e := range m.Files {
		if !seen[e.Path] {
			return nil, fmt.Errorf("%s lists %s, which the archive lacks", manifestName, e.Path)
		}
	}
	return &m, nil
}
