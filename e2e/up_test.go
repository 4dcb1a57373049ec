package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/testlog"
)

// The first-hour tests: `trustctl up` as someone new to Signet meets it, with
// the ordinary mistakes of a first hour (a port in use, a start cut short, a
// restart on other ports, a second SIGNET_HOME), each against the built
// binaries on one directory that outlives each process, so that restarts
// find what the earlier start left.

// upRun is one `trustctl up` process on a directory of the test's.
type upRun struct {
	*stack
	// Stdout is what up printed (the banner); Stderr its log.
	Stdout, Stderr *testlog.Buffer
	// Banner is the line after "Signet is up": logged in, or not.
	Banner string
}

// launchUp runs `trustctl up --data DIR/data` with SIGNET_HOME=home and env,
// and returns once it says it is up, or with the error and output of its
// exit.
func launchUp(t *testing.T, dir, home string, env []string, args ...string) (*upRun, error) {
	t.Helper()
	if trustctlErr != nil {
		t.Fatal(trustctlErr)
	}
	r := &upRun{stack: &stack{t: t, Home: home, log: &testlog.Buffer{}}, Stdout: &testlog.Buffer{}, Stderr: &testlog.Buffer{}}
	r.cmd = exec.Command(trustctlBin, append([]string{"up", "--data", filepath.Join(dir, "data")}, args...)...)
	r.cmd.Env = append([]string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "SIGNET_HOME=" + home}, env...)
	for _, kv := range env {
		if p, ok := strings.CutPrefix(kv, "SIGNET_ADMIN_PASSWORD="); ok {
			r.AdminPassword = p
		}
	}
	stderr := &prefixWriter{prefix: "stderr: ", to: []interface{ WriteString(string) (int, error) }{r.Stderr, r.log}}
	r.cmd.Stderr = stderr
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.done = make(chan struct{})
	ready := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var up []string
		for sc.Scan() {
			line := sc.Text()
			r.Stdout.WriteString(line + "\n")
			r.log.WriteString("stdout: " + line + "\n")
			if m := upLine.FindStringSubmatch(line); m != nil {
				up = m[1:]
			} else if up != nil && ready != nil {
				ready <- append(up, line)
				ready = nil
			}
		}
		r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("trustctl up output:\n%s", r.log.Tail(60))
		}
	})
	select {
	case l := <-ready:
		r.Addr, r.Trustd, r.Banner = l[0], l[1], l[2]
		return r, nil
	case <-r.done:
		return r, fmt.Errorf("trustctl up exited (%v):\n%s", r.cmd.ProcessState, r.log.String())
	case <-time.After(60 * time.Second):
		return r, fmt.Errorf("trustctl up was not up within 60s:\n%s", r.log.Tail(60))
	}
}

