package trustd

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/signet-oss/signet/registry/storage/driver"
	"github.com/signet-oss/signet/trustd/tuf"
)

// Backup and restore of all of trustd's state: every object under /trustd on
// its storage driver (accounts, robots, organisations, grants, refresh tokens,
// the token signing key, and the TUF repository with its online keys, staged
// and pending role versions).
//
// The archive is a gzip-compressed tar. Its first entry, MANIFEST.json, lists
// every object's driver path, size and sha256; then comes one entry per object,
// named by its driver path without the leading slash, mode 0600. A restore
// checks every entry against the manifest before it writes anything.
//
// Consistency: the TUF repository is copied complete as of one commit, the
// head read first (tuf.ReadConsistent: head.json, then pending/, then meta/),
// however many commits land meanwhile, so the root, targets, snapshot, timestamp
// and delegated roles restored verify together; every other record is one JSON
// object written atomically, copied whole as it was at some moment of the
// backup. A record changed while the backup runs (a login's refresh token, a new
// member) may be in it before or after that change, and a role published during
// the backup is in the restored repository only if its commit came before the
// head was read.

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
}

// Backup writes all of trustd's state on d to w (see above). It works while
// trustd serves from d.
func Backup(ctx context.Context, d driver.Driver, w io.Writer, now time.Time) (BackupReport, error) {
	files, err := readState(ctx, d)
	if err != nil {
		return BackupReport{}, err
	}
	m := BackupManifest{Format: backupFormat, Created: now.UTC().Truncate(time.Second)}
	var rep BackupReport
	for _, f := range files {
		sum := sha256.Sum256(f.Data)
		m.Files = append(m.Files, BackupEntry{Path: f.Path, Size: int64(len(f.Data)), SHA256: hex.EncodeToString(sum[:])})
		rep.Files++
		rep.Bytes += int64(len(f.Data))
	}
	mdata, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return BackupReport{}, err
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	put := func(name string, data []byte) error {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o600, ModTime: m.Created, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := put(manifestName, mdata); err != nil {
		return BackupReport{}, err
	}
	for _, f := range files {
		if err := put(strings.TrimPrefix(f.Path, "/"), f.Data); err != nil {
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

// readState reads every object under /trustd: the records (each whole), then
// the TUF repository as of one commit.
func readState(ctx context.Context, d driver.Driver) ([]tuf.File, error) {
	var files []tuf.File
	tufDir := path.Dir(tuf.HeadPath)
	err := d.Walk(ctx, stateRoot, func(fi driver.FileInfo) error {
		if fi.IsDir {
			if fi.Path == tufDir {
				return driver.ErrSkipDir
			}
			return nil
		}
		data, _, err := d.GetContent(ctx, fi.Path)
		if errors.Is(err, driver.ErrNotFound) {
			return nil // removed since it was listed (an expired refresh token)
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", fi.Path, err)
		}
		files = append(files, tuf.File{Path: fi.Path, Data: data})
		return nil
	})
	if errors.Is(err, driver.ErrNotFound) {
		return nil, fmt.Errorf("there is no trustd state on this storage (%s): check --data, --storage or the config file", stateRoot)
	}
	if err != nil {
		return nil, err
	}
	tufFiles, err := tuf.ReadConsistent(ctx, d)
	if err != nil {
		return nil, err
	}
	return append(files, tufFiles...), nil
}

// stateRoot holds every object of trustd's state.
const stateRoot = "/trustd"

// ErrNotEmpty: a restore found trustd state on its target.
var ErrNotEmpty = errors.New("the target storage already holds trustd state")

// Restore writes the archive r onto d, which must hold no trustd state unless
// force (then the state there is deleted first). Every entry is checked against
// the manifest (its path, size and sha256; none missing, none extra) before
// anything is written, and head.json, the TUF commit point, is written last.
func Restore(ctx context.Context, d driver.Driver, r io.Reader, force bool) (BackupReport, error) {
	if !force {
		if err := checkEmpty(ctx, d); err != nil {
			return BackupReport{}, err
		}
	}
	m, files, err := readArchive(r)
	if err != nil {
		return BackupReport{}, fmt.Errorf("the archive is not a valid trustd backup: %w", err)
	}
	if force {
		if err := d.Delete(ctx, stateRoot); err != nil && !errors.Is(err, driver.ErrNotFound) {
			return BackupReport{}, fmt.Errorf("deleting the state there: %w", err)
		}
	} else if err := checkEmpty(ctx, d); err != nil {
		return BackupReport{}, err
	}
	var rep BackupReport
	var head []byte
	for _, e := range m.Files {
		if e.Path == tuf.HeadPath {
			head = files[e.Path]
			continue
		}
		if _, err := d.PutContent(ctx, e.Path, files[e.Path]); err != nil {
			return rep, fmt.Errorf("writing %s: %w", e.Path, err)
		}
		rep.Files++
		rep.Bytes += e.Size
	}
	if head != nil {
		if _, err := d.PutContent(ctx, tuf.HeadPath, head); err != nil {
			return rep, fmt.Errorf("writing %s: %w", tuf.HeadPath, err)
		}
		rep.Files++
		rep.Bytes += int64(len(head))
	}
	return rep, nil
}

func checkEmpty(ctx context.Context, d driver.Driver) error {
	_, err := d.Stat(ctx, stateRoot)
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w (%s exists): restore onto a fresh data directory or an empty bucket or prefix, or pass --force to replace it", ErrNotEmpty, stateRoot)
}

// readArchive reads and checks the whole archive, returning the objects by path.
func readArchive(r io.Reader) (*BackupManifest, map[string][]byte, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, nil, err
	}
	tr := tar.NewReader(gz)
	hdr, err := tr.Next()
	if err != nil {
		return nil, nil, fmt.Errorf("reading its first entry: %w", err)
	}
	if hdr.Name != manifestName || hdr.Size > maxManifestSize {
		return nil, nil, fmt.Errorf("its first entry is %q, not %s", hdr.Name, manifestName)
	}
	var m BackupManifest
	if err := json.NewDecoder(io.LimitReader(tr, maxManifestSize)).Decode(&m); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", manifestName, err)
	}
	if m.Format != backupFormat {
		return nil, nil, fmt.Errorf("%s: format %q, want %q", manifestName, m.Format, backupFormat)
	}
	want := make(map[string]BackupEntry, len(m.Files))
	var total int64
	for _, e := range m.Files {
		if !driver.ValidPath(e.Path) || !strings.HasPrefix(e.Path, stateRoot+"/") {
			return nil, nil, fmt.Errorf("%s lists %q, which is not a path of trustd's state", manifestName, e.Path)
		}
		if _, dup := want[e.Path]; dup {
			return nil, nil, fmt.Errorf("%s lists %s twice", manifestName, e.Path)
		}
		if e.Size < 0 || e.Size > maxObjectSize || len(e.SHA256) != sha256.Size*2 {
			return nil, nil, fmt.Errorf("%s: the entry of %s is malformed", manifestName, e.Path)
		}
		if total += e.Size; total > maxBackupSize {
			return nil, nil, fmt.Errorf("%s lists more than %d bytes", manifestName, int64(maxBackupSize))
		}
		want[e.Path] = e
	}
	files := make(map[string][]byte, len(want))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		p := "/" + hdr.Name
		e, ok := want[p]
		if !ok {
			return nil, nil, fmt.Errorf("entry %q is not in %s", hdr.Name, manifestName)
		}
		if _, dup := files[p]; dup {
			return nil, nil, fmt.Errorf("entry %q appears twice", hdr.Name)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size != e.Size {
			return nil, nil, fmt.Errorf("entry %q: %d bytes, %s lists %d", hdr.Name, hdr.Size, manifestName, e.Size)
		}
		data, err := io.ReadAll(io.LimitReader(tr, e.Size+1))
		if err != nil {
			return nil, nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != e.Size || hex.EncodeToString(sum[:]) != e.SHA256 {
			return nil, nil, fmt.Errorf("entry %q: its sha256 is %x, %s lists %s: the archive is corrupt", hdr.Name, sum, manifestName, e.SHA256)
		}
		files[p] = data
	}
	// Reading to the end checks the gzip trailer's CRC and length too.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return nil, nil, err
	}
	for _, e := range m.Files {
		if _, ok := files[e.Path]; !ok {
			return nil, nil, fmt.Errorf("%s lists %s, which the archive lacks", manifestName, e.Path)
		}
	}
	return &m, files, nil
}
