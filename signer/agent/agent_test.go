package agent

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/signet-oss/signet/signer"
)

const passphrase = "correct horse"

// Helper modes of the test binary: a client run as another user, and an
// agent in a process of its own to kill.
func TestMain(m *testing.M) {
	switch {
	case os.Getenv("AGENT_TEST_CLIENT") != "":
		c, err := Dial(os.Getenv("AGENT_TEST_CLIENT"))
		if err != nil {
			os.Stdout.WriteString("dial: " + err.Error())
			os.Exit(2)
		}
		_, err = c.List()
		os.Stdout.WriteString("list: " + errString(err))
		os.Exit(0)
	case os.Getenv("AGENT_TEST_SERVE") != "":
		if _, err := Harden(); err != nil {
			panic(err)
		}
		a, err := Listen(Config{Socket: os.Getenv("AGENT_TEST_SERVE"), Open: storeOpener(os.Getenv("AGENT_TEST_KEYS"), nil)})
		if err != nil {
			panic(err)
		}
		if err := a.RemoveOnDeath(); err != nil {
			panic(err)
		}
		a.Serve(context.Background())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// syncBuffer is a log the test reads while the agent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func storeOpener(dir string, unlocks *atomic.Int64) func([]byte) signer.KeyStore {
	return func(p []byte) signer.KeyStore {
		p = append([]byte{}, p...)
		return signer.NewFileKeyStore(dir, func(bool) ([]byte, error) {
			if unlocks != nil {
				unlocks.Add(1)
			}
			return p, nil
		})
	}
}

// keyDir makes a key store with the key alice.
func keyDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	ks := signer.NewFileKeyStore(dir, func(bool) ([]byte, error) { return []byte(passphrase), nil })
	if _, err := ks.Generate(context.Background(), "alice", signer.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	return dir
}

type running struct {
	a       *Agent
	log     *syncBuffer
	unlocks *atomic.Int64
	keys    string
}

func start(t *testing.T, keys string, idle time.Duration) *running {
	t.Helper()
	r := &running{log: &syncBuffer{}, unlocks: &atomic.Int64{}, keys: keys}
	sock := filepath.Join(t.TempDir(), "agent", "sock")
	a, err := Listen(Config{Socket: sock, Open: storeOpener(keys, r.unlocks), IdleTimeout: idle, Log: slog.New(slog.NewTextHandler(r.log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	r.a = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func dial(t *testing.T, path string) *Client {
	t.Helper()
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestAgentUnlocksOnceAndSignsThroughTheKeyStore(t *testing.T) {
	r := start(t, keyDir(t), time.Hour)
	if fi, err := os.Stat(filepath.Dir(r.a.Socket())); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory: %v %v, want mode 0700", fi.Mode(), err)
	}
	if fi, err := os.Stat(r.a.Socket()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v, want mode 0600", fi.Mode(), err)
	}
	if _, err := dial(t, r.a.Socket()).Add("alice", []byte(passphrase)); err != nil {
		t.Fatal(err)
	}
	t.Setenv(SocketEnv, r.a.Socket())
	var asked atomic.Int64
	ks := Wrap(signer.NewFileKeyStore(r.keys, func(bool) ([]byte, error) { asked.Add(1); return []byte(passphrase), nil }))
	for i := range 100 {
		k, err := ks.Load(context.Background(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		SigningFor(k, "repo-test")
		d := sha256.Sum256([]byte{byte(i)})
		sig, err := k.Signer.Sign(nil, d[:], cryptoSHA256)
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.VerifyASN1(k.Signer.Public().(*ecdsa.PublicKey), d[:], sig) {
			t.Fatal("the agent's signature does not verify with the key's public half")
		}
	}
	if n := r.unlocks.Load() + asked.Load(); n != 1 {
		t.Fatalf("100 signatures unlocked the key %d times, want once (the add)", n)
	}
	if n := strings.Count(r.log.String(), `msg="signing agent signed" key=alice`); n != 100 {
		t.Fatalf("%d signatures logged, want 100:\n%s", n, r.log.String())
	}
	if !strings.Contains(r.log.String(), "for=repo-test digest=") {
		t.Fatalf("the log does not say what a signature was for:\n%s", r.log.String())
	}
}

func TestAgentLocksOnCommandAndWhenIdleAndThenRefuses(t *testing.T) {
	keys := keyDir(t)
	r := start(t, keys, time.Hour)
	c := dial(t, r.a.Socket())
	if _, err := c.Add("alice", []byte(passphrase)); err != nil {
		t.Fatal(err)
	}
	k, err := c.Key("alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Lock(); err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("x"))
	if _, err := k.Signer.Sign(nil, d[:], cryptoSHA256); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("signing after lock: %v, want ErrNotHeld", err)
	}
	if _, err := c.Key("alice"); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("the key after lock: %v, want ErrNotHeld", err)
	}

	idle := start(t, keys, 50*time.Millisecond)
	c = dial(t, idle.a.Socket())
	if _, err := c.Add("alice", []byte(passphrase)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		held, err := c.List()
		if err != nil {
			t.Fatal(err)
		}
		if len(held) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent still holds its key long after its idle timeout")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := c.Key("alice"); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("after the idle timeout: %v, want ErrNotHeld", err)
	}
	if !strings.Contains(idle.log.String(), "signing agent locked") {
		t.Fatalf("the idle lock was not logged:\n%s", idle.log.String())
	}
}

func TestAgentRefusesAnotherUsersProcess(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("running a process as another uid needs root")
	}
	r := start(t, keyDir(t), time.Hour)
	// Open the directory and socket to everyone, so that only the peer
	// credential check can refuse.
	os.Chmod(filepath.Dir(r.a.Socket()), 0o755)
	os.Chmod(r.a.Socket(), 0o666)
	for p := filepath.Dir(filepath.Dir(r.a.Socket())); p != "/" && p != "."; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.Chmod(p, fi.Mode().Perm()|0o011)
		}
	}
	bin := filepath.Join(must(os.MkdirTemp("", "agent-test-")), "agent.test")
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(bin)) })
	os.Chmod(filepath.Dir(bin), 0o755)
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"AGENT_TEST_CLIENT=" + r.a.Socket()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the client as uid 65534: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "refused: the signing agent serves its own user only") {
		t.Fatalf("uid 65534's request: %s, want a refusal", out)
	}
	if !strings.Contains(r.log.String(), `msg="signing agent refused a connection" uid=65534`) {
		t.Fatalf("the refusal was not the peer check's, or not logged:\n%s", r.log.String())
	}
	// The agent's own user is still served.
	if _, err := dial(t, r.a.Socket()).List(); err != nil {
		t.Fatal(err)
	}
}

func TestAKilledAgentLeavesNothingOnDisk(t *testing.T) {
	keys := keyDir(t)
	base := t.TempDir()
	sock := filepath.Join(base, "agent", "sock")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "AGENT_TEST_SERVE="+sock, "AGENT_TEST_KEYS="+keys)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var c *Client
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if c, err = Dial(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal(err)
		}
	}
	defer c.Close()
	if _, err := c.Add("alice", []byte(passphrase)); err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Lstat(filepath.Dir(sock)); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the socket directory %s outlived the killed agent", filepath.Dir(sock))
		}
	}
	entries, err := os.ReadDir(base)
	if err != nil || len(entries) != 0 {
		t.Fatalf("left behind in %s: %v %v", base, entries, err)
	}
	if files, _ := filepath.Glob(filepath.Join(keys, "*")); len(files) != 2 {
		t.Fatalf("the key store holds %v, want alice's .key and .pub only", files)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

var cryptoSHA256 = crypto.SHA256
