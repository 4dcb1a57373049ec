package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var agentExports = regexp.MustCompile(`SIGNET_AGENT_SOCK=(\S+); export SIGNET_AGENT_SOCK;\s+SIGNET_AGENT_PID=(\d+);`)

// TestSigningAgent: keys unlocked once in `trustctl agent`, then push and sign
// with no passphrase at all (the one given is wrong), every signature in the
// agent's log; after agent lock the same push fails.
func TestSigningAgent(t *testing.T) {
	t.Parallel()
	st := startStack(t)
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")

	logPath := filepath.Join(t.TempDir(), "agent.log")
	out := st.trustctl(t, "agent", "start", "--log", logPath)
	m := agentExports.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("agent start printed %q, want the shell lines that export its socket", out)
	}
	sock := m[1]
	pid, _ := strconv.Atoi(m[2])
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGTERM) })
	withAgent := []string{"SIGNET_AGENT_SOCK=" + sock}
	if code, out := st.trustctlCode(t, withAgent, "agent", "add", "alice"); code != 0 {
		t.Fatalf("agent add: %d %s", code, out)
	}
	// From here the passphrase is wrong: only the agent can sign.
	noPass := append(withAgent, "SIGNET_PASSPHRASE=wrong")
	dir := filepath.Join(t.TempDir(), "oci")
	img := newImage(t, "agent", newLayer(t, "a", 1<<10))
	writeOCILayout(t, dir, "", img)
	if code, out := st.trustctlCode(t, noPass, "push", dir, st.Addr+"/acme/app:v1", "--key", "alice"); code != 0 {
		t.Fatalf("push through the agent: %d %s", code, out)
	}
	if code, out := st.trustctlCode(t, noPass, "sign", st.Addr+"/acme/app:v2", "--key", "alice", "--digest", img.ManifestDigest); code != 0 || !strings.Contains(out, "Wrote the cosign signature") {
		t.Fatalf("sign --digest through the agent: %d %s", code, out)
	}
	st.verifyJSON(t, nil, "acme/app:v1", 0)
	log, _ := os.ReadFile(logPath)
	for _, want := range []string{
		`msg="signing agent signed" key=alice`,
		"for=\"repo-",
		"for=\"" + st.Addr + "/acme/app@" + img.ManifestDigest,
	} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the agent's log lacks %q:\n%s", want, log)
		}
	}

	if code, out := st.trustctlCode(t, withAgent, "agent", "lock"); code != 0 {
		t.Fatalf("agent lock: %d %s", code, out)
	}
	if code, out := st.trustctlCode(t, noPass, "sign", st.Addr+"/acme/app:v3", "--key", "alice", "--digest", img.ManifestDigest); code == 0 || !strings.Contains(out, "wrong passphrase") {
		t.Fatalf("sign after agent lock: %d %s, want the key store's wrong passphrase", code, out)
	}

	// A stopped agent removes its socket and its directory.
	syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Lstat(filepath.Dir(sock)); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s outlived the agent", filepath.Dir(sock))
		}
	}
}
