package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/verify"
)

// TestTrustdBackupRestore backs up a running trustd that holds an org, keys and
// signed targets, restores the archive onto a new data directory, and starts
// trustd on it: the targets verify with the go-tuf updater from the ORIGINAL
// root, people and robots log in with their old credentials, tokens are signed
// with the same key. A corrupt or tampered archive is refused and writes
// nothing; a directory that holds state is refused without --force.
func TestTrustdBackupRestore(t *testing.T) {
	t.Parallel()
	if trustdErr != nil {
		t.Fatal(trustdErr)
	}
	ctx := context.Background()
	st := startStack(t)
	data := filepath.Join(filepath.Dir(st.Home), "data")
	st.trustctl(t, "keys", "generate", "backup-publisher")
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "backup-publisher")
	img := newImage(t, "backup-v1", newLayer(t, "backup/v1.bin", 8<<10))
	st.trustctl(t, "push", writeLayout(t, img), st.Addr+"/acme/app:v1", "--key", "backup-publisher")
	password := st.addUser(t, "alice", "", "")
	st.ctl(t, "", "org", "add-member", "acme", "alice", "--role", "reader")
	out := st.ctl(t, "", "token", "create", "--org", "acme", "--scope", "repository:acme/app:pull",
		"--ttl", "1h", "--name", "backup-bot", "--output", "json")
	var robot struct{ Name, Secret string }
	if err := json.Unmarshal([]byte(out), &robot); err != nil || robot.Secret == "" {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	root, err := os.ReadFile(filepath.Join(data, "registry-root.json"))
	if err != nil {
		t.Fatal(err)
	}

	// The backup is taken while trustd serves.
	work := t.TempDir()
	archive := filepath.Join(work, "trustd.tar.gz")
	trustdCmd(t, "backup", "--data", filepath.Join(data, "trustd"), "--out", archive)
	if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the archive: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	raw, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a corrupt or tampered archive is refused and writes nothing", func(t *testing.T) {
		truncated := raw[:len(raw)*2/3]
		flipped := bytes.Clone(raw)
		flipped[len(flipped)/2] ^= 0xff
		for name, bad := range map[string][]byte{
			"truncated":                       truncated,
			"a flipped byte":                  flipped,
			"a file changed, the gzip intact": rewriteArchive(t, raw, "trustd/v1/people/alice.json", nil),
			"a file left out":                 rewriteArchive(t, raw, "trustd/v1/tuf/head.json", []byte{}),
		} {
			f := filepath.Join(t.TempDir(), "bad.tar.gz")
			if err := os.WriteFile(f, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(t.TempDir(), "restored")
			out, err := tryTrustdCmd("restore", "--data", target, "--in", f)
			if err == nil {
				t.Errorf("%s: restore succeeded:\n%s", name, out)
				continue
			}
			if !strings.Contains(out, "not a valid trustd backup") {
				t.Errorf("%s: restore failed without saying the archive is bad:\n%s", name, out)
			}
			if _, err := os.Stat(filepath.Join(target, "trustd")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: restore wrote state before refusing (%v)", name, err)
			}
		}
	})

	restored := filepath.Join(work, "restored")
	trustdCmd(t, "restore", "--data", restored, "--in", archive)
	if fi, err := os.Stat(restored); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("the restored data directory: %v, mode %v; want 0700", err, fi.Mode().Perm())
	}
	if out, err := tryTrustdCmd("restore", "--data", restored, "--in", archive); err == nil || !strings.Contains(out, "--force") {
		t.Fatalf("a restore onto state succeeded or did not name --force: %v\n%s", err, out)
	}
	// --force replaces the state there, but for its audit log: a record newer
	// than the archive stays, and the archive's own are not written twice.
	now := time.Now().UTC()
	newer := audit.Record{ID: now.Format("20060102T150405.000000000Z") + "-00000000000000f0", Time: now, Source: "trustd",
		Actor: "after-the-backup", Action: audit.ActionGrantCreate, Outcome: audit.OutcomeSuccess}
	newerFile := filepath.Join(restored, "trustd", "v1", "audit", now.Format("2006/01/02"), newer.ID+".json")
	strayFile := filepath.Join(restored, "trustd", "v1", "people", "stray.json")
	for f, v := range map[string]any{newerFile: newer, strayFile: map[string]string{"name": "stray"}} {
		data, _ := json.Marshal(v)
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out := trustdCmd(t, "restore", "--data", restored, "--in", archive, "--force"); !strings.Contains(out, "Kept ") {
		t.Errorf("a forced restore over the same archive kept none of its audit records:\n%s", out)
	}
	if _, err := os.Stat(newerFile); err != nil {
		t.Errorf("--force removed an audit record newer than the archive: %v", err)
	}
	if _, err := os.Stat(strayFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--force left state the archive does not hold: %v", err)
	}

	// trustd on the restored state, with no admin password given: the
	// accounts come from the archive.
	td := startTrustdOn(t, restored, "127.0.0.1:0", "")

	t.Run("the targets verify from the original root", func(t *testing.T) {
		tok := grantAt(t, td.url, "admin", st.AdminPassword, "trustd", "")
		c, err := verify.New(verify.Config{TrustdURL: td.url, Root: root, CacheDir: t.TempDir(),
			Token: func(context.Context) (string, error) { return tok, nil }})
		if err != nil {
			t.Fatal(err)
		}
		got := mustResolve(t, c, "acme/app:v1", img.ManifestDigest)
		if got.Length != int64(len(img.Manifest)) {
			t.Errorf("acme/app:v1 has length %d, want %d", got.Length, len(img.Manifest))
		}
		mustNotResolve(t, c, "acme/app:v2", verify.ErrNotSigned)
		if _, err := c.Resolve(ctx, "acme/app:v1"); err != nil {
			t.Errorf("a second refresh against the restored trustd: %v", err)
		}
	})
	t.Run("people and robots log in with their old credentials", func(t *testing.T) {
		grantAt(t, td.url, "alice", password, "signet-registry", "repository:acme/app:pull")
		grantAt(t, td.url, robot.Name, robot.Secret, "signet-registry", "repository:acme/app:pull")
		if status := tokenStatus(t, td.url, "alice", password+"x", "signet-registry"); status != http.StatusUnauthorized {
			t.Errorf("a wrong password got %d, want 401", status)
		}
	})
	t.Run("the audit log is restored beside the records newer than the archive", func(t *testing.T) {
		tok := grantAt(t, td.url, "admin", st.AdminPassword, "trustd", "")
		req, _ := http.NewRequest(http.MethodGet, td.url+"/api/v1/audit?limit=1000&since=1h", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var page audit.Page
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/v1/audit: %d %v", resp.StatusCode, err)
		}
		var acme, kept bool
		for _, r := range page.Records {
			acme = acme || r.Action == audit.ActionOrgCreate && r.Org == "acme"
			kept = kept || r.ID == newer.ID
		}
		if !acme || !kept {
			t.Errorf("the restored log holds the archive's org.create of acme: %v, the newer record: %v", acme, kept)
		}
	})
	t.Run("tokens are signed with the same key", func(t *testing.T) {
		if a, b := get(t, st.Trustd+"/.well-known/jwks.json"), get(t, td.url+"/.well-known/jwks.json"); a != b || !strings.Contains(a, `"kid"`) {
			t.Errorf("the restored trustd's JWKS differs:\n%s\n%s", a, b)
		}
	})
}

