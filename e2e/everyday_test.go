package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/trustnames"
)

// TestEverydayCommands drives the commands of a working day against one
// `trustctl up`: who am I, what orgs, members and users there are, a
// repository's tags and their signatures, a push that names the repository
// and publishes nothing new when nothing changed, the newest audit records,
// shell completion, the pinned roots, a push resumed after Ctrl-C, and logging
// out. The subtests share the stack and run in order.
func TestEverydayCommands(t *testing.T) {
	t.Parallel()
	st := startStack(t)
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "keys", "generate", "bob")
	st.addUser(t, "carol", "acme", "publisher")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")
	st.trustctl(t, "org", "delegate", "acme/stg", "--key", "alice", "--key", "bob", "--threshold", "2")

	t.Run("keys export --output json", func(t *testing.T) { everydayKeysExport(t, st) })
	t.Run("whoami, org list, org members, user list", func(t *testing.T) { everydayListings(t, st) })
	var digest string
	t.Run("a push names the repository; the same push again publishes nothing", func(t *testing.T) { digest = everydayRepush(t, st) })
	t.Run("tags: signed by which keys, staged ones' progress", func(t *testing.T) { everydayTags(t, st, digest) })
	t.Run("audit: the newest records, one JSON document, repositories by name", func(t *testing.T) { everydayAudit(t, st) })
	t.Run("shell completion of keys, orgs and --output", func(t *testing.T) { everydayCompletion(t, st) })
	t.Run("trust list and remove", func(t *testing.T) { everydayTrustList(t, st) })
	t.Run("a push interrupted by Ctrl-C resumes its upload", func(t *testing.T) { everydayResume(t, st) })
	t.Run("logout", func(t *testing.T) { everydayLogout(t, st) })
}

