package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// onlyEntries fails the test unless dir holds exactly the names want: no
// temporary file is left behind.
func onlyEntries(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

func hasContent(t *testing.T, path, want string, perm fs.FileMode) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("%s holds %q, want %q", path, b, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != perm {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode(), perm)
	}
}

// watchSyncs records the directories synced during the test, and checks at each
// sync that the target already holds its new content: the sync comes after the
// rename it makes durable.
func watchSyncs(t *testing.T, target, want string) *[]string {
	var synced []string
	syncDir = func(dir string) error {
		if b, err := os.ReadFile(target); err != nil || string(b) != want {
			t.Errorf("directory %s synced before %s held its new content (%q, %v)", dir, target, b, err)
		}
		synced = append(synced, dir)
		return SyncDir(dir)
	}
	t.Cleanup(func() { syncDir = SyncDir })
	return &synced
}

func TestWriteReplacesWholeAndSyncsTheDirectory(t *testing.T) {
	old := syscall.Umask(0o077) // perm is exact, whatever the umask
	defer syscall.Umask(old)

	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(strings.Repeat("old content, longer than the new\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	synced := watchSyncs(t, path, "new\n")
	if err := Write(path, []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hasContent(t, path, "new\n", 0o644)
	onlyEntries(t, dir, "config.json")
	if len(*synced) != 1 || (*synced)[0] != dir {
		t.Errorf("synced directories %q, want [%s]", *synced, dir)
	}
}

func TestWriteSecretMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	if err := Write(path, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	hasContent(t, path, "secret", 0o600)
}

func TestWriteFuncFailureLeavesTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "backup.tar")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	syncDir = func(dir string) error {
		t.Errorf("directory %s synced after a failed write", dir)
		return nil
	}
	t.Cleanup(func() { syncDir = SyncDir })
	boom := errors.New("the source broke off")
	err := WriteFunc(path, 0o600, func(w io.Writer) error {
		io.WriteString(w, "half of the new")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WriteFunc = %v, want the writer's error", err)
	}
	hasContent(t, path, "old", 0o600)
	onlyEntries(t, dir, "backup.tar")
}

func TestWriteFailedRenameLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "taken")
	if err := os.Mkdir(path, 0o755); err != nil { // a directory cannot be replaced by a file
		t.Fatal(err)
	}
	if err := Write(path, []byte("x"), 0o644); err == nil {
		t.Fatal("Write onto a directory succeeded")
	}
	onlyEntries(t, dir, "taken")
}

func TestWriteMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent", "f")
	if err := Write(path, []byte("x"), 0o644); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Write into a missing directory = %v, want fs.ErrNotExist (the caller creates it)", err)
	}
}

func TestCreateIsExclusive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.key")
	synced := watchSyncs(t, path, "first")
	if err := Create(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	if len(*synced) != 1 || (*synced)[0] != dir {
		t.Errorf("synced directories %q, want [%s]", *synced, dir)
	}
	err := Create(path, []byte("second"), 0o600)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create = %v, want fs.ErrExist", err)
	}
	hasContent(t, path, "first", 0o600)
	onlyEntries(t, dir, "k.key")
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("SyncDir of a missing directory = %v, want fs.ErrNotExist", err)
	}
}