// trustdCmd runs the trustd binary and fails t unless it succeeds.
func trustdCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := tryTrustdCmd(args...)
	if err != nil {
		t.Fatalf("trustd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func tryTrustdCmd(args ...string) (string, error) {
	cmd := exec.Command(trustdBin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// rewriteArchive returns the archive with the entry name changed: its content
// replaced by content (an empty one drops the entry), or, when content is nil,
// one byte of it altered, its size and the gzip kept valid.
func rewriteArchive(t *testing.T, archive []byte, name string, content []byte) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	found := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name == name {
			found = true
			switch {
			case content == nil:
				data = bytes.Clone(data)
				data[len(data)/2] ^= 0x01
			case len(content) == 0:
				continue
			default:
				data = content
			}
			hdr.Size = int64(len(data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	if !found {
		t.Fatalf("the archive has no entry %s", name)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// grantAt gets an access token from trustd at base for user with Basic auth,
// and fails t unless it gets one.
func grantAt(t *testing.T, base, user, password, service, scope string) string {
	t.Helper()
	status, tok := tokenAt(t, base, user, password, service, scope)
	if status != http.StatusOK || tok == "" {
		t.Fatalf("GET %s/token as %s: %d", base, user, status)
	}
	return tok
}

func tokenStatus(t *testing.T, base, user, password, service string) int {
	t.Helper()
	status, _ := tokenAt(t, base, user, password, service, "")
	return status
}

func tokenAt(t *testing.T, base, user, password, service, scope string) (int, string) {
	t.Helper()
	u := base + "/token?service=" + service
	if scope != "" {
		u += "&scope=" + scope
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	json.NewDecoder(resp.Body).Decode(&tr)
	return resp.StatusCode, tr.Token
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	return string(b)
}