// jsonOf runs trustctl with --output json and decodes what it prints into v.
func (st *stack) jsonOf(t *testing.T, v any, args ...string) {
	t.Helper()
	out := st.trustctl(t, append(args, "--output", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("trustctl %s --output json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func everydayKeysExport(t *testing.T, st *stack) {
	var key struct{ Name, ID, PublicKey string }
	st.jsonOf(t, &key, "keys", "export", "alice")
	if key.Name != "alice" || len(key.ID) != 64 || !strings.HasPrefix(key.PublicKey, "-----BEGIN PUBLIC KEY-----") {
		t.Errorf("keys export alice --output json = %+v, want its name, ID and PEM", key)
	}
}

func everydayListings(t *testing.T, st *stack) {
	var me struct {
		Name, Kind string
		Admin      bool
	}
	st.jsonOf(t, &me, "whoami")
	if me.Name != "admin" || me.Kind != "person" || !me.Admin {
		t.Errorf("whoami = %+v, want admin, a person, an admin", me)
	}
	if out := st.trustctl(t, "whoami"); !strings.HasPrefix(out, "admin (person, admin) at "+st.Addr) {
		t.Errorf("whoami said %q", out)
	}
	var orgs []struct {
		Name    string
		Members map[string]string
	}
	st.jsonOf(t, &orgs, "org", "list")
	if len(orgs) != 1 || orgs[0].Name != "acme" || orgs[0].Members["carol"] != "publisher" {
		t.Errorf("org list = %+v, want acme with carol a publisher", orgs)
	}
	var members struct{ Members map[string]string }
	st.jsonOf(t, &members, "org", "members", "acme")
	if members.Members["carol"] != "publisher" {
		t.Errorf("org members acme = %+v, want carol a publisher", members)
	}
	var users []struct {
		Name  string
		Admin bool
		Orgs  map[string]string
	}
	st.jsonOf(t, &users, "user", "list")
	var carol, admin bool
	for _, u := range users {
		carol = carol || u.Name == "carol" && !u.Admin && u.Orgs["acme"] == "publisher"
		admin = admin || u.Name == "admin" && u.Admin
	}
	if !carol || !admin {
		t.Errorf("user list = %+v, want admin (an admin) and carol (publisher of acme)", users)
	}
}

func everydayRepush(t *testing.T, st *stack) (digest string) {
	role := trustnames.RoleForRepo("acme/app")
	version := func(t *testing.T) int64 {
		t.Helper()
		s, err := st.verifier(t, st.pinnedRoot(t), nil).Walk(context.Background(), "acme/app:v1")
		if err != nil {
			t.Fatal(err)
		}
		return s.Version(role)
	}
	layout := writeLayout(t, newImage(t, "everyday", newLayer(t, "f.bin", 4096)))
	out := st.trustctl(t, "push", layout, st.Addr+"/acme/app:v1", "--key", "alice")
	if !strings.Contains(out, "(acme/app v") || strings.Contains(out, "repo-") {
		t.Errorf("push said %q, want the repository named, not its role", out)
	}
	before := version(t)
	out = st.trustctl(t, "push", layout, st.Addr+"/acme/app:v1", "--key", "alice")
	if !strings.Contains(out, "already published") {
		t.Errorf("the same push again said %q, want it already published", out)
	}
	if after := version(t); after != before {
		t.Errorf("the same push again moved %s from v%d to v%d", role, before, after)
	}
	var res struct {
		Digest string
		Signed struct{ Unchanged bool }
	}
	st.jsonOf(t, &res, "push", layout, st.Addr+"/acme/app:v1", "--key", "alice")
	if !res.Signed.Unchanged {
		t.Errorf("push --output json: %+v, want signed.unchanged", res)
	}
	digest = res.Digest
	return digest
}

func everydayTags(t *testing.T, st *stack, digest string) {
	type tags struct {
		Version   int64
		Threshold int
		Tags      []struct {
			Tag, Digest, Status   string
			SignedBy              []string
			Signatures, Threshold int
		}
	}
	var app tags
	st.jsonOf(t, &app, "tags", st.Addr+"/acme/app")
	if len(app.Tags) != 1 || app.Tags[0].Tag != "v1" || app.Tags[0].Digest != digest || app.Tags[0].Status != "signed" ||
		strings.Join(app.Tags[0].SignedBy, ",") != "alice" || app.Version == 0 {
		t.Errorf("tags acme/app = %+v, want v1 %s signed by alice", app, digest)
	}
	st.trustctl(t, "push", writeLayout(t, newImage(t, "staged", newLayer(t, "g.bin", 2048))), st.Addr+"/acme/stg:v1", "--key", "alice")
	var stg tags
	st.jsonOf(t, &stg, "tags", st.Addr+"/acme/stg")
	if len(stg.Tags) != 1 || stg.Tags[0].Status != "staged" || stg.Tags[0].Signatures != 1 || stg.Tags[0].Threshold != 2 {
		t.Errorf("tags acme/stg = %+v, want v1 staged, 1 of 2", stg)
	}
	if out := st.trustctl(t, "tags", st.Addr+"/acme/stg"); !strings.Contains(out, "staged (1 of 2)") {
		t.Errorf("tags acme/stg said %q", out)
	}
}

func everydayAudit(t *testing.T, st *stack) {
	var all, newest []audit.Record
	st.jsonOf(t, &all, "audit", "--since", "10m", "--limit", "1000")
	st.jsonOf(t, &newest, "audit", "--since", "10m", "--limit", "2")
	if len(all) < 3 || len(newest) != 2 || newest[0].ID != all[len(all)-2].ID || newest[1].ID != all[len(all)-1].ID {
		t.Fatalf("audit --limit 2: %d records, want the last 2 of the %d", len(newest), len(all))
	}
	if out := st.trustctl(t, "audit", "--since", "10m", "--repo", "acme/app"); strings.Contains(out, "repo-") || !strings.Contains(out, "acme/app v") {
		t.Errorf("audit names a role by its hash, or no version by its repository:\n%s", out)
	}
}

func everydayCompletion(t *testing.T, st *stack) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"push", "./oci", st.Addr + "/acme/app:v2", "--key", ""}, []string{"alice", "bob"}},
		{[]string{"keys", "export", ""}, []string{"alice", "bob"}},
		{[]string{"org", "members", ""}, []string{"acme"}},
		{[]string{"org", "delegate", ""}, []string{"acme/"}},
		{[]string{"token", "list", "--org", ""}, []string{"acme"}},
		{[]string{"whoami", "--output", ""}, []string{"text", "json"}},
	} {
		out := st.trustctl(t, append([]string{"__complete"}, c.args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for _, w := range c.want {
			if !slices.Contains(lines, w) {
				t.Errorf("completing trustctl %s: %q, want %s among them", strings.Join(c.args, " "), lines, w)
			}
		}
	}
	if out := st.trustctl(t, "completion", "bash"); !strings.Contains(out, "__start_trustctl") {
		t.Errorf("completion bash printed no bash completion script")
	}
}

func everydayTrustList(t *testing.T, st *stack) {
	sum := sha256.Sum256(st.pinnedRoot(t))
	var pins []struct{ Registry, Fingerprint string }
	st.jsonOf(t, &pins, "trust", "list")
	if len(pins) != 1 || pins[0].Registry != st.Addr || pins[0].Fingerprint != "SHA256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("trust list = %+v, want %s with SHA256:%x", pins, st.Addr, sum)
	}
	st.trustctl(t, "trust", "remove", st.Addr)
	st.jsonOf(t, &pins, "trust", "list")
	if len(pins) != 0 {
		t.Errorf("trust list after remove = %+v, want none", pins)
	}
	if out := st.trustctlFails(t, "verify", st.Addr+"/acme/app:v1"); !strings.Contains(out, "trust add") {
		t.Errorf("verify without a pinned root said %q", out)
	}
	st.trustctlFails(t, "trust", "remove", st.Addr)
}

