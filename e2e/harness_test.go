package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/testlog"
	"github.com/signet-oss/signet/internal/testtools"
)

// registryBin is the registry binary under test, built once by TestMain.
var registryBin string

// reference is true when the tests run against the reference registry.
var reference = os.Getenv("SIGNET_E2E_REFERENCE") == "1"

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	// Registries come and go across tests, and a port a killed one used may be
	// bound again by a new one: a kept-alive connection to the old process would
	// fail the next non-idempotent request on it with a reset. No keep-alive for
	// the default clients of this package.
	http.DefaultTransport.(*http.Transport).DisableKeepAlives = true
	tmp, err := os.MkdirTemp("", "signet-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	binDir = tmp
	if reference {
		registryBin, err = testtools.Path("distribution-registry")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: installing the reference registry:", err)
			return 1
		}
	} else {
		registryBin = filepath.Join(tmp, "registry")
		build := exec.Command("go", goBuildArgs(registryBin, "./cmd/registry")...)
		build.Dir = ".."
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/registry: %v\n%s", err, out)
			return 1
		}
		buildStackBinaries()
	}
	code := m.Run()
	stopDockerd()
	return code
}

// registry is one running registry process on its storage.
type registry struct {
	t     *testing.T
	args  []string
	env   []string
	store store
	// Addr is host:port, as parsed from the registry's start-up log line.
	Addr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *testlog.Buffer
}

// startRegistry starts the registry under test on a fresh data directory; the process
// is killed and waited for when the test ends, and its log is printed if the test
// failed.
func startRegistry(t *testing.T, args ...string) *registry {
	t.Helper()
	return startRegistryOn(t, newFilesystemStore(t), args...)
}

// startRegistryOn is startRegistry on the given storage; several registries started
// on the same store are replicas sharing its state.
func startRegistryOn(t *testing.T, st store, args ...string) *registry {
	t.Helper()
	return startRegistryEnv(t, st, nil, args...)
}

// startRegistryEnv is startRegistryOn with env added to the registry's
// environment (SIGNET_REGISTRY_PASSWORD).
func startRegistryEnv(t *testing.T, st store, env []string, args ...string) *registry {
	t.Helper()
	r := &registry{t: t, args: args, env: env, store: st, log: &testlog.Buffer{}}
	r.start()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			if p := problems(r.log, 40); p != "" {
				t.Logf("registry warnings and errors (%s):\n%s", r.Addr, p)
			}
			t.Logf("registry log (%s):\n%s", r.Addr, r.log.Tail(60))
		}
	})
	return r
}

var (
	signetListening    = regexp.MustCompile(`msg="registry listening" addr=(\S+)`)
	referenceListening = regexp.MustCompile(`listening on (\S+?:\d+)`)
)

func (r *registry) start() {
	t := r.t
	t.Helper()
	var args []string
	if reference {
		cfg := filepath.Join(t.TempDir(), "config.yml")
		conf := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
%s  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
  secret: e2e-test-secret-not-for-production
`, r.store.referenceConfig())
		if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"serve", cfg}, r.args...)
	} else {
		args = append(append([]string{"serve", "--addr", "127.0.0.1:0"}, r.store.flags()...), r.args...)
	}
	cmd := exec.Command(registryBin, args...)
	cmd.Env = append(append(os.Environ(), r.store.env()...), r.env...)
	cmd.Stdout = r.log
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s %s: %v", registryBin, strings.Join(args, " "), err)
	}
	done := make(chan struct{})
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Text()
			r.log.WriteString(line + "\n")
			if found {
				continue
			}
			re := signetListening
			if reference {
				re = referenceListening
			}
			if m := re.FindStringSubmatch(line); m != nil {
				found = true
				addrc <- strings.Trim(m[1], `"`)
			}
		}
		io.Copy(r.log, stderr)
		cmd.Wait()
		close(done)
	}()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	select {
	case addr := <-addrc:
		r.Addr = addr
	case <-done:
		t.Fatalf("registry %s exited before listening:\n%s", strings.Join(args, " "), r.log.Tail(50))
	case <-time.After(30 * time.Second):
		r.stop()
		t.Fatalf("registry did not log its address within 30s:\n%s", r.log.Tail(50))
	}
	r.waitReady()
}

