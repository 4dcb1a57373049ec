package agent

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerCred returns the uid and pid of the process at the other end of c, as
// the kernel recorded them when it connected (SO_PEERCRED).
func peerCred(c *net.UnixConn) (uid, pid int, err error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, 0, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, 0, err
	}
	if credErr != nil {
		return -1, 0, fmt.Errorf("reading the peer's credentials: %w", credErr)
	}
	return int(cred.Uid), int(cred.Pid), nil
}

func fileOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// Harden keeps the process's memory out of reach: not dumpable (no core file,
// no ptrace or /proc/<pid>/mem by the same user), and locked in RAM
// (mlockall) when RLIMIT_MEMLOCK is unlimited or the process may lock any
// amount (CAP_IPC_LOCK, root): under a finite limit the Go runtime's later
// allocations would fail, so memory stays unlocked and may be swapped. It
// returns what it did, for the log.
func Harden() (string, error) {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return "", fmt.Errorf("agent: making the process not dumpable: %w", err)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		return "", fmt.Errorf("agent: reading RLIMIT_MEMLOCK: %w", err)
	}
	if lim.Cur != unix.RLIM_INFINITY && os.Geteuid() != 0 {
		return fmt.Sprintf("not dumpable; memory NOT locked: RLIMIT_MEMLOCK is %d bytes, so keys may be swapped out (raise it: ulimit -l unlimited, or LimitMEMLOCK=infinity in a systemd unit)", lim.Cur), nil
	}
	if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE); err != nil {
		return fmt.Sprintf("not dumpable; memory NOT locked: mlockall: %v", err), nil
	}
	return "not dumpable; memory locked (mlockall)", nil
}

// RemoveOnDeath starts a small process that removes the socket (and the
// directory the agent made) when this process ends, however it ends: it
// waits on a pipe only this process writes to, whose end the kernel closes
// when the process dies, even of SIGKILL. The process keeps no key.
func (a *Agent) RemoveOnDeath() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command("/bin/sh", "-c", `read _; rm -f -- "$1"; [ -z "$2" ] || rmdir -- "$2" 2>/dev/null; exit 0`, "signet-agent-cleanup", a.cfg.Socket, a.madeDir)
	cmd.Stdin = r
	// Its own process group: a Ctrl-C meant for the agent leaves it to clean
	// up after the agent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("agent: starting the socket's cleanup: %w", err)
	}
	r.Close()
	a.deathPipe = w
	go cmd.Wait()
	return nil
}
