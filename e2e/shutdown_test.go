package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// terminate sends SIGTERM to the registry and waits for it to exit, failing the
// test if it takes longer than within or exits with an error.
func (r *registry) terminate(t *testing.T, within time.Duration) {
	t.Helper()
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("the registry did not exit within %s of SIGTERM:\n%s", within, r.log.Tail(20))
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("the registry exited with %d after SIGTERM:\n%s", code, r.log.Tail(20))
	}
}

// streamPatch starts a PATCH of an upload whose body is written through the
// returned pipe; the response arrives on the channel.
func streamPatch(rc *regClient, loc string) (*io.PipeWriter, chan *http.Response, chan error) {
	pr, pw := io.Pipe()
	req := rc.newRequest("PATCH", loc, pr)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.ContentLength = -1
	respc, errc := make(chan *http.Response, 1), make(chan error, 1)
	go func() {
		resp, err := rc.hc.Do(req)
		if err != nil {
			errc <- err
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		respc <- resp
	}()
	return pw, respc, errc
}

// TestGracefulShutdown sends SIGTERM to a registry while uploads stream. An
// upload that ends within the shutdown timeout finishes and is acknowledged,
// while new connections are refused; one that outlasts it is cut off at the
// deadline, the process exits cleanly, and after a restart the upload resumes
// from every byte the registry received and completes.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	const timeout = 3 * time.Second
	reg := startRegistry(t, "--shutdown-timeout", timeout.String())
	const repo = "e2e/shutdown"
	content := randomBytes(8 << 20)
	half := len(content) / 2

	t.Run("a request in flight finishes during the drain", func(t *testing.T) {
		rc := newRegClient(reg.Addr)
		loc, err := rc.startUpload(repo)
		if err != nil {
			t.Fatal(err)
		}
		pw, respc, errc := streamPatch(rc, loc)
		if _, err := pw.Write(content[:half]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		reg.mu.Lock()
		cmd, done := reg.cmd, reg.done
		reg.mu.Unlock()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// The listener closes at once: a new connection is refused.
		deadline := time.Now().Add(timeout)
		for {
			c, err := net.DialTimeout("tcp", reg.Addr, 100*time.Millisecond)
			if err != nil {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatal("the registry still accepts connections after SIGTERM")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := pw.Write(content[half:]); err != nil {
			t.Fatalf("the rest of the body after SIGTERM: %v", err)
		}
		pw.Close()
		select {
		case resp := <-respc:
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("the PATCH in flight got %s, want 202 Accepted", resp.Status)
			}
			if got, want := resp.Header.Get("Range"), fmt.Sprintf("0-%d", len(content)-1); got != want {
				t.Fatalf("the PATCH in flight was acknowledged with Range %q, want %q", got, want)
			}
		case err := <-errc:
			t.Fatalf("the PATCH in flight failed: %v", err)
		}
		select {
		case <-done:
		case <-time.After(timeout + 5*time.Second):
			t.Fatal("the registry did not exit after its last request")
		}
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("the registry exited with %d after SIGTERM", code)
		}
	})

	reg.start()
	t.Run("a request outlasting the timeout is cut off and stays resumable", func(t *testing.T) {
		rc := newRegClient(reg.Addr)
		loc, err := rc.startUpload(repo)
		if err != nil {
			t.Fatal(err)
		}
		pw, _, _ := streamPatch(rc, loc)
		defer pw.Close()
		if _, err := pw.Write(content[:half]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // let the registry take in what was sent
		start := time.Now()
		reg.terminate(t, timeout+15*time.Second)
		if d := time.Since(start); d < timeout-500*time.Millisecond {
			t.Fatalf("the registry exited %s after SIGTERM, before its %s timeout, with a request in flight", d, timeout)
		}

		reg.start()
		rc = newRegClient(reg.Addr)
		loc = rehost(t, loc, reg.Addr)
		held, loc, err := rc.uploadStatus(loc)
		if err != nil {
			t.Fatal(err)
		}
		if held != int64(half) {
			t.Fatalf("after the cut-off the upload holds %d bytes, want all %d that were sent", held, half)
		}
		resumeUpload(t, rc, repo, loc, content, held)
	})
}

// TestShutdownDelayKeepsServingWhileNotReady gives the registry a
// shutdownDelay: after SIGTERM it still serves, with /readyz answering 503
// "shutting down" so a load balancer stops sending it requests, and then exits.
func TestShutdownDelayKeepsServingWhileNotReady(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "registry.yaml")
	if err := os.WriteFile(cfg, []byte("shutdownDelay: 2s\nshutdownTimeout: 2s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := startRegistry(t, "--config", cfg)
	reg.mu.Lock()
	cmd, done := reg.cmd, reg.done
	reg.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var ready string
	for time.Since(start) < time.Second {
		resp, err := http.Get(reg.URL("/readyz"))
		if err != nil {
			t.Fatalf("/readyz within the delay: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ready = fmt.Sprintf("%d %s", resp.StatusCode, body); resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "shutting down") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.HasPrefix(ready, "503") {
		t.Fatalf("/readyz after SIGTERM answered %s, want 503 shutting down", ready)
	}
	if resp, err := http.Get(reg.URL("/v2/")); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the API within the delay: %v, %v", resp, err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the registry did not exit after its delay")
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("the registry exited %s after SIGTERM, within its 2s delay", d)
	}
}
