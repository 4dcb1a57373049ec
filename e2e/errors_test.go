package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The errors tests drive trustctl where a first hour goes wrong: a digest
// pinned instead of a tag, a typo, a repository not delegated, an org that
// does not exist, arguments the wrong way round, a Ctrl-C. Each failure must
// say what is wrong and what fixes it, exit with the code of README.md's
// table (13 only for the network), and refuse before uploading anything.

// ctlResult is one run of trustctl: its exit code and both outputs apart.
type ctlResult struct {
	code           int
	stdout, stderr string
}

func (r ctlResult) String() string {
	return "exit " + strconv.Itoa(r.code) + "\n--- stdout ---\n" + r.stdout + "\n--- stderr ---\n" + r.stderr
}

// ctlRun runs trustctl as the admin (SIGNET_PASSPHRASE set), with env added
// (a later variable wins), and returns what it did.
func (st *stack) ctlRun(t *testing.T, env []string, args ...string) ctlResult {
	t.Helper()
	cmd := exec.Command(trustctlBin, args...)
	cmd.Env = append([]string{
		"HOME=" + filepath.Dir(st.Home), "PATH=" + os.Getenv("PATH"), "SIGNET_HOME=" + st.Home,
		"SIGNET_PASSPHRASE=" + e2ePassphrase,
	}, env...)
	cmd.Dir = st.Home
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("trustctl %s: %v", strings.Join(args, " "), err)
	}
	return ctlResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// expect checks r's exit code and that its stderr holds each of want.
func (r ctlResult) expect(t *testing.T, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d:\n%s", r.code, code, r)
		return
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r)
		}
	}
}

// uploads is how many blob upload requests (POST, PATCH, PUT) the registry
// has answered, by its metrics.
func uploads(t *testing.T, metricsAddr string) float64 {
	t.Helper()
	n := 0.0
	for series, v := range scrapeMetrics(t, metricsAddr) {
		if strings.HasPrefix(series, "signet_registry_http_requests_total{") && strings.Contains(series, `route="upload"`) {
			n += v
		}
	}
	return n
}