func everydayResume(t *testing.T, st *stack) {
	st.trustctl(t, "trust", "add", st.Addr, "--yes")
	big := newLayer(t, "big.bin", 8<<20)
	dir := writeLayout(t, newImage(t, "interrupted", big))
	blob := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(big.Digest, "sha256:"))
	// The layer comes through a pipe, so the push is interrupted after
	// the bytes the test chose to let through.
	os.Remove(blob)
	if err := syscall.Mkfifo(blob, 0o600); err != nil {
		t.Fatal(err)
	}
	push := exec.Command(trustctlBin, "push", dir, st.Addr+"/acme/app:big", "--key", "alice")
	push.Env = []string{"HOME=" + filepath.Dir(st.Home), "PATH=" + os.Getenv("PATH"), "SIGNET_HOME=" + st.Home, "SIGNET_PASSPHRASE=" + e2ePassphrase}
	var out bytes.Buffer
	push.Stdout, push.Stderr = &out, &out
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	pipe, err := os.OpenFile(blob, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	const sent = 3 << 20
	if _, err := pipe.Write(big.Blob[:sent]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the registry takes in what was read
	push.Process.Signal(os.Interrupt)
	pipe.Close()
	if err := push.Wait(); err == nil {
		t.Fatalf("the interrupted push succeeded:\n%s", out.String())
	}
	os.Remove(blob)
	if err := os.WriteFile(blob, big.Blob, 0o644); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Blobs struct{ Uploaded, Bytes int }
	}
	st.jsonOf(t, &res, "push", dir, st.Addr+"/acme/app:big", "--key", "alice")
	if res.Blobs.Bytes <= 0 || res.Blobs.Bytes > len(big.Blob)-sent/2 {
		t.Errorf("the push run again sent %d bytes of the %d-byte layer after %d went up: want only what the registry lacked\n%s",
			res.Blobs.Bytes, len(big.Blob), sent, out.String())
	}
	st.trustctl(t, "verify", st.Addr+"/acme/app:big")
}

func everydayLogout(t *testing.T, st *stack) {
	if out := st.trustctl(t, "logout"); !strings.Contains(out, "Logged out of "+st.Addr) {
		t.Errorf("logout said %q", out)
	}
	if out := st.trustctlFails(t, "whoami"); !strings.Contains(out, "not logged in") {
		t.Errorf("whoami after logout said %q", out)
	}
}
