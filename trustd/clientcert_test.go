package trustd_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/testlog"
	"github.com/signet-oss/signet/internal/tlsserve"
	"github.com/signet-oss/signet/trustd"
)

// tlsEnv is trustd.Serve on TLS with a development CA that also issues client
// certificates.
type tlsEnv struct {
	t     *testing.T
	base  string
	files tlsserve.DevFiles
	pool  *x509.CertPool
}

var listeningAddr = regexp.MustCompile(`msg="trustd listening" addr=(\S+)`)

func startTLSTrustd(t *testing.T, require bool) *tlsEnv {
	t.Helper()
	return startTLSTrustdCA(t, require, "")
}

// startTLSTrustdCA is startTLSTrustd with tls.clientCA the file clientCA
// (the env's own CA when empty).
func startTLSTrustdCA(t *testing.T, require bool, clientCA string) *tlsEnv {
	t.Helper()
	dir := t.TempDir()
	files, _, err := tlsserve.EnsureDevCerts(dir, []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if clientCA == "" {
		clientCA = files.CACert
	}
	cfg := testConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.TLS = trustd.TLSConfig{Cert: files.ServerCert, Key: files.ServerKey, ClientCA: clientCA, RequireClientCert: require}
	logs := &testlog.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- trustd.Serve(ctx, cfg, cfg.Log.NewLogger(logs)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := listeningAddr.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("trustd did not listen:\n%s", logs)
	}
	caPEM, _ := os.ReadFile(files.CACert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &tlsEnv{t: t, base: "https://" + addr, files: files, pool: pool}
}

// clientCert issues a client certificate for name from ca (the env's own CA
// when ca is the zero value).
func (e *tlsEnv) clientCert(name string, ca tlsserve.DevFiles) *tls.Certificate {
	e.t.Helper()
	if ca.CACert == "" {
		ca = e.files
	}
	caCert, caKey, err := ca.LoadDevCA()
	if err != nil {
		e.t.Fatal(err)
	}
	cert, key, err := tlsserve.NewDevLeaf(caCert, caKey, []string{name}, true, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	dir := e.t.TempDir()
	cp, kp := filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
	if err := tlsserve.WritePair(cp, kp, cert, key); err != nil {
		e.t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(cp, kp)
	if err != nil {
		e.t.Fatal(err)
	}
	return &pair
}

// do sends a request with cert (none when nil) and token (none when empty), and
// body as JSON when not nil.
func (e *tlsEnv) do(method, path string, cert *tls.Certificate, token string, body any) (int, string, error) {
	e.t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
		h.Set("Content-Type", "application/json")
	}
	return e.send(method, path, cert, h, raw)
}

// send sends a request with cert (none when nil), the headers h and body (none
// when nil) as they are.
func (e *tlsEnv) send(method, path string, cert *tls.Certificate, h http.Header, body []byte) (int, string, error) {
	e.t.Helper()
	cfg := &tls.Config{RootCAs: e.pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.base+path, rd)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func (e *tlsEnv) must(method, path string, cert *tls.Certificate, token string, body any) (int, string) {
	e.t.Helper()
	status, b, err := e.do(method, path, cert, token, body)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return status, b
}

// token gets an access token for trustd's API with a password.
func (e *tlsEnv) token(user, password string) string {
	e.t.Helper()
	q := url.Values{"service": {trustdSvc}}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool}}}
	req, _ := http.NewRequest(http.MethodGet, e.base+"/token?"+q.Encode(), nil)
	req.SetBasicAuth(user, password)
	resp, err := hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET /token as %s without a client certificate: %s (%v)", user, resp.Status, err)
	}
	return tr.AccessToken
}

