package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/testlog"
	"github.com/signet-oss/signet/internal/testtools"
)

// TestReadmeTryIt follows README.md's "Try it" as a newcomer would: it runs
// the fenced blocks marked `<!-- e2e: try-it-up -->` (make run, left running)
// and `<!-- e2e: try-it -->` (the commands of the other shell), read from
// README.md at test time, command by command as written. Only what must
// differ is given, through the environment the README itself uses: the
// addresses (REGISTRY_ADDR, TRUSTD_ADDR), the data directory (DATA), a HOME
// of the test's, ALICE_PASSWORD, and the ./image-layout the README says how
// to get. A command whose comment says DENIED must fail, saying DENIED; every
// other one must succeed.
func TestReadmeTryIt(t *testing.T) {
	t.Parallel()
	if reference {
		t.Skip("the reference registry has no token service")
	}
	if trustctlErr != nil {
		t.Fatal(trustctlErr)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	up := readmeBlocks(t, string(readme), "try-it-up")
	commands := readmeBlocks(t, string(readme), "try-it")
	if len(up) != 1 || len(commands) == 0 {
		t.Fatalf("README.md marks %d try-it-up blocks (want 1) and %d try-it blocks", len(up), len(commands))
	}

	work := t.TempDir()
	env := readmeEnv(t, work)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}

	// The first shell: make run, in the checkout, until the test ends.
	log := &testlog.Buffer{}
	upCmd := exec.Command("bash", "-c", strings.Join(up[0], "\n"))
	upCmd.Dir, upCmd.Env, upCmd.Stderr = root, env, log
	upCmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := upCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := upCmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "Logged in as") || strings.HasPrefix(sc.Text(), "Not logged in") {
				select {
				case ready <- sc.Text():
				default:
				}
			}
		}
		upCmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-upCmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-upCmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("make run:\n%s", log.Tail(60))
		}
	})
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "Logged in as admin") {
			t.Fatalf("make run did not log in as admin: %q", line)
		}
	case <-done:
		t.Fatalf("make run exited:\n%s", log.Tail(60))
	case <-time.After(3 * time.Minute):
		t.Fatalf("make run was not up within 3 minutes:\n%s", log.Tail(60))
	}

	// The other shell's $PWD/bin is the checkout's, which make run built.
	if err := os.Symlink(filepath.Join(root, "bin"), filepath.Join(work, "bin")); err != nil {
		t.Fatal(err)
	}
	// What the README says to get first: an image, as an OCI layout.
	writeOCILayout(t, filepath.Join(work, "image-layout"), "", newImage(t, "readme", newLayer(t, "readme.bin", 8<<10)))

	// The other shell: every command as written, in one shell, so that its
	// exports carry over; each is checked as it runs.
	var script strings.Builder
	script.WriteString("set -u\n")
	ran := 0
	for _, block := range commands {
		for _, line := range block {
			cmd := stripComment(line)
			if cmd == "" {
				continue
			}
			ran++
			quoted := strings.ReplaceAll(line, "'", `'\''`)
			if strings.Contains(line, "# DENIED") {
				fmt.Fprintf(&script, "if out=$(%s 2>&1); then printf '%%s\\n' \"$out\"; echo 'README: succeeded, want DENIED: %s' >&2; exit 1; fi\n", cmd, quoted)
				fmt.Fprintf(&script, "printf '%%s\\n' \"$out\" | grep -q DENIED || { printf '%%s\\n' \"$out\"; echo 'README: failed without saying DENIED: %s' >&2; exit 1; }\n", quoted)
				continue
			}
			fmt.Fprintf(&script, "%s || { echo 'README: failed: %s' >&2; exit 1; }\n", cmd, quoted)
		}
	}
	if ran < 10 {
		t.Fatalf("only %d commands in the try-it blocks:\n%s", ran, script.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "bash", "-c", script.String())
	sh.Dir, sh.Env = work, env
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("README's try-it commands: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(work, "pulled", "index.json")); err != nil {
		t.Errorf("trustctl pull wrote no layout in ./pulled: %v", err)
	}
}

// readmeBlocks returns the lines of each fenced block that follows a marker
// `<!-- e2e: NAME ... -->`.
func readmeBlocks(t *testing.T, readme, name string) [][]string {
	t.Helper()
	var blocks [][]string
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		f := strings.Fields(lines[i])
		if len(f) < 4 || f[0] != "<!--" || f[1] != "e2e:" || f[2] != name || f[len(f)-1] != "-->" {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			t.Fatalf("README.md line %d: the marker %q is not followed by a fenced block", i+1, lines[i])
		}
		var block []string
		for i += 2; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			block = append(block, lines[i])
		}
		blocks = append(blocks, block)
	}
	return blocks
}

// stripComment drops a shell comment (" # ...") and surrounding space.
func stripComment(line string) string {
	if strings.HasPrefix(strings.TrimSpace(line), "#") {
		return ""
	}
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	return strings.TrimSpace(line)
}

// readmeEnv is the environment of both shells: free addresses for make run,
// a data directory and HOME of the test's, the Go caches of this run (so that
// make run's build is a link), and crane on PATH.
func readmeEnv(t *testing.T, work string) []string {
	t.Helper()
	crane := testtools.MustPath(t, "crane")
	goEnv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	return []string{
		"HOME=" + work,
		"PATH=" + filepath.Dir(crane) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"TMPDIR=" + os.TempDir(),
		"GOCACHE=" + goEnv("GOCACHE"),
		"GOMODCACHE=" + goEnv("GOMODCACHE"),
		"GOPATH=" + goEnv("GOPATH"),
		"GOFLAGS=" + os.Getenv("GOFLAGS"),
		"GOTOOLCHAIN=local",
		"REGISTRY_ADDR=" + freeAddr(t),
		"TRUSTD_ADDR=" + freeAddr(t),
		"DATA=" + filepath.Join(work, "data"),
		"ALICE_PASSWORD=" + newPassword(),
	}
}

// freeAddr is a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
