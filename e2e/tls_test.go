package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/testlog"
	"github.com/signet-oss/signet/internal/tlsserve"
)

// tlsStack is a `trustctl up --tls` and the development CA it made.
type tlsStack struct {
	*stack
	// CertDir is DATA/tls, which holds the certificates only; CA is its ca.crt.
	CertDir, CA string
	files       tlsserve.DevFiles
	pool        *x509.CertPool
}

func startTLSStack(t *testing.T, upArgs ...string) *tlsStack {
	t.Helper()
	st := startStack(t, append([]string{"--tls"}, upArgs...)...)
	dir := filepath.Join(filepath.Dir(st.Home), "data", "tls")
	files := tlsserve.DevFilesIn(dir)
	caPEM, err := os.ReadFile(files.CACert)
	if err != nil {
		t.Fatalf("trustctl up --tls made no CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s holds no certificate", files.CACert)
	}
	if !strings.HasPrefix(st.Trustd, "https://") {
		t.Fatalf("trustctl up --tls names trustd %s, want an https URL", st.Trustd)
	}
	// The TLS lines follow the "Logged in" line that startStack waits for.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(st.log.String(), "SSL_CERT_FILE="+files.CACert) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(st.log.String(), "SSL_CERT_FILE="+files.CACert) {
		t.Fatalf("trustctl up --tls does not say how to trust %s:\n%s", files.CACert, st.log.Tail(30))
	}
	return &tlsStack{stack: st, CertDir: dir, CA: files.CACert, files: files, pool: pool}
}

// httpClient trusts the stack's CA, and nothing else.
func (ts *tlsStack) httpClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: ts.pool},
	}}
}

