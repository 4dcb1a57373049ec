package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
)

// The scoped-access tests run the whole stack as a user would: `trustctl up`, one
// process serving the registry and trustd, with its login in a SIGNET_HOME of the
// test's own.

var (
	// binDir is where TestMain builds the binaries under test; removed at exit.
	binDir string
	// trustctlBin and trustdBin are built by TestMain; trustctlErr and trustdErr
	// say why one could not be, failing only the tests that need it.
	trustctlBin, trustdBin string
	trustctlErr, trustdErr error
)

func buildStackBinaries() {
	trustctlBin, trustctlErr = buildCmd("trustctl")
	trustdBin, trustdErr = buildCmd("trustd")
}

func buildCmd(name string) (string, error) {
	bin := filepath.Join(binDir, name)
	build := exec.Command("go", goBuildArgs(bin, "./cmd/"+name)...)
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/%s: %v\n%s", name, err, out)
	}
	return bin, nil
}

// stack is one running `trustctl up`.
type stack struct {
	t *testing.T
	// Home is the SIGNET_HOME that up logged the admin in to.
	Home string
	// Addr is the registry's host:port; Trustd trustd's URL.
	Addr   string
	Trustd string
	// AdminPassword is what SIGNET_ADMIN_PASSWORD was set to.
	AdminPassword string

	cmd  *exec.Cmd
	done chan struct{}
	log  *testlog.Buffer
}

// openAll makes every repository of a stack open: the tests of scoped access
// and of the trust graph push unsigned content; the gate has its own tests.
var openAll = []string{"--open", "**"}

var upLine = regexp.MustCompile(`Signet is up: registry (\S+), trustd (\S+)`)

// startStack runs `trustctl up` on fresh directories, with free ports it chooses
// itself (port 0), and waits until it says it is up and logged in. The process is
// killed when the test ends and its output printed if the test failed. upArgs
// are further flags of up, such as --open.
func startStack(t *testing.T, upArgs ...string) *stack {
	t.Helper()
	return startStackOpts(t, nil, nil, upArgs...)
}

// startStackWith is startStack that first calls prepare with the data directory
// up will use (DIR/registry and DIR/trustd below it), to set it up.
func startStackWith(t *testing.T, prepare func(data string), upArgs ...string) *stack {
	t.Helper()
	return startStackOpts(t, prepare, nil, upArgs...)
}

// startStackEnv is startStack with env added to up's environment.
func startStackEnv(t *testing.T, env []string, upArgs ...string) *stack {
	t.Helper()
	return startStackOpts(t, nil, env, upArgs...)
}

// startStackOpts is startStack with both: prepare (may be nil) sets up the data
// directory first, and env is added to up's environment.
func startStackOpts(t *testing.T, prepare func(data string), env []string, upArgs ...string) *stack {
	t.Helper()
	if reference {
		t.Skip("the reference registry has no token service")
	}
	if trustctlErr != nil {
		t.Fatal(trustctlErr)
	}
	dir := t.TempDir()
	if prepare != nil {
		prepare(filepath.Join(dir, "data"))
	}
	st := &stack{t: t, Home: filepath.Join(dir, "signet"), AdminPassword: newPassword(), log: &testlog.Buffer{}}
	// At debug, up's log has both servers' own lines (every request among
	// them), which the tests of logging, metrics and refreshes read.
	st.cmd = exec.Command(trustctlBin, append([]string{"up", "--data", filepath.Join(dir, "data"),
		"--registry-addr", "127.0.0.1:0", "--trustd-addr", "127.0.0.1:0", "--log-level", "debug"}, upArgs...)...)
	st.cmd.Env = []string{
		"HOME=" + dir,
		"PATH=" + os.Getenv("PATH"),
		"SIGNET_HOME=" + st.Home,
		"SIGNET_ADMIN_PASSWORD=" + st.AdminPassword,
	}
	st.cmd.Env = append(st.cmd.Env, env...)
	st.cmd.Stderr = st.log
	stdout, err := st.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	st.done = make(chan struct{})
	ready := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var up []string
		sent := false
		for sc.Scan() {
			line := sc.Text()
			st.log.WriteString("stdout: " + line + "\n")
			if m := upLine.FindStringSubmatch(line); m != nil {
				up = m[1:]
			}
			if !sent && up != nil && (strings.HasPrefix(line, "Logged in as") || strings.HasPrefix(line, "Not logged in")) {
				ready <- append(up, line)
				sent = true
			}
		}
		io.Copy(io.Discard, stdout)
		st.cmd.Wait()
		close(st.done)
	}()
	t.Cleanup(func() {
		st.stop()
		if t.Failed() {
			t.Logf("trustctl up output:\n%s", st.log.Tail(80))
		}
	})
	select {
	case r := <-ready:
		st.Addr, st.Trustd = r[0], r[1]
		if !strings.HasPrefix(r[2], "Logged in as admin") {
			t.Fatalf("trustctl up did not log in as admin: %q", r[2])
		}
	case <-st.done:
		t.Fatalf("trustctl up exited before it was up:\n%s", st.log.Tail(60))
	case <-time.After(60 * time.Second):
		t.Fatalf("trustctl up was not up within 60s:\n%s", st.log.Tail(60))
	}
	return st
}

