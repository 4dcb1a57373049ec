package e2e

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/testlog"
)

// TestAuthRegistryVerifiesWhileTrustdDown runs the registry and trustd as separate
// processes (registry serve --trustd URL, trustd serve), kills trustd, and checks
// that tokens issued before keep working, a token the registry has never seen
// included (it verifies offline, with the keys it fetched), while a new token
// exchange fails.
func TestAuthRegistryVerifiesWhileTrustdDown(t *testing.T) {
	t.Parallel()
	if reference {
		t.Skip("the reference registry has no token service")
	}
	if trustdErr != nil {
		t.Fatal(trustdErr)
	}
	password := newPassword()
	td := startTrustd(t, password)
	reg := startRegistry(t, "--trustd", td.url)
	rc := newRegClient(reg.Addr)
	rc.hc = &http.Client{Timeout: time.Minute, Transport: &bearerTransport{user: "admin", password: password, tokens: map[string]string{}}}
	img := newImage(t, "trustd-down", newLayer(t, "t/one.bin", 32<<10))
	if err := rc.pushImage("acme/app", "v1", img, uploadPostPut); err != nil {
		t.Fatal(err)
	}
	// Two pull tokens: the first is used now, the second only after trustd is gone,
	// so the registry cannot answer it from its cache of verified tokens.
	ch := map[string]string{"realm": "http://" + reg.Addr + "/token", "service": "signet-registry"}
	bt := &bearerTransport{user: "admin", password: password, tokens: map[string]string{}}
	ch["scope"] = "repository:acme/app:pull"
	seen, err := bt.token(ch)
	if err != nil {
		t.Fatal(err)
	}
	ch["scope"] = "repository:acme/app:pull repository:acme/other:pull"
	unseen, err := bt.token(ch)
	if err != nil {
		t.Fatal(err)
	}
	pull := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, reg.URL("/v2/acme/app/manifests/v1"), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", mediaTypeOCIManifest)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, sha256Digest(body)
	}
	if status, dgst := pull(seen); status != 200 || dgst != img.ManifestDigest {
		t.Fatalf("pull with trustd up: %d %s", status, dgst)
	}

	td.kill()
	for name, tok := range map[string]string{"a token it verified before": seen, "a token it has never seen": unseen} {
		if status, dgst := pull(tok); status != 200 || dgst != img.ManifestDigest {
			t.Errorf("pull with %s, trustd down: %d %s; want 200 with %s", name, status, dgst, img.ManifestDigest)
		}
	}
	blob := newRegClient(reg.Addr)
	blob.hc = &http.Client{Timeout: time.Minute, Transport: staticBearer(unseen)}
	if _, err := blob.getBlob("acme/app", img.Layers[0].Digest); err != nil {
		t.Errorf("blob pull, trustd down: %v", err)
	}
	ch["scope"] = "repository:acme/app:push"
	if tok, err := bt.token(ch); err == nil {
		t.Errorf("a token exchange succeeded with trustd down: %s", trim(tok))
	}
}

// staticBearer sends one bearer token with every request.
type staticBearer string

func (s staticBearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+string(s))
	return http.DefaultTransport.RoundTrip(req)
}

// trustdProc is one `trustd serve` process.
type trustdProc struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
	log  *testlog.Buffer
}

var trustdListening = regexp.MustCompile(`msg="trustd listening" addr=(\S+)`)

// startTrustd runs trustd serve on a fresh data directory and a free port, with the
// admin password given; it is killed when the test ends.
func startTrustd(t *testing.T, adminPassword string) *trustdProc {
	t.Helper()
	return startTrustdOn(t, t.TempDir(), "127.0.0.1:0", adminPassword)
}

// startTrustdOn is startTrustd on the data directory data, listening on addr:
// a trustd restarted on its state.
func startTrustdOn(t *testing.T, data, addr, adminPassword string) *trustdProc {
	t.Helper()
	p := &trustdProc{log: &testlog.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(trustdBin, "serve", "--addr", addr, "--data", data)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "SIGNET_ADMIN_PASSWORD=" + adminPassword}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.log.WriteString(sc.Text() + "\n")
			if m := trustdListening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- strings.Trim(m[1], `"`):
				default:
				}
			}
		}
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("trustd log:\n%s", p.log.Tail(40))
		}
	})
	select {
	case addr := <-addrc:
		p.url = "http://" + addr
	case <-p.done:
		t.Fatalf("trustd exited before listening:\n%s", p.log.Tail(40))
	case <-time.After(30 * time.Second):
		t.Fatalf("trustd did not listen within 30s:\n%s", p.log.Tail(40))
	}
	return p
}

// kill stops trustd with SIGKILL, as a crash would, and waits for it.
func (p *trustdProc) kill() {
	if p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}