// serial is the serial number of the certificate a new connection to addr sees.
func (ts *tlsStack) serial(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ts.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestTLSStack: `trustctl up --tls` serves the registry and trustd over HTTPS
// with a development CA that crane, oras, regctl, skopeo and trustctl each trust
// the way the README says; clients without the CA and TLS 1.1 are refused; a new
// certificate written over the files is served without a restart.
func TestTLSStack(t *testing.T) {
	t.Parallel()
	ts := startTLSStack(t, "--open", "open/**")
	admin, pw := "admin", ts.AdminPassword
	sslEnv := "SSL_CERT_FILE=" + ts.CA

	t.Run("the registry challenges with an https realm", func(t *testing.T) {
		resp, err := ts.httpClient().Get("https://" + ts.Addr + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ch, ok := challenge(resp.Header.Get("WWW-Authenticate"))
		if resp.StatusCode != http.StatusUnauthorized || !ok || ch["realm"] != "https://"+ts.Addr+"/token" {
			t.Fatalf("GET /v2/: %s, challenge %q; want 401 with realm https://%s/token", resp.Status, resp.Header.Get("WWW-Authenticate"), ts.Addr)
		}
		resp, err = ts.httpClient().Get("https://" + ts.Addr + "/.well-known/signet.json")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Trustd string }
		json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if doc.Trustd != ts.Trustd {
			t.Fatalf("signet.json names trustd %q, want %s", doc.Trustd, ts.Trustd)
		}
	})

	t.Run("the web UI over HTTPS signs in with Secure cookies", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		hc := ts.httpClient()
		hc.Jar = jar
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		b := &browser{t: t, base: "https://" + ts.Addr, hc: hc}
		resp, err := hc.PostForm(b.base+"/ui/login", url.Values{"csrf": {b.csrf("/ui/login")}, "username": {admin}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in over HTTPS = %s, want 303", resp.Status)
		}
		found := false
		for _, c := range resp.Cookies() {
			if c.Name == "signet_session" {
				found = true
				if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
					t.Errorf("session cookie over HTTPS = %+v, want Secure, HttpOnly, SameSite=Strict", c)
				}
			}
		}
		if !found {
			t.Errorf("sign-in over HTTPS set no session cookie: %q", resp.Header.Values("Set-Cookie"))
		}
		if status, body, _ := b.get("/ui/repos"); status != http.StatusOK || !strings.Contains(body, "Sign out") {
			t.Errorf("GET /ui/repos over HTTPS after sign-in = %d:\n%s", status, body)
		}
	})

	t.Run("a client without the CA fails on the certificate", func(t *testing.T) {
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for _, u := range []string{"https://" + ts.Addr + "/v2/", ts.Trustd + "/healthz"} {
			_, err := hc.Get(u)
			var unknown x509.UnknownAuthorityError
			if !errors.As(err, &unknown) {
				t.Errorf("GET %s without the CA: %v, want an unknown-authority error", u, err)
			}
		}
		oras := newTool(t, "oras")
		out := oras.mustFail(t, "repo", "tags", ts.Addr+"/open/none")
		if !strings.Contains(out, "certificate") {
			t.Fatalf("oras without the CA failed, but not on the certificate:\n%s", out)
		}
	})

	t.Run("a TLS 1.1 client is refused", func(t *testing.T) {
		for _, addr := range []string{ts.Addr, strings.TrimPrefix(ts.Trustd, "https://")} {
			_, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ts.pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
			if err == nil || !strings.Contains(err.Error(), "protocol version") {
				t.Errorf("TLS 1.1 handshake with %s: %v, want a protocol version alert", addr, err)
			}
		}
	})

	t.Run("crane pushes and pulls with SSL_CERT_FILE", func(t *testing.T) {
		crane := newTool(t, "crane", sslEnv)
		crane.runInput(t, pw, "auth", "login", ts.Addr, "-u", admin, "--password-stdin")
		l := newLayer(t, "tls/crane.bin", 64<<10)
		layerPath := filepath.Join(t.TempDir(), "layer.tar.gz")
		os.WriteFile(layerPath, l.Blob, 0o644)
		ref := ts.Addr + "/open/crane:v1"
		crane.run(t, "append", "--oci-empty-base", "-f", layerPath, "-t", ref)
		tarball := filepath.Join(t.TempDir(), "img.tar")
		crane.run(t, "pull", ref, tarball)
		checkTarLayers(t, readTar(t, tarball), image{Layers: []layer{l}})
	})

	t.Run("oras pushes and pulls with --ca-file", func(t *testing.T) {
		oras := newTool(t, "oras")
		oras.runInput(t, pw, "login", "--ca-file", ts.CA, "-u", admin, "--password-stdin", ts.Addr)
		content := randomBytes(64 << 10)
		os.WriteFile(filepath.Join(oras.dir, "file.bin"), content, 0o644)
		ref := ts.Addr + "/open/oras:v1"
		oras.run(t, "push", "--ca-file", ts.CA, ref, "file.bin")
		dir := t.TempDir()
		oras.run(t, "pull", "--ca-file", ts.CA, "-o", dir, ref)
		if got, err := os.ReadFile(filepath.Join(dir, "file.bin")); err != nil || !bytes.Equal(got, content) {
			t.Fatalf("oras pulled different bytes (%v)", err)
		}
	})

	t.Run("regctl pushes and pulls with registry set --cacert", func(t *testing.T) {
		regctl := newTool(t, "regctl")
		caPEM, _ := os.ReadFile(ts.CA)
		regctl.run(t, "registry", "set", "--cacert", string(caPEM), ts.Addr)
		regctl.runInput(t, pw, "registry", "login", "-u", admin, "--pass-stdin", ts.Addr)
		img := newImage(t, "regctl-tls", newLayer(t, "tls/regctl.bin", 64<<10))
		layout := filepath.Join(t.TempDir(), "layout")
		writeOCILayout(t, layout, "v1", img)
		ref := ts.Addr + "/open/regctl:v1"
		regctl.run(t, "image", "copy", "ocidir://"+layout+":v1", ref)
		if got := strings.TrimSpace(regctl.run(t, "image", "digest", ref)); got != img.ManifestDigest {
			t.Fatalf("regctl image digest %s, want %s", got, img.ManifestDigest)
		}
		for d, want := range img.blobs() {
			if got := regctl.run(t, "blob", "get", ts.Addr+"/open/regctl", d); got != string(want) {
				t.Errorf("regctl blob get %s: %d bytes, want %d", d, len(got), len(want))
			}
		}
	})

	t.Run("skopeo pushes and pulls with --cert-dir", func(t *testing.T) {
		skopeo := newTool(t, "skopeo")
		policy := filepath.Join(skopeo.dir, "policy.json")
		os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644)
		regConf := filepath.Join(skopeo.dir, "registries.conf")
		os.WriteFile(regConf, []byte("unqualified-search-registries = []\n"), 0o644)
		skopeo.env = append(skopeo.env, "CONTAINERS_REGISTRIES_CONF="+regConf,
			"REGISTRY_AUTH_FILE="+filepath.Join(skopeo.dir, "auth.json"))
		skopeo.runInput(t, pw, "login", "--tls-verify=true", "--cert-dir", ts.CertDir, "-u", admin, "--password-stdin", ts.Addr)
		img := newImage(t, "skopeo-tls", newLayer(t, "tls/skopeo.bin", 64<<10))
		layout := filepath.Join(t.TempDir(), "layout")
		writeOCILayout(t, layout, "v1", img)
		ref := "docker://" + ts.Addr + "/open/skopeo:v1"
		skopeo.run(t, "--policy", policy, "copy", "--preserve-digests", "--dest-tls-verify=true", "--dest-cert-dir", ts.CertDir, "oci:"+layout+":v1", ref)
		back := filepath.Join(t.TempDir(), "back")
		skopeo.run(t, "--policy", policy, "copy", "--preserve-digests", "--src-tls-verify=true", "--src-cert-dir", ts.CertDir, ref, "oci:"+back+":v1")
		for d, want := range img.blobs() {
			got, err := os.ReadFile(filepath.Join(back, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("pulled blob %s differs (%v)", d, err)
			}
		}
		// The same copy without the CA is refused on the certificate.
		out := skopeo.mustFail(t, "--policy", policy, "copy", "--src-tls-verify=true", ref, "oci:"+filepath.Join(t.TempDir(), "no")+":v1")
		if !strings.Contains(out, "certificate") {
			t.Fatalf("skopeo without the CA failed, but not on the certificate:\n%s", out)
		}
	})

	t.Run("trustctl logs in, pushes signed, verifies and pulls over TLS", func(t *testing.T) {
		// --cacert for the login, SSL_CERT_FILE for the rest.
		cacert := []string{"--cacert", ts.CA}
		login := &tool{path: trustctlBin, dir: ts.Home, env: []string{
			"HOME=" + filepath.Dir(ts.Home), "PATH=" + os.Getenv("PATH"), "SIGNET_HOME=" + ts.Home,
		}}
		login.runInput(t, pw, append(cacert, "login", ts.Addr, "-u", admin, "--password-stdin")...)
		trustctl := func(args ...string) string {
			t.Helper()
			code, out := ts.trustctlCode(t, []string{sslEnv}, args...)
			if code != 0 {
				t.Fatalf("trustctl %s exited %d:\n%s", strings.Join(args, " "), code, out)
			}
			return out
		}
		trustctl("keys", "generate", "alice")
		trustctl("org", "create", "acme")
		trustctl("org", "delegate", "acme/app", "--key", "alice")
		img := newImage(t, "trustctl-tls", newLayer(t, "tls/trustctl.bin", 64<<10))
		trustctl("push", writeLayout(t, img), ts.Addr+"/acme/app:v1", "--key", "alice")
		ts.verifyJSON(t, []string{sslEnv}, "acme/app:v1", 0)
		dir := filepath.Join(t.TempDir(), "pulled")
		trustctl("pull", ts.Addr+"/acme/app:v1", dir)
		for d, want := range img.blobs() {
			got, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("trustctl pull: blob %s differs (%v)", d, err)
			}
		}
		// Without the CA, trustctl cannot reach the registry: verify exits 13.
		if code, out := ts.trustctlCode(t, nil, "verify", ts.Addr+"/acme/app:v1"); code != 13 || !strings.Contains(out, "certificate") {
			t.Fatalf("trustctl verify without the CA exited %d, want 13 naming the certificate:\n%s", code, out)
		}
	})

	t.Run("a new certificate on disk is served without a restart", func(t *testing.T) {
		trustdAddr := strings.TrimPrefix(ts.Trustd, "https://")
		before := ts.serial(t, ts.Addr)
		ca, caKey, err := ts.files.LoadDevCA()
		if err != nil {
			t.Fatal(err)
		}
		cert, key, err := tlsserve.NewDevLeaf(ca, caKey, []string{"localhost", "127.0.0.1", "::1"}, false, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := tlsserve.WritePair(ts.files.ServerCert, ts.files.ServerKey, cert, key); err != nil {
			t.Fatal(err)
		}
		want := cert.SerialNumber.String()
		if want == before {
			t.Fatal("the new certificate has the old serial")
		}
		for _, addr := range []string{ts.Addr, trustdAddr} {
			deadline := time.Now().Add(10 * time.Second)
			got := ts.serial(t, addr)
			for got != want && time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
				got = ts.serial(t, addr)
			}
			if got != want {
				t.Errorf("%s still presents serial %s, want the new %s", addr, got, want)
			}
		}
		// The registry keeps answering, on the new certificate.
		resp, err := ts.httpClient().Get("https://" + ts.Addr + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("GET /v2/ after the reload: %s", resp.Status)
		}
	})
}