func (st *stack) stop() {
	if st.cmd.Process == nil {
		return
	}
	st.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-st.done:
	case <-time.After(15 * time.Second):
		st.cmd.Process.Kill()
		<-st.done
	}
}

// URL returns the registry's URL for path.
func (st *stack) URL(path string) string { return "http://" + st.Addr + path }

// ctl runs trustctl as the admin that up logged in, with input on stdin.
func (st *stack) ctl(t *testing.T, input string, args ...string) string {
	t.Helper()
	out, err := st.tryCtl(input, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (st *stack) tryCtl(input string, args ...string) (string, error) {
	tl := &tool{path: trustctlBin, dir: st.Home, env: []string{
		"HOME=" + filepath.Dir(st.Home), "PATH=" + os.Getenv("PATH"), "SIGNET_HOME=" + st.Home,
	}}
	return tl.tryInput(input, args...)
}

// addUser creates a person and, when org is not empty, gives them role in it.
func (st *stack) addUser(t *testing.T, name, org, role string) (password string) {
	t.Helper()
	password = newPassword()
	st.ctl(t, password+"\n", "user", "create", name, "--password-stdin")
	if org != "" {
		st.ctl(t, "", "org", "create", org)
		st.ctl(t, "", "org", "add-member", org, name, "--role", role)
	}
	return password
}

// client returns a raw OCI client that authenticates as user with Basic auth at the
// realm of each challenge, as docker's GET flow does.
func (st *stack) client(user, password string) *regClient {
	rc := newRegClient(st.Addr)
	rc.hc = &http.Client{Timeout: 2 * time.Minute, Transport: &bearerTransport{user: user, password: password, tokens: map[string]string{}}}
	return rc
}

// admin is st.client for the admin.
func (st *stack) admin() *regClient { return st.client("admin", st.AdminPassword) }

func newPassword() string {
	var b [18]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// localTag is a fresh tag for an image in the local docker daemon: hex, so it
// never starts with the "-" or "." a tag may not start with.
func localTag() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// challengeParam finds one auth-param of a WWW-Authenticate challenge.
var challengeParam = regexp.MustCompile(`(\w+)="([^"]*)"`)

// challenge parses a Bearer challenge into its parameters.
func challenge(h string) (map[string]string, bool) {
	if !strings.HasPrefix(h, "Bearer ") {
		return nil, false
	}
	p := map[string]string{}
	for _, m := range challengeParam.FindAllStringSubmatch(h, -1) {
		p[m[1]] = m[2]
	}
	return p, true
}

// bearerTransport answers a 401 with a Bearer challenge by getting a token for the
// challenge's scope (GET realm with Basic auth) and sending the request again.
// Tokens are kept per scope.
type bearerTransport struct {
	user, password string

	mu     sync.Mutex
	tokens map[string]string // by scope
}

func (bt *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	ch, ok := challenge(resp.Header.Get("WWW-Authenticate"))
	if !ok || (req.Body != nil && req.GetBody == nil) {
		return resp, nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	token, err := bt.token(ch)
	if err != nil {
		return nil, err
	}
	again := req.Clone(req.Context())
	if req.GetBody != nil {
		if again.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	again.Header.Set("Authorization", "Bearer "+token)
	return http.DefaultTransport.RoundTrip(again)
}

func (bt *bearerTransport) token(ch map[string]string) (string, error) {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	if tok := bt.tokens[ch["scope"]]; tok != "" {
		return tok, nil
	}
	q := url.Values{"service": {ch["service"]}}
	for _, s := range strings.Fields(ch["scope"]) {
		q.Add("scope", s)
	}
	req, err := http.NewRequest(http.MethodGet, ch["realm"]+"?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(bt.user, bt.password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s as %s: %s %s", req.URL, bt.user, resp.Status, body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.Token == "" {
		return "", fmt.Errorf("GET %s: no token in %s", req.URL, body)
	}
	bt.tokens[ch["scope"]] = tr.Token
	return tr.Token, nil
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
}

// runInput is run with input on the tool's stdin.
func (tl *tool) runInput(t *testing.T, input string, args ...string) string {
	t.Helper()
	out, err := tl.tryInput(input, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
