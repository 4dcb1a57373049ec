package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/testlog"
	"github.com/signet-oss/signet/internal/testtools"
)

// dockerDaemon is the one dockerd a test binary starts, on its own unix socket and
// its own directories, shared by the tests that need docker and stopped by TestMain.
type dockerDaemon struct {
	root   string // short temporary directory holding everything
	socket string
	cmd    *exec.Cmd
	done   chan struct{}
	log    *testlog.Buffer
	err    error
}

var (
	dockerdOnce sync.Once
	dockerd     *dockerDaemon
)

// startDockerd starts dockerd once per test binary and returns it. It fails t if the
// daemon cannot start.
func startDockerd(t *testing.T) *dockerDaemon {
	t.Helper()
	dockerdOnce.Do(func() { dockerd = launchDockerd() })
	if dockerd.err != nil {
		t.Fatalf("dockerd: %v\n--- dockerd log ---\n%s", dockerd.err, dockerd.log.Tail(80))
	}
	return dockerd
}

func launchDockerd() *dockerDaemon {
	d := &dockerDaemon{log: &testlog.Buffer{}}
	bin, err := testtools.Path("dockerd")
	if err != nil {
		d.err = err
		return d
	}
	client, err := testtools.Path("docker")
	if err != nil {
		d.err = err
		return d
	}
	// Unix socket paths must stay under 108 bytes, and dockerd nests containerd's
	// sockets inside exec-root: keep the root short. MkdirTemp makes it unique, so two
	// test binaries never share a daemon.
	d.root, err = os.MkdirTemp("/tmp", "sd")
	if err != nil {
		d.err = err
		return d
	}
	d.socket = filepath.Join(d.root, "d.sock")
	args := []string{
		"--storage-driver", "vfs",
		"--iptables=false", "--ip6tables=false", "--bridge=none",
		"--data-root", filepath.Join(d.root, "data"),
		"--exec-root", filepath.Join(d.root, "x"),
		"--pidfile", filepath.Join(d.root, "d.pid"),
		"--host", "unix://" + d.socket,
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	// Its own process group, so stopping it reaches the containerd it spawns.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		d.err = fmt.Errorf("starting %s %s: %w", bin, strings.Join(args, " "), err)
		return d
	}
	d.done = make(chan struct{})
	go func() { d.cmd.Wait(); close(d.done) }()

	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			d.err = fmt.Errorf("dockerd exited during start-up (%v)", d.cmd.ProcessState)
			return d
		default:
		}
		out, err := exec.Command(client, "-H", "unix://"+d.socket, "info").CombinedOutput()
		if err == nil {
			return d
		}
		last = string(out)
		time.Sleep(250 * time.Millisecond)
	}
	d.stop()
	d.err = fmt.Errorf("docker info never succeeded within 60s; last output:\n%s", last)
	return d
}

// stop terminates dockerd (SIGTERM, then SIGKILL to the group) and removes its
// directories.
func (d *dockerDaemon) stop() {
	if d.cmd != nil && d.cmd.Process != nil && d.done != nil {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
		}
		// containerd-shim or containerd may outlive dockerd in the group.
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	}
	if d.root != "" {
		// vfs layers can hold read-only directories; make them removable.
		filepath.Walk(d.root, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
		os.RemoveAll(d.root)
	}
}

func stopDockerd() {
	if dockerd != nil {
		dockerd.stop()
	}
}

// dockerClient returns the docker CLI bound to the shared daemon, with its own
// DOCKER_CONFIG.
func dockerClient(t *testing.T) *tool {
	t.Helper()
	d := startDockerd(t)
	tl := newTool(t, "docker")
	tl.env = append(tl.env, "DOCKER_HOST=unix://"+d.socket, "DOCKER_CONFIG="+filepath.Join(tl.dir, ".docker"))
	return tl
}
