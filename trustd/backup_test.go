package trustd_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/audit/auditlog"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/trustd"
)

// spoolWatch looks into the temporary directory while a backup reads the
// driver, and records the files it finds there and their modes.
type spoolWatch struct {
	driver.Driver
	dir   string
	mu    sync.Mutex
	modes map[string]os.FileMode
}

func (d *spoolWatch) GetContent(ctx context.Context, p string) ([]byte, string, error) {
	entries, _ := os.ReadDir(d.dir)
	d.mu.Lock()
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			d.modes[e.Name()] = fi.Mode().Perm()
		}
	}
	d.mu.Unlock()
	return d.Driver.GetContent(ctx, p)
}

func TestBackupSpoolsThroughAPrivateTemporaryFile(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	d := &spoolWatch{Driver: inmemory.New(), dir: tmp, modes: map[string]os.FileMode{}}
	log := auditlog.New(d, "/trustd/v1/audit", "trustd")
	for i := range 3 {
		if _, err := log.Append(ctx, audit.Record{Actor: "admin", Action: audit.ActionOrgCreate, Org: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	d.PutContent(ctx, "/trustd/v1/people/alice.json", []byte(`{"name":"alice"}`))

	var archive bytes.Buffer
	rep, err := trustd.Backup(ctx, d, &archive, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files != 4 {
		t.Errorf("backed up %d files, want the 3 audit records and the person", rep.Files)
	}
	if len(d.modes) != 1 {
		t.Errorf("the backup made %d temporary files (%v), want its one spool", len(d.modes), d.modes)
	}
	for name, mode := range d.modes {
		if mode != 0o600 {
			t.Errorf("the spool %s has mode %v, want 0600", name, mode)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the backup left %d temporary files behind", len(left))
	}

	restored := inmemory.New()
	if rep, err := trustd.Restore(ctx, restored, &archive, false); err != nil || rep.Files != 4 {
		t.Fatalf("restoring the backup: %d files, %v", rep.Files, err)
	}
	if got, _, err := restored.GetContent(ctx, "/trustd/v1/people/alice.json"); err != nil || string(got) != `{"name":"alice"}` {
		t.Errorf("the restored person is %q, %v", got, err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the restore left %d temporary files behind", len(left))
	}
}

func TestBackupRefusesWhatRestoreWouldRefuse(t *testing.T) {
	ctx := context.Background()
	t.Setenv("TMPDIR", t.TempDir())
	d := inmemory.New()
	d.PutContent(ctx, "/trustd/v1/people/alice.json", []byte(`{"name":"alice"}`))
	d.PutContent(ctx, "/trustd/v1/people/huge.json", bytes.Repeat([]byte{' '}, 64<<20+1))
	var archive bytes.Buffer
	_, err := trustd.Backup(ctx, d, &archive, time.Now())
	if err == nil || !strings.Contains(err.Error(), "/trustd/v1/people/huge.json") || !strings.Contains(err.Error(), "restore accepts") {
		t.Fatalf("backing up an object larger than a restore accepts: %v, want an error naming it and the limit", err)
	}
	if archive.Len() != 0 {
		t.Errorf("the refused backup wrote %d bytes of archive", archive.Len())
	}
	if left, _ := os.ReadDir(os.Getenv("TMPDIR")); len(left) != 0 {
		t.Errorf("the refused backup left %d temporary files behind", len(left))
	}
}

func TestForcedRestoreKeepsTheAuditLog(t *testing.T) {
	ctx := context.Background()
	t.Setenv("TMPDIR", t.TempDir())
	d := inmemory.New()
	log := auditlog.New(d, "/trustd/v1/audit", "trustd")
	before, err := log.Append(ctx, audit.Record{Actor: "admin", Action: audit.ActionOrgCreate, Org: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	d.PutContent(ctx, "/trustd/v1/people/alice.json", []byte(`{"name":"alice"}`))
	var archive bytes.Buffer
	if _, err := trustd.Backup(ctx, d, &archive, time.Now()); err != nil {
		t.Fatal(err)
	}

	// After the backup: a new record, a new person, and the archived record
	// changed on the target (a record is never overwritten, even by a restore).
	after, err := log.Append(ctx, audit.Record{Actor: "admin", Action: audit.ActionUserCreate, Subject: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	d.PutContent(ctx, "/trustd/v1/people/bob.json", []byte(`{"name":"bob"}`))
	beforePath := "/trustd/v1/audit/" + before.Time.Format("2006/01/02") + "/" + before.ID + ".json"
	d.PutContent(ctx, beforePath, []byte(`{"changed":true}`))

	if _, err := trustd.Restore(ctx, d, bytes.NewReader(archive.Bytes()), false); err == nil {
		t.Fatal("a restore onto state without force succeeded")
	}
	rep, err := trustd.Restore(ctx, d, bytes.NewReader(archive.Bytes()), true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kept != 1 || rep.Files != 1 {
		t.Errorf("the restore wrote %d files and kept %d audit records, want 1 and 1", rep.Files, rep.Kept)
	}
	if _, err := d.Stat(ctx, "/trustd/v1/people/bob.json"); err == nil {
		t.Error("the state made after the backup is still there")
	}
	if got, _, _ := d.GetContent(ctx, beforePath); string(got) != `{"changed":true}` {
		t.Errorf("the restore overwrote an audit record: %s", got)
	}
	page, err := log.Query(ctx, audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range page.Records {
		ids = append(ids, r.ID)
	}
	if !strings.Contains(strings.Join(ids, " "), after.ID) {
		t.Errorf("the audit record newer than the archive is gone: the log holds %q", ids)
	}
	if _, err := d.Stat(ctx, "/trustd/v1/people/alice.json"); err != nil {
		t.Errorf("the archive's person was not restored: %v", err)
	}
}