func TestTrustctlErrorsAndExitCodes(t *testing.T) {
	t.Parallel()
	st := startStack(t, "--metrics-addr", "127.0.0.1:0")
	metrics := metricsAddrs(t, st.log, "registry")["registry"]
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "keys", "generate", "bob")
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")
	st.trustctl(t, "org", "delegate", "acme/gone", "--key", "alice")
	img := newImage(t, "errors-v1", newLayer(t, "errors/v1.bin", 32<<10))
	layout := writeLayout(t, img)
	st.trustctl(t, "push", layout, st.Addr+"/acme/app:v1", "--key", "alice")
	st.trustctl(t, "push", layout, st.Addr+"/acme/gone:v1", "--key", "alice")
	st.trustctl(t, "org", "undelegate", "acme/gone")
	ref := func(r string) string { return st.Addr + "/" + r }

	t.Run("a digest that a signed tag names is signed", func(t *testing.T) {
		r := st.ctlRun(t, nil, "verify", ref("acme/app@"+img.ManifestDigest), "--output", "json")
		var out struct {
			Verified   bool     `json:"verified"`
			Digest     string   `json:"digest"`
			SignedTags []string `json:"signedTags"`
			Code       int      `json:"code"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 || !out.Verified || out.Digest != img.ManifestDigest {
			t.Fatalf("verify by digest: %+v (%v):\n%s", out, err, r)
		}
		if len(out.SignedTags) != 1 || out.SignedTags[0] != "v1" {
			t.Errorf("verify by digest: signedTags %v, want [v1]", out.SignedTags)
		}
		dir := filepath.Join(t.TempDir(), "pulled")
		r = st.ctlRun(t, nil, "pull", ref("acme/app@"+img.ManifestDigest), dir)
		if r.code != 0 || !strings.Contains(r.stdout, "(signed as :v1)") {
			t.Fatalf("pull by digest:\n%s", r)
		}
		want := img.blobs()
		want[img.ManifestDigest] = img.Manifest
		sameBlobs(t, dir, want)
		// A digest no signed tag names is still not signed.
		other := newImage(t, "errors-other", newLayer(t, "errors/other.bin", 1024))
		st.ctlRun(t, nil, "verify", ref("acme/app@"+other.ManifestDigest)).
			expect(t, 10, "no signed tag or digest of acme/app is "+other.ManifestDigest, "its signed tags: v1")
	})

	t.Run("not signed says what is missing", func(t *testing.T) {
		r := st.ctlRun(t, nil, "verify", ref("acme/app:v2"))
		r.expect(t, 10, "acme/app has no tag v2 in the trust graph", "its signed tags: v1")
		if strings.Contains(r.stderr, "no role delegated") || strings.Count(r.stderr, "not signed") > 1 {
			t.Errorf("a tag typo reads like an attack, or stutters:\n%s", r)
		}
		st.ctlRun(t, nil, "verify", ref("acme/nodeleg:v1")).expect(t, 10, "acme/nodeleg is not delegated", "trustctl org delegate acme/nodeleg")
		st.ctlRun(t, nil, "verify", ref("nosuch/app:v1")).expect(t, 10, "organisation nosuch does not exist")
		st.ctlRun(t, nil, "verify", ref("acme/gone:v1")).expect(t, 10, "acme/gone is not delegated")
		// The registry says the same when a manifest is pushed to it.
		putDenied(t, st.admin(), "acme/gone", "v2", img.Manifest, "acme/gone is not delegated to any publisher key")
	})

	t.Run("a refused push uploads nothing and names the fix", func(t *testing.T) {
		fresh := newImage(t, "errors-fresh", newLayer(t, "errors/fresh.bin", 64<<10))
		src := writeLayout(t, fresh)
		before := uploads(t, metrics)
		st.ctlRun(t, nil, "push", src, ref("acme/nodeleg:v1"), "--key", "alice").
			expect(t, 1, "acme/nodeleg is not delegated", "trustctl org delegate acme/nodeleg --key KEY")
		st.ctlRun(t, nil, "push", src, ref("nosuch/app:v1"), "--key", "alice").
			expect(t, 1, "organisation nosuch does not exist", "trustctl org create nosuch")
		st.ctlRun(t, nil, "push", src, ref("acme/app:v2"), "--key", "bob").
			expect(t, 1, "key bob", "is not delegated for acme/app")
		r := st.ctlRun(t, []string{"SIGNET_PASSPHRASE=not-the-passphrase"}, "push", src, ref("acme/app:v2"), "--key", "alice")
		r.expect(t, 1, "wrong passphrase")
		r = st.ctlRun(t, nil, "push", src, ref("acme/app:v2"), "--key", "nobody")
		r.expect(t, 1, `no key "nobody"`, "trustctl keys generate nobody")
		if strings.Count(r.stderr, "nobody") != 2 || strings.Contains(r.stderr, "no such key") {
			t.Errorf("a missing key stutters:\n%s", r)
		}
		if n := uploads(t, metrics) - before; n != 0 {
			t.Errorf("the refused pushes made %v upload requests, want 0", n)
		}
		// The same push, allowed, uploads: the count above would have seen it.
		st.trustctl(t, "push", src, ref("acme/app:v2"), "--key", "alice")
		if n := uploads(t, metrics) - before; n == 0 {
			t.Error("the registry's metrics counted no upload for a push that uploaded")
		}
	})

	t.Run("local errors exit 1, the network 13, Ctrl-C 130", func(t *testing.T) {
		st.ctlRun(t, nil, "push", filepath.Join(t.TempDir(), "missing"), ref("acme/app:v3"), "--key", "alice").expect(t, 1, "does not exist")
		file := filepath.Join(t.TempDir(), "a-file")
		os.WriteFile(file, []byte("x"), 0o644)
		st.ctlRun(t, nil, "pull", ref("acme/app:v1"), file).expect(t, 1, "is not a directory")

		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := l.Addr().String()
		l.Close()
		st.ctlRun(t, []string{"SIGNET_HOME=" + t.TempDir()}, "trust", "add", closed, "--yes").expect(t, 13)

		// A registry that accepts connections and never answers: Ctrl-C.
		if code, stderr := interruptedVerify(t, st); code != 130 || !strings.Contains(stderr, "interrupted") {
			t.Errorf("trustctl verify interrupted: exit %d, want 130 saying so:\n%s", code, stderr)
		}
	})

	t.Run("a bad command line shows its usage", func(t *testing.T) {
		st.ctlRun(t, nil, "push", "acme/app", layout, "--key", "alice").
			expect(t, 1, "comes first", "Usage: trustctl push SRC HOST/ORG/REPO:TAG")
		st.ctlRun(t, nil, "push", layout).expect(t, 1, "accepts 2 arg(s), received 1", "Usage: trustctl push SRC")
		r := st.ctlRun(t, nil, "org", "lst")
		r.expect(t, 1, `unknown command "lst" for "trustctl org"`)
		if r.stdout != "" {
			t.Errorf("an unknown subcommand printed help:\n%s", r)
		}
		st.ctlRun(t, nil, "org", "delegat").expect(t, 1, "did you mean delegate?")
	})

	t.Run("trust add --fingerprint pins the expected root only", func(t *testing.T) {
		root, err := os.ReadFile(filepath.Join(st.Home, "trust", st.Addr, "root.json"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(root)
		fp := "SHA256:" + hex.EncodeToString(sum[:])
		wrong := "SHA256:" + strings.Repeat("0", 64)
		dir := filepath.Join(t.TempDir(), "signet")
		home := []string{"SIGNET_HOME=" + dir}
		pinned := filepath.Join(dir, "trust", st.Addr, "root.json")
		st.ctlRun(t, home, "trust", "add", st.Addr, "--fingerprint", wrong).expect(t, 1, "not pinned", fp, wrong)
		if _, err := os.Stat(pinned); err == nil {
			t.Fatal("trust add pinned a root whose fingerprint is not the expected one")
		}
		st.ctlRun(t, home, "trust", "add", st.Addr, "--fingerprint", fp).expect(t, 0)
		if b, err := os.ReadFile(pinned); err != nil || !bytes.Equal(b, root) {
			t.Fatalf("trust add --fingerprint pinned %d bytes (%v), want the root", len(b), err)
		}
	})

	t.Run("errors are JSON on stderr under --output json", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"push", filepath.Join(t.TempDir(), "missing"), ref("acme/app:v3"), "--key", "alice"}, 1, "does not exist"},
			{[]string{"verify", ref("acme/app:v9")}, 10, "has no tag v9"},
			{[]string{"org", "lst"}, 1, "unknown command"},
		} {
			r := st.ctlRun(t, nil, append(c.args, "--output", "json")...)
			var e struct {
				Error string `json:"error"`
				Code  int    `json:"code"`
			}
			if err := json.Unmarshal([]byte(r.stderr), &e); err != nil || r.code != c.code || e.Code != c.code || !strings.Contains(e.Error, c.want) {
				t.Errorf("trustctl %s --output json: %+v (%v), want code %d and an error saying %q:\n%s", strings.Join(c.args, " "), e, err, c.code, c.want, r)
			}
		}
	})
}

// interruptedVerify runs trustctl verify against a registry that accepts
// connections and never answers, sends it SIGINT once it is waiting, and
// returns its exit code and stderr.
func interruptedVerify(t *testing.T, st *stack) (int, string) {
	t.Helper()
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	cmd := exec.Command(trustctlBin, "verify", hang.Addr().String()+"/acme/app:v1")
	cmd.Env = []string{"HOME=" + filepath.Dir(st.Home), "SIGNET_HOME=" + st.Home}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("trustctl verify did not stop within 10s of SIGINT")
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}