// waitReady polls GET /v2/ until it answers 200 (401 when token auth is on).
func (r *registry) waitReady() {
	t := r.t
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(r.URL("/v2/"))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return
			}
			last = fmt.Sprintf("%s: %s", resp.Status, body)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s never answered 200; last: %s", r.URL("/v2/"), last)
}

// URL returns the registry's URL for path.
func (r *registry) URL(path string) string { return "http://" + r.Addr + path }

// kill sends SIGKILL to the registry and waits for it to exit, as a crash would.
func (r *registry) kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

func (r *registry) stop() { r.kill() }

// restart kills the registry (kill -9) and starts it again on the same data directory.
// The new process gets a new OS-chosen port.
func (r *registry) restart() {
	r.t.Helper()
	r.kill()
	r.log.WriteString("---- restart ----\n")
	r.start()
}

// problems returns the first n lines of log logged at warn or error level,
// wherever they are: the cause of a failure is often long before the tail.
func problems(log *testlog.Buffer, n int) string {
	var out []string
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") {
			if len(l) > 1000 {
				l = l[:1000] + "..."
			}
			if out = append(out, l); len(out) == n {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// tool runs one external client with a fixed environment and working directory.
type tool struct {
	path string
	env  []string
	dir  string
}

// newTool returns the named client, installed by testtools, with HOME and the XDG
// directories in a temporary directory of the test, so parallel tests share no
// client state.
func newTool(t *testing.T, name string, env ...string) *tool {
	t.Helper()
	home := t.TempDir()
	base := []string{
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"XDG_RUNTIME_DIR=" + filepath.Join(home, "run"),
		"PATH=" + os.Getenv("PATH"),
		"TMPDIR=" + os.TempDir(),
	}
	os.MkdirAll(filepath.Join(home, "run"), 0o700)
	return &tool{path: testtools.MustPath(t, name), env: append(base, env...), dir: home}
}

// cmdError carries a failed command line and its combined output.
type cmdError struct {
	cmd string
	err error
	out string
}

func (e *cmdError) Error() string {
	return fmt.Sprintf("%s: %v\n--- output ---\n%s", e.cmd, e.err, e.out)
}

// try runs the tool and returns its stdout, or an error with the command line and the
// combined output.
func (tl *tool) try(args ...string) (string, error) { return tl.tryInput("", args...) }

// tryInput is try with input on the tool's stdin (a password for --password-stdin).
func (tl *tool) tryInput(input string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tl.path, args...)
	cmd.Env = tl.env
	cmd.Dir = tl.dir
	cmd.Stdin = strings.NewReader(input)
	var stdout, combined bytes.Buffer
	cmd.Stdout = io.MultiWriter(&stdout, &combined)
	cmd.Stderr = &combined
	err := cmd.Run()
	line := filepath.Base(tl.path) + " " + strings.Join(args, " ")
	if err != nil {
		return stdout.String(), &cmdError{cmd: line, err: err, out: combined.String()}
	}
	return stdout.String(), nil
}

// run is try that fails the test, printing the command and its output.
func (tl *tool) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := tl.try(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mustFail runs a command that is expected to fail, and fails the test if it succeeds.
func (tl *tool) mustFail(t *testing.T, args ...string) string {
	t.Helper()
	out, err := tl.try(args...)
	var ce *cmdError
	if !errors.As(err, &ce) {
		t.Fatalf("%s %s succeeded, want a failure; output:\n%s", filepath.Base(tl.path), strings.Join(args, " "), out)
	}
	return ce.out
}
