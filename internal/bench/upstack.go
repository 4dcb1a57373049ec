package bench

import (
	"bufio"
	"bytes"
	"context"
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
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"

	signetclient "github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/signer"
)

// upStack is one `trustctl up` of the gate and trustctl benchmarks.
type upStack struct {
	bin, home, addr, password string
	env                       []string
	cmd                       *exec.Cmd
	stderr                    *bytes.Buffer
}

var (
	upLine     = regexp.MustCompile(`Signet is up: registry (\S+), trustd (\S+)`)
	upLoggedIn = regexp.MustCompile(`^Logged in as `)
)

// startUpStack builds trustctl into work and runs `trustctl up` there with
// upArgs, until it is up and logged in.
func startUpStack(ctx context.Context, work string, logf func(string, ...any), upArgs ...string) (*upStack, error) {
	st := &upStack{bin: filepath.Join(work, "trustctl"), home: filepath.Join(work, "home"), password: randomHex(12), stderr: &bytes.Buffer{}}
	logf("building trustctl")
	if err := buildCmd(ctx, "./cmd/trustctl", st.bin); err != nil {
		return nil, err
	}
	st.env = []string{"HOME=" + work, "PATH=" + os.Getenv("PATH"), "SIGNET_HOME=" + st.home,
		"SIGNET_ADMIN_PASSWORD=" + st.password, "SIGNET_PASSPHRASE=bench", "DOCKER_CONFIG=" + st.home}
	logf("starting trustctl up %s", strings.Join(upArgs, " "))
	st.cmd = exec.CommandContext(ctx, st.bin, append([]string{"up", "--data", filepath.Join(work, "data"),
		"--registry-addr", "127.0.0.1:0", "--trustd-addr", "127.0.0.1:0"}, upArgs...)...)
	st.cmd.Env = st.env
	st.cmd.Stderr = st.stderr
	stdout, err := st.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := st.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		addr := ""
		for sc.Scan() {
			if m := upLine.FindStringSubmatch(sc.Text()); m != nil {
				addr = m[1]
			}
			if addr != "" && upLoggedIn.MatchString(sc.Text()) {
				ready <- addr
			}
		}
	}()
	select {
	case st.addr = <-ready:
		return st, nil
	case <-time.After(60 * time.Second):
		st.stop()
		return nil, fmt.Errorf("bench: trustctl up was not up and logged in within 60s:\n%s", st.stderr.String())
	}
}

func (st *upStack) stop() {
	st.cmd.Process.Signal(syscall.SIGTERM)
	st.cmd.Wait()
}

func (st *upStack) trustctl(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, st.bin, args...)
	cmd.Env = st.env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bench: trustctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// gateSigner publishes targets as trustctl sign does, in this process.
type gateSigner struct {
	s    *trust.Session
	host string
}

func (st *upStack) session(ctx context.Context) (*gateSigner, error) {
	home, err := signetclient.LoadConfigFile(filepath.Join(st.home, "config.json"))
	if err != nil {
		return nil, err
	}
	td, err := signetclient.OpenTrustd(ctx, home, st.addr, &signetclient.TokenClient{})
	if err != nil {
		return nil, fmt.Errorf("bench: trustd: %w", err)
	}
	keys := signer.NewFileKeyStore(trust.KeyDir(st.home), func(bool) ([]byte, error) { return []byte("bench"), nil })
	return &gateSigner{host: st.addr, s: &trust.Session{Home: st.home, Registry: st.addr, Trustd: td, Keys: keys, Out: io.Discard}}, nil
}

func (g *gateSigner) sign(ctx context.Context, repo, tag string, m blob) error {
	ref := trust.Ref{Host: g.host, Repo: repo, Tag: tag}
	_, err := g.s.Sign(ctx, ref, &trust.Manifest{Digest: digest.Digest(m.digest), Length: int64(len(m.data)), MediaType: mediaTypeManifest}, "publisher")
	if err != nil {
		return fmt.Errorf("bench: signing %s:%s: %w", repo, tag, err)
	}
	return nil
}

// registryToken gets the admin a registry token for scopes from the realm the
// registry's challenge names.
func registryToken(ctx context.Context, c *client, password string, scopes ...string) (string, error) {
	resp, err := c.do(newRequest(ctx, http.MethodGet, c.url("/v2/"), nil), http.StatusUnauthorized)
	if err != nil {
		return "", fmt.Errorf("bench: the registry's challenge: %w", err)
	}
	discardBody(resp)
	params := map[string]string{}
	for _, m := range regexp.MustCompile(`(\w+)="([^"]*)"`).FindAllStringSubmatch(resp.Header.Get("WWW-Authenticate"), -1) {
		params[m[1]] = m[2]
	}
	q := url.Values{"service": {params["service"]}, "scope": scopes}
	req := newRequest(ctx, http.MethodGet, params["realm"]+"?"+q.Encode(), nil)
	req.SetBasicAuth("admin", password)
	tr, err := c.do(req, http.StatusOK)
	if err != nil {
		return "", fmt.Errorf("bench: token: %w", err)
	}
	defer tr.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(tr.Body).Decode(&body); err != nil || body.Token == "" {
		return "", fmt.Errorf("bench: token: no token in the response (%v)", err)
	}
	return body.Token, nil
}

// bearerRoundTripper sends a bearer token with every request.
type bearerRoundTripper struct {
	token string
	next  http.RoundTripper
}

func (b bearerRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(req)
}

// signedStack is a `trustctl up` set up for a benchmark: its publisher's
// session and a client holding the admin's token for the repositories.
type signedStack struct {
	st  *upStack
	c   *client
	pub *gateSigner
}

// startSignedStack starts `trustctl up` in work with upArgs, runs the trustctl
// commands of setup (keys, orgs, delegations), and returns it with a client
// whose token has the actions (pull or pull,push) on repos.
func startSignedStack(ctx context.Context, work string, logf func(string, ...any), upArgs []string, setup [][]string, actions string, repos ...string) (*signedStack, error) {
	st, err := startUpStack(ctx, work, logf, upArgs...)
	if err != nil {
		return nil, err
	}
	s := &signedStack{st: st}
	for _, args := range setup {
		if err := st.trustctl(ctx, args...); err != nil {
			s.close()
			return nil, err
		}
	}
	if s.c, err = s.client(ctx, actions, repos...); err != nil {
		s.close()
		return nil, err
	}
	if s.pub, err = st.session(ctx); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// client returns a client of the stack's registry holding the admin's token
// for actions on repos.
func (s *signedStack) client(ctx context.Context, actions string, repos ...string) (*client, error) {
	c := newClient("http://"+s.st.addr, 1)
	scopes := make([]string, len(repos))
	for i, r := range repos {
		scopes[i] = "repository:" + r + ":" + actions
	}
	token, err := registryToken(ctx, c, s.st.password, scopes...)
	if err != nil {
		c.close()
		return nil, err
	}
	c.hc.Transport = bearerRoundTripper{token: token, next: c.hc.Transport}
	return c, nil
}

func (s *signedStack) close() {
	if s.c != nil {
		s.c.close()
	}
	s.st.stop()
}