func TestClientCertificatesAuthenticateTheManagementAPI(t *testing.T) {
	e := startTLSTrustd(t, false)
	adminCert := e.clientCert("admin", tlsserve.DevFiles{})

	status, body := e.must("GET", "/api/v1/whoami", adminCert, "", nil)
	if status != http.StatusOK || !strings.Contains(body, `"name":"admin"`) || !strings.Contains(body, `"admin":true`) {
		t.Fatalf("whoami with the admin's certificate: %d %s", status, body)
	}
	if status, body := e.must("POST", "/api/v1/orgs", adminCert, "", map[string]string{"name": "acme"}); status != http.StatusCreated {
		t.Fatalf("an admin's certificate creates an org: %d %s", status, body)
	}
	if status, body := e.must("POST", "/api/v1/users", adminCert, "", map[string]string{"name": "alice", "password": userPassword}); status != http.StatusCreated {
		t.Fatalf("an admin's certificate creates a user: %d %s", status, body)
	}

	aliceCert := e.clientCert("alice", tlsserve.DevFiles{})
	if status, body := e.must("GET", "/api/v1/whoami", aliceCert, "", nil); status != http.StatusOK || !strings.Contains(body, `"name":"alice"`) || !strings.Contains(body, `"admin":false`) {
		t.Fatalf("whoami with alice's certificate: %d %s", status, body)
	}
	if status, body := e.must("POST", "/api/v1/orgs", aliceCert, "", map[string]string{"name": "other"}); status != http.StatusForbidden {
		t.Fatalf("alice's certificate creates an org: %d %s, want 403: she is no admin", status, body)
	}
	if status, body := e.must("GET", "/api/v1/whoami", e.clientCert("nobody", tlsserve.DevFiles{}), "", nil); status != http.StatusUnauthorized {
		t.Fatalf("a certificate for no account: %d %s, want 401", status, body)
	}
	aliceToken := e.token("alice", userPassword)
	if status, body := e.must("GET", "/api/v1/whoami", adminCert, aliceToken, nil); status != http.StatusUnauthorized {
		t.Fatalf("the admin's certificate with alice's token: %d %s, want 401", status, body)
	}
	if status, body := e.must("GET", "/api/v1/whoami", nil, aliceToken, nil); status != http.StatusOK || !strings.Contains(body, `"name":"alice"`) {
		t.Fatalf("a bearer token without a certificate: %d %s, want 200: certificates are optional", status, body)
	}
	if status, body := e.must("GET", "/api/v1/whoami", nil, "", nil); status != http.StatusUnauthorized {
		t.Fatalf("neither certificate nor token: %d %s, want 401", status, body)
	}

	// A certificate another CA issued fails the handshake: it is never taken
	// for anonymous.
	other, _, err := tlsserve.EnsureDevCerts(t.TempDir(), []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.do("GET", "/api/v1/whoami", e.clientCert("admin", other), "", nil); err == nil {
		t.Fatal("an admin certificate from another CA was accepted")
	}
}

func TestRequireClientCertRefusesTheManagementAPIWithoutOne(t *testing.T) {
	e := startTLSTrustd(t, true)
	adminToken := e.token("admin", adminPassword) // /token needs no certificate
	if status, body := e.must("GET", "/api/v1/whoami", nil, adminToken, nil); status != http.StatusUnauthorized || !strings.Contains(body, "client certificate") {
		t.Fatalf("the admin's token without a certificate: %d %s, want 401 naming the certificate", status, body)
	}
	if status, body := e.must("GET", "/api/v1/whoami", e.clientCert("admin", tlsserve.DevFiles{}), adminToken, nil); status != http.StatusOK {
		t.Fatalf("the admin's token with the admin's certificate: %d %s", status, body)
	}
	if status, body := e.must("GET", "/.well-known/jwks.json", nil, "", nil); status != http.StatusOK {
		t.Fatalf("the JWKS without a certificate: %d %s", status, body)
	}
}

// Client certificates are revoked by rotating the client CA: trustd takes a new
// tls.clientCA file without a restart, and refuses the old CA's certificates.
func TestANewClientCARevokesTheOldCertificates(t *testing.T) {
	caA, _, err := tlsserve.EnsureDevCerts(t.TempDir(), []string{"client-ca-a"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caB, _, err := tlsserve.EnsureDevCerts(t.TempDir(), []string{"client-ca-b"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	clientCA := filepath.Join(t.TempDir(), "clients.pem")
	copyFile(t, caA.CACert, clientCA)
	e := startTLSTrustdCA(t, true, clientCA)
	oldCert, newCert := e.clientCert("admin", caA), e.clientCert("admin", caB)
	if status, body := e.must("GET", "/api/v1/whoami", oldCert, "", nil); status != http.StatusOK {
		t.Fatalf("whoami with a certificate of the client CA: %d %s", status, body)
	}

	copyFile(t, caB.CACert, clientCA)
	deadline := time.Now().Add(10 * time.Second)
	status, _, err := e.do("GET", "/api/v1/whoami", oldCert, "", nil)
	for err == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		status, _, err = e.do("GET", "/api/v1/whoami", oldCert, "", nil)
	}
	if err == nil {
		t.Fatalf("10s after the client CA was replaced, a certificate of the old one still gets %d", status)
	}
	if status, body := e.must("GET", "/api/v1/whoami", newCert, "", nil); status != http.StatusOK || !strings.Contains(body, `"name":"admin"`) {
		t.Fatalf("whoami with a certificate of the new client CA: %d %s", status, body)
	}
}

// copyFile puts a copy of src in place of dst by a rename.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".tmp", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		t.Fatal(err)
	}
}

// A page on another site can make a browser present the admin's client
// certificate with a form POST: the API refuses what such a page can send.
func TestCrossSiteBrowserRequestsAreRefused(t *testing.T) {
	e := startTLSTrustd(t, false)
	adminCert := e.clientCert("admin", tlsserve.DevFiles{})
	user := func(name string) []byte {
		return []byte(`{"name":"` + name + `","password":"` + userPassword + `"}`)
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	for _, c := range []struct {
		name   string
		method string
		path   string
		h      http.Header
		body   []byte
		want   int
	}{
		{"a cross-site text/plain form post is refused", "POST", "/api/v1/users",
			hdr("Content-Type", "text/plain", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"), user("mallory1"), http.StatusForbidden},
		{"a text/plain post from an old browser that sends no Origin is refused", "POST", "/api/v1/users",
			hdr("Content-Type", "text/plain;charset=UTF-8"), user("mallory2"), http.StatusUnsupportedMediaType},
		{"a form-encoded post is refused", "POST", "/api/v1/grants",
			hdr("Content-Type", "application/x-www-form-urlencoded"), []byte(`{"subject":"x","pattern":"**","actions":["push"]}`), http.StatusUnsupportedMediaType},
		{"a body without a Content-Type is refused", "POST", "/api/v1/users", hdr(), user("mallory3"), http.StatusUnsupportedMediaType},
		{"a JSON post from another origin is refused", "POST", "/api/v1/users",
			hdr("Content-Type", "application/json", "Origin", "https://evil.example"), user("mallory4"), http.StatusForbidden},
		{"a JSON post from a sandboxed page (Origin null) is refused", "POST", "/api/v1/users",
			hdr("Content-Type", "application/json", "Origin", "null"), user("mallory5"), http.StatusForbidden},
		{"a same-site but other-origin request is refused", "POST", "/api/v1/users",
			hdr("Content-Type", "application/json", "Sec-Fetch-Site", "same-site"), user("mallory6"), http.StatusForbidden},
		{"a cross-site GET is refused", "GET", "/api/v1/grants", hdr("Sec-Fetch-Site", "cross-site"), nil, http.StatusForbidden},
		{"a JSON request without browser headers is accepted", "POST", "/api/v1/users",
			hdr("Content-Type", "application/json"), user("alice"), http.StatusCreated},
		{"a JSON request with a charset is accepted", "POST", "/api/v1/users",
			hdr("Content-Type", "application/json; charset=utf-8"), user("bob"), http.StatusCreated},
		{"a same-origin browser request is accepted", "POST", "/api/v1/users",
			hdr("Content-Type", "application/json", "Origin", e.base, "Sec-Fetch-Site", "same-origin"), user("carol"), http.StatusCreated},
		{"a request the user typed (Sec-Fetch-Site none) is accepted", "GET", "/api/v1/whoami", hdr("Sec-Fetch-Site", "none"), nil, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := e.sendOK(c.method, c.path, adminCert, c.h, c.body)
			if status != c.want {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, status, body, c.want)
			}
		})
	}
	// None of the refused requests created anything.
	for _, name := range []string{"mallory1", "mallory2", "mallory3", "mallory4", "mallory5", "mallory6"} {
		if status, body := e.must("POST", "/api/v1/users", adminCert, "", map[string]string{"name": name, "password": userPassword}); status != http.StatusCreated {
			t.Errorf("creating %s after its refused request: %d %s, want 201 (the refused request must not have created it)", name, status, body)
		}
	}
	if status, body := e.must("GET", "/api/v1/grants", adminCert, "", nil); status != http.StatusOK || strings.Contains(body, `"pattern":"**"`) {
		t.Errorf("grants after a refused form post: %d %s", status, body)
	}
}

func (e *tlsEnv) sendOK(method, path string, cert *tls.Certificate, h http.Header, body []byte) (int, string) {
	e.t.Helper()
	status, b, err := e.send(method, path, cert, h, body)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return status, b
}

func TestTLSConfigValidateNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  trustd.TLSConfig
		want string
	}{
		{"requireClientCert without clientCA", trustd.TLSConfig{Cert: "c", Key: "k", RequireClientCert: true}, "tls.requireClientCert"},
		{"clientCA without a certificate", trustd.TLSConfig{ClientCA: "/nonexistent/ca.pem"}, "tls.clientCA"},
		{"a key without a certificate", trustd.TLSConfig{Key: "k"}, "tls.cert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.TLS = tc.tls
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want+":") {
				t.Fatalf("Validate: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