// mustLaunchUp is launchUp that fails t unless up starts.
func mustLaunchUp(t *testing.T, dir, home string, env []string, args ...string) *upRun {
	t.Helper()
	r, err := launchUp(t, dir, home, env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// prefixWriter copies each write to several buffers, the first as is, the
// others with prefix (the shared log of the process).
type prefixWriter struct {
	prefix string
	to     []interface{ WriteString(string) (int, error) }
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.to[0].WriteString(string(p))
	for _, line := range strings.SplitAfter(string(p), "\n") {
		if line != "" {
			for _, o := range w.to[1:] {
				o.WriteString(w.prefix + line)
			}
		}
	}
	return len(p), nil
}

var portZero = []string{"--registry-addr", "127.0.0.1:0", "--trustd-addr", "127.0.0.1:0"}

// TestUpFinishesAFirstStartCutShort: a port in use fails the start before
// anything is made; a first start that fails after trustd made the admin and
// the trust root (here: the registry's account cannot be recorded) is
// finished by the next start, which still knows the generated password, logs
// in, makes what is missing and shows the password.
func TestUpFinishesAFirstStartCutShort(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	home := filepath.Join(dir, "signet")

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, err = launchUp(t, dir, home, nil, "--registry-addr", taken.Addr().String(), "--trustd-addr", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "--registry-addr") {
		t.Fatalf("up on a registry port in use: want a failure naming --registry-addr, got %v", err)
	}
	if strings.Contains(err.Error(), "Created the admin account") {
		t.Errorf("up showed an admin password although it could not start:\n%v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "data", "trustd")); len(entries) > 0 {
		t.Errorf("up made trustd's data although a port was in use: %d entries", len(entries))
	}

	// A first start that fails once trustd made the admin and the trust
	// root: the registry's account cannot be recorded (its record's path is
	// a directory).
	account := filepath.Join(dir, "data", "registry-account.json")
	if err := os.MkdirAll(account, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = launchUp(t, dir, home, nil, portZero...)
	if err == nil || !strings.Contains(err.Error(), "the next `trustctl up` on this data directory finishes it") {
		t.Fatalf("a first start whose registry account cannot be recorded: want a failure saying the next start finishes it, got %v", err)
	}
	if !strings.Contains(err.Error(), "Initialised a development trust root") {
		t.Fatalf("the failed first start did not get as far as the trust root:\n%v", err)
	}
	os.Remove(account)

	r := mustLaunchUp(t, dir, home, nil, portZero...)
	if !strings.HasPrefix(r.Banner, "Logged in as admin") {
		t.Fatalf("the retry did not log in: %q", r.Banner)
	}
	// The password follows the banner's first lines, which launchUp returns on.
	out := r.Stdout.String()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out, "shown only once") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		out = r.Stdout.String()
	}
	i := strings.Index(out, "shown only once")
	if i < 0 {
		t.Fatalf("the retry did not show the admin password:\n%s", out)
	}
	r.AdminPassword = strings.Fields(out[i:])[len(strings.Fields("shown only once (set SIGNET_ADMIN_PASSWORD to choose it):"))]
	if _, err := os.Stat(filepath.Join(dir, "data", "setup.json")); err == nil {
		t.Error("data/setup.json, the unfinished setup's record, is still there once the setup is done")
	}
	r.trustctl(t, "org", "create", "acme") // the development root was made: targets can be signed
	if _, err := os.Stat(filepath.Join(home, "trust", r.Addr, "root.json")); err != nil {
		t.Errorf("no root is pinned for %s: %v", r.Addr, err)
	}
	// The shown password is the admin's.
	r.passwordGrant(t, r.discover(t), "admin", r.AdminPassword, false)
}

// TestUpStackKeepsItsIdentity: one stack, restarted on other ports and with
// another SIGNET_HOME. Its login and trust pin follow it to the new ports;
// its development keys live in its data directory (and a layout from before,
// with them in SIGNET_HOME, is adopted); a home that lacks them gets an
// error naming dev-targets and no orphan org key. Its log is one line per
// event: a signed push, and a denied push with its reason.
func TestUpStackKeepsItsIdentity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	home := filepath.Join(dir, "signet")
	env := []string{"SIGNET_ADMIN_PASSWORD=" + newPassword()}
	r := mustLaunchUp(t, dir, home, env, append([]string{"--trust-refresh", "1s"}, portZero...)...)
	if lines := strings.Split(strings.TrimSpace(r.Stderr.String()), "\n"); len(lines) > 1 || strings.Contains(lines[0], "no stored trust metadata") {
		t.Errorf("up's first start logged more than the trust root's making:\n%s", r.Stderr.String())
	}
	// relaunch restarts the stack; a subtest's t must not own the process.
	parent := t
	relaunch := func(t *testing.T, home string, env []string) {
		t.Helper()
		r.stop()
		var err error
		if r, err = launchUp(parent, dir, home, env, portZero...); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"dev-root", "dev-targets"} {
		if _, err := os.Stat(filepath.Join(dir, "data", "keys", name+".key")); err != nil {
			t.Errorf("the development key %s is not in the data directory: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(home, "keys", name+".key")); err == nil {
			t.Errorf("the development key %s is in SIGNET_HOME/keys", name)
		}
	}
	r.trustctl(t, "keys", "generate", "alice")
	r.trustctl(t, "org", "create", "acme")
	r.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")

	t.Run("the log is one line per event", func(t *testing.T) {
		before := r.Stderr.String()
		img := newImage(t, "up-log", newLayer(t, "a.bin", 4<<10))
		r.trustctl(t, "push", writeLayout(t, img), r.Addr+"/acme/app:v1", "--key", "alice")
		denied := newImage(t, "up-log-denied", newLayer(t, "b.bin", 4<<10))
		if err := r.admin().pushImage("acme/app", "v2", denied, uploadMonolithicPost); err == nil {
			t.Fatal("an unsigned push was admitted")
		}
		waitFor(t, func() bool { return strings.Contains(r.Stderr.String(), "push denied") })
		lines := strings.Split(strings.TrimSpace(strings.TrimPrefix(r.Stderr.String(), before)), "\n")
		if len(lines) > 4 {
			t.Errorf("up logged %d lines for one signed push and one denied push, want one per event:\n%s", len(lines), strings.Join(lines, "\n"))
		}
		log := strings.Join(lines, "\n")
		for _, want := range []string{`msg="push admitted" ref=acme/app:v1 digest=` + img.ManifestDigest, `msg="push denied" ref=acme/app:v2`, "is not signed for acme/app:v2", `msg=published role=repo-`} {
			if !strings.Contains(log, want) {
				t.Errorf("up's log lacks %q:\n%s", want, log)
			}
		}
		if strings.Contains(log, "msg=request") {
			t.Errorf("up logs request lines by default:\n%s", log)
		}

		// A refused login is an event; an idle stack, refreshing its trust
		// metadata every second, says nothing.
		before = r.Stderr.String()
		wrong := &tool{path: trustctlBin, dir: dir, env: []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "SIGNET_HOME=" + filepath.Join(dir, "wrong")}}
		if _, err := wrong.tryInput("not-the-password\n", "login", r.Addr, "-u", "admin", "--password-stdin"); err == nil {
			t.Fatal("a login with a wrong password succeeded")
		}
		waitFor(t, func() bool { return strings.Contains(r.Stderr.String(), "login refused") })
		time.Sleep(2500 * time.Millisecond)
		if lines := strings.Split(strings.TrimSpace(strings.TrimPrefix(r.Stderr.String(), before)), "\n"); len(lines) != 1 {
			t.Errorf("up logged %d lines for a refused login and 2.5s idle, want 1:\n%s", len(lines), strings.Join(lines, "\n"))
		}
	})

	t.Run("push takes what the usual tools write", func(t *testing.T) {
		skopeo := newTool(t, "skopeo")
		policy := filepath.Join(skopeo.dir, "policy.json")
		os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644)
		img := newImage(t, "up-formats", newLayer(t, "f/one.bin", 32<<10), newLayer(t, "f/two.bin", 8<<10))
		src := filepath.Join(t.TempDir(), "src")
		writeOCILayout(t, src, "v1", img)
		out := t.TempDir()
		for _, f := range []struct{ name, dest, path string }{
			{"oci-dir", "oci:" + filepath.Join(out, "layout"), filepath.Join(out, "layout")},
			{"oci-archive", "oci-archive:" + filepath.Join(out, "oci.tar"), filepath.Join(out, "oci.tar")},
			{"docker-archive", "docker-archive:" + filepath.Join(out, "docker.tar") + ":acme/tools:v1", filepath.Join(out, "docker.tar")},
		} {
			skopeo.run(t, "--policy", policy, "copy", "oci:"+src+":v1", f.dest)
			ref := r.Addr + "/acme/app:" + f.name
			if _, err := r.tryTrustctl("push", f.path, ref, "--key", "alice"); err != nil {
				t.Errorf("push of a skopeo %s: %v", f.name, err)
				continue
			}
			r.trustctl(t, "verify", ref)
		}
		// crane pull's own tarball (docker's older format, gzipped layers).
		crane := newTool(t, "crane", "DOCKER_CONFIG="+r.Home)
		tarball := filepath.Join(out, "crane.tar")
		crane.run(t, "pull", r.Addr+"/acme/app:oci-dir", tarball)
		r.trustctl(t, "push", tarball, r.Addr+"/acme/app:crane-tarball", "--key", "alice")
		if got, want := strings.TrimSpace(crane.run(t, "digest", r.Addr+"/acme/app:crane-tarball")), strings.TrimSpace(crane.run(t, "digest", r.Addr+"/acme/app:oci-dir")); got != want {
			t.Errorf("crane's tarball of an image pushed as %s, want the image's own digest %s", got, want)
		}
	})

	t.Run("a restart on other ports keeps the login and the pin", func(t *testing.T) {
		old := r.Addr
		relaunch(t, home, nil) // no password: the login kept must do
		if r.Addr == old {
			t.Skipf("port 0 chose %s again", old)
		}
		if !strings.HasPrefix(r.Banner, "Logged in as admin") {
			t.Fatalf("after a restart on other ports up says %q", r.Banner)
		}
		r.trustctl(t, "verify", r.Addr+"/acme/app:v1")
		img := newImage(t, "up-moved", newLayer(t, "c.bin", 4<<10))
		r.trustctl(t, "push", writeLayout(t, img), r.Addr+"/acme/app:v3", "--key", "alice")
		cfg, err := os.ReadFile(filepath.Join(home, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Auths map[string]json.RawMessage `json:"auths"`
		}
		json.Unmarshal(cfg, &c)
		if _, ok := c.Auths[old]; ok {
			t.Errorf("the login for the old address %s is still in %s", old, filepath.Join(home, "config.json"))
		}
	})

	t.Run("another SIGNET_HOME without the stack's keys", func(t *testing.T) {
		other := filepath.Join(dir, "other")
		tl := &tool{path: trustctlBin, dir: dir, env: []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "SIGNET_HOME=" + other, "SIGNET_PASSPHRASE=" + e2ePassphrase}}
		if _, err := tl.tryInput(strings.TrimPrefix(env[0], "SIGNET_ADMIN_PASSWORD=")+"\n", "login", r.Addr, "-u", "admin", "--password-stdin"); err != nil {
			t.Fatal(err)
		}
		tl.run(t, "trust", "add", r.Addr, "--yes")
		out := tl.mustFail(t, "org", "create", "other")
		if !strings.Contains(out, "dev-targets") {
			t.Errorf("org create without the targets key does not name dev-targets:\n%s", out)
		}
		if keys, _ := filepath.Glob(filepath.Join(other, "keys", "*")); len(keys) > 0 {
			t.Errorf("the failed org create left keys behind: %v", keys)
		}
		// up run with this home finds the stack's keys there.
		relaunch(t, other, env)
		r.trustctl(t, "org", "create", "other")
	})

	t.Run("development keys in SIGNET_HOME, from before, are adopted", func(t *testing.T) {
		r.stop()
		// The layout of before: the keys in SIGNET_HOME/keys, none in the data
		// directory.
		os.MkdirAll(filepath.Join(home, "keys"), 0o700)
		for _, name := range []string{"dev-root", "dev-targets"} {
			for _, ext := range []string{".key", ".pub", ".json"} {
				if err := os.Rename(filepath.Join(dir, "data", "keys", name+ext), filepath.Join(home, "keys", name+ext)); err != nil {
					t.Fatal(err)
				}
			}
		}
		// The login of this home is at the address before the last start,
		// which was another home's: up follows only the addresses it recorded.
		relaunch(t, home, env)
		if !strings.Contains(r.Stdout.String(), "Copied the development keys dev-root, dev-targets") {
			t.Errorf("up did not say it adopted the development keys:\n%s", r.Stdout.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "data", "keys", "dev-targets.key")); err != nil {
			t.Errorf("dev-targets was not copied to the data directory: %v", err)
		}
		os.RemoveAll(filepath.Join(home, "keys"))
		r.trustctl(t, "org", "create", "third")
	})
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("timed out")
}