// TestTLSTrustctlClientCertificate: with trustd on tls.requireClientCert, trustctl
// manages trustd with --client-cert and --client-key for the admin, and is
// refused without them.
func TestTLSTrustctlClientCertificate(t *testing.T) {
	t.Parallel()
	if reference {
		t.Skip("the reference registry has no token service")
	}
	if trustdErr != nil {
		t.Fatal(trustdErr)
	}
	dir := t.TempDir()
	files, _, err := tlsserve.EnsureDevCerts(filepath.Join(dir, "tls"), []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	adminCert, adminKey := writeClientCert(t, files, "admin")
	password := newPassword()
	td := startTrustdArgs(t, password, "https", "--tls-cert", files.ServerCert, "--tls-key", files.ServerKey,
		"--tls-client-ca", files.CACert, "--tls-require-client-cert")
	reg := startRegistry(t, "--trustd", td.url, "--tls-ca", files.CACert)

	home := filepath.Join(dir, "signet")
	ctl := &tool{path: trustctlBin, dir: dir, env: []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "SIGNET_HOME=" + home}}
	cacert := []string{"--cacert", files.CACert}
	withCert := append([]string{"--client-cert", adminCert, "--client-key", adminKey}, cacert...)
	// Logging in needs no certificate: /token does not ask for one.
	ctl.runInput(t, password, append(cacert, "login", reg.Addr, "-u", "admin", "--password-stdin")...)

	if out := ctl.run(t, append(withCert, "org", "create", "acme")...); !strings.Contains(out, "acme") {
		t.Fatalf("trustctl org create with the admin's client certificate said:\n%s", out)
	}
	if out := ctl.runInput(t, newPassword(), append(withCert, "user", "create", "alice", "--password-stdin")...); !strings.Contains(out, "alice") {
		t.Fatalf("trustctl user create with the admin's client certificate said:\n%s", out)
	}
	out := ctl.mustFail(t, append(cacert, "org", "create", "other")...)
	if !strings.Contains(out, "client certificate") {
		t.Fatalf("trustctl org create without a client certificate failed, but not for the certificate:\n%s", out)
	}
	// A certificate for alice authenticates alice, who is no admin.
	aliceCert, aliceKey := writeClientCert(t, files, "alice")
	out = ctl.mustFail(t, append(cacert, "--client-cert", aliceCert, "--client-key", aliceKey, "org", "create", "other")...)
	if !strings.Contains(out, "admin") {
		t.Fatalf("trustctl org create with alice's client certificate failed, but not for want of admin rights:\n%s", out)
	}
	if out := ctl.mustFail(t, append(cacert, "--client-cert", adminCert, "org", "create", "other")...); !strings.Contains(out, "--client-key") {
		t.Fatalf("--client-cert without --client-key failed, but without naming --client-key:\n%s", out)
	}
}

// writeClientCert issues a client certificate for account name from the
// development CA of files, and returns the certificate and key files.
func writeClientCert(t *testing.T, files tlsserve.DevFiles, name string) (certFile, keyFile string) {
	t.Helper()
	ca, caKey, err := files.LoadDevCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := tlsserve.NewDevLeaf(ca, caKey, []string{name}, true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := tlsserve.WritePair(certFile, keyFile, cert, key); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// startTrustdArgs runs trustd serve on a fresh data directory and a free port
// with args added, and returns it with its URL of scheme; it is killed when the
// test ends.
func startTrustdArgs(t *testing.T, adminPassword, scheme string, args ...string) *trustdProc {
	t.Helper()
	p := &trustdProc{log: &testlog.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(trustdBin, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir()}, args...)...)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "SIGNET_ADMIN_PASSWORD=" + adminPassword}
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("trustd log:\n%s", p.log.Tail(40))
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := trustdListening.FindStringSubmatch(p.log.String()); m != nil {
			p.url = scheme + "://" + strings.Trim(m[1], `"`)
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("trustd exited before listening:\n%s", p.log.Tail(40))
		default:
		}
	}
	t.Fatalf("trustd did not listen within 30s:\n%s", p.log.Tail(40))
	return nil
}
