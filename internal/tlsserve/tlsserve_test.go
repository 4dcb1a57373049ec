package tlsserve

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/testlog"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testServer is a TLS listener that completes handshakes with cfg.
type testServer struct {
	addr  string
	files DevFiles
	pool  *x509.CertPool
	clock *fakeClock
	log   *testlog.Buffer
}

func startTestServer(t *testing.T) *testServer {
	t.Helper()
	return startTestServerCA(t, "")
}

// startTestServerCA is startTestServer verifying client certificates against
// the bundle in clientCA (none when empty). After a handshake the server writes
// one byte: 'v' when it verified a client certificate, else 'n'.
func startTestServerCA(t *testing.T, clientCA string) *testServer {
	t.Helper()
	dir := t.TempDir()
	clock := &fakeClock{t: time.Now()}
	files, _, err := EnsureDevCerts(dir, []string{"localhost", "127.0.0.1"}, clock.now())
	if err != nil {
		t.Fatal(err)
	}
	// Every version of the files has the same size (see replaceKeepingStamp).
	for path, size := range map[string]int{files.ServerCert: certFileSize, files.ServerKey: keyFileSize} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, pad(t, data, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logs := &testlog.Buffer{}
	cfg, err := Config{Cert: files.ServerCert, Key: files.ServerKey, ClientCA: clientCA}.serverConfig("tls", slog.New(slog.NewTextHandler(logs, nil)), clock.now)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				tc := c.(*tls.Conn)
				if tc.Handshake() != nil {
					return
				}
				verified := byte('n')
				if len(tc.ConnectionState().VerifiedChains) > 0 {
					verified = 'v'
				}
				c.Write([]byte{verified})
				c.Read(make([]byte, 1)) // until the client closes
			}()
		}
	}()
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(files.CACert)
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("reading the CA: %v", err)
	}
	return &testServer{addr: ln.Addr().String(), files: files, pool: pool, clock: clock, log: logs}
}

// The sizes every version of the server's certificate and key files is padded
// to: PEM readers skip what follows the last block.
const (
	certFileSize = 4096
	keyFileSize  = 1024
)

func pad(t *testing.T, data []byte, size int) []byte {
	t.Helper()
	if len(data) > size {
		t.Fatalf("a %d-byte file does not fit in %d bytes", len(data), size)
	}
	return append(data, bytes.Repeat([]byte("\n"), size-len(data))...)
}

// replaceKeepingStamp puts data in place of path by a rename, as rotation
// tools do, with the old file's size (data is padded to it) and modification
// time: only the file itself (its inode) tells the new version from the old.
func replaceKeepingStamp(t *testing.T, path string, data []byte) {
	t.Helper()
	old, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, pad(t, data, int(old.Size())), old.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, old.ModTime(), old.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	now, err := os.Stat(path)
	if err != nil || now.Size() != old.Size() || !now.ModTime().Equal(old.ModTime()) {
		t.Fatalf("the new %s does not keep the old size and time: %v", path, err)
	}
}

// serial is the serial number of the certificate a new connection sees.
func (s *testServer) serial(t *testing.T) string {
	t.Helper()
	c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// issue writes a new server certificate from the CA over the server's files,
// by renames that keep the old files' sizes and modification times.
func (s *testServer) issue(t *testing.T) string {
	t.Helper()
	ca, caKey, err := s.files.LoadDevCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := NewDevLeaf(ca, caKey, []string{"localhost", "127.0.0.1"}, false, s.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
	if err := WritePair(certPath, keyPath, cert, key); err != nil {
		t.Fatal(err)
	}
	for dst, src := range map[string]string{s.files.ServerKey: keyPath, s.files.ServerCert: certPath} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		replaceKeepingStamp(t, dst, data)
	}
	return cert.SerialNumber.String()
}

func TestReloadPicksUpANewCertificateWithoutRestart(t *testing.T) {
	s := startTestServer(t)
	first := s.serial(t)
	second := s.issue(t)
	if second == first {
		t.Fatal("the new certificate has the old serial")
	}
	if got := s.serial(t); got != first {
		t.Fatalf("within a second of the last check the server presents %s, want the old %s (files are stat'ed at most once a second)", got, first)
	}
	s.clock.advance(1100 * time.Millisecond)
	if got := s.serial(t); got != second {
		t.Fatalf("after the files changed the server presents %s, want the new %s", got, second)
	}
	if !strings.Contains(s.log.String(), "tls certificate reloaded") {
		t.Fatalf("no reload logged:\n%s", s.log)
	}
}

func TestABrokenNewPairKeepsTheOldCertificate(t *testing.T) {
	s := startTestServer(t)
	first := s.serial(t)
	good, err := os.ReadFile(s.files.ServerCert)
	if err != nil {
		t.Fatal(err)
	}
	// A half-written certificate file, renamed into place.
	good = bytes.TrimRight(good, "\n")
	replaceKeepingStamp(t, s.files.ServerCert, good[:len(good)/2])
	s.clock.advance(1100 * time.Millisecond)
	if got := s.serial(t); got != first {
		t.Fatalf("with a half-written certificate the server presents %s, want the old %s", got, first)
	}
	s.clock.advance(1100 * time.Millisecond)
	s.serial(t)
	if n := strings.Count(s.log.String(), "do not load"); n != 1 {
		t.Fatalf("the failed reload was logged %d times, want once as an error:\n%s", n, s.log)
	}
	// A certificate whose key is another's.
	second := s.issue(t)
	other := startTestServer(t)
	otherKey, err := os.ReadFile(other.files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	replaceKeepingStamp(t, s.files.ServerKey, otherKey)
	s.clock.advance(1100 * time.Millisecond)
	if got := s.serial(t); got != first {
		t.Fatalf("with a mismatched key the server presents %s, want the old %s", got, first)
	}
	if n := strings.Count(s.log.String(), "do not load"); n != 2 {
		t.Fatalf("a second broken version was logged %d times in all, want it tried and logged:\n%s", n, s.log)
	}
	// Completing the rotation is picked up, though the failed versions had the
	// same sizes and times.
	third := s.issue(t)
	s.clock.advance(1100 * time.Millisecond)
	if got := s.serial(t); got != third || got == second {
		t.Fatalf("after a good pair the server presents %s, want %s", got, third)
	}
}

// dialWith connects with cert as the client certificate and returns the
// server's verdict: 'v' verified, 'n' no certificate, or the error.
func (s *testServer) dialWith(t *testing.T, cert *tls.Certificate, cache tls.ClientSessionCache) (byte, error) {
	t.Helper()
	cfg := &tls.Config{RootCAs: s.pool, ServerName: "localhost", ClientSessionCache: cache}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c, err := tls.Dial("tcp", s.addr, cfg)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return 0, err // TLS 1.3: the server's verdict on the certificate arrives after the handshake
	}
	return b[0], nil
}

// clientPair issues a client certificate for name from the CA of files.
func clientPair(t *testing.T, files DevFiles, name string) *tls.Certificate {
	t.Helper()
	ca, caKey, err := files.LoadDevCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := NewDevLeaf(ca, caKey, []string{name}, true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WritePair(filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key"), cert, key); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key"))
	if err != nil {
		t.Fatal(err)
	}
	return &pair
}

func TestANewClientCAIsUsedWithoutRestart(t *testing.T) {
	caA, _, err := EnsureDevCerts(t.TempDir(), []string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caB, _, err := EnsureDevCerts(t.TempDir(), []string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pemA, _ := os.ReadFile(caA.CACert)
	pemB, _ := os.ReadFile(caB.CACert)
	bundle := filepath.Join(t.TempDir(), "clients.pem")
	if err := os.WriteFile(bundle, pad(t, pemA, 2048), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startTestServerCA(t, bundle)
	certA, certB := clientPair(t, caA, "alice"), clientPair(t, caB, "bob")
	cache := tls.NewLRUClientSessionCache(8) // so the client tries to resume its session with A's certificate

	if v, err := s.dialWith(t, certA, cache); err != nil || v != 'v' {
		t.Fatalf("a certificate of the client CA: %q %v, want it verified", v, err)
	}
	if _, err := s.dialWith(t, certB, nil); err == nil {
		t.Fatal("a certificate of another CA was accepted")
	}
	if v, err := s.dialWith(t, nil, nil); err != nil || v != 'n' {
		t.Fatalf("no certificate: %q %v, want a connection without one", v, err)
	}

	// The bundle now holds B only: A's certificates are refused from the next
	// check on, a resumed session included.
	replaceKeepingStamp(t, bundle, pemB)
	s.clock.advance(1100 * time.Millisecond)
	if v, err := s.dialWith(t, certA, cache); err == nil {
		t.Fatalf("after the client CA changed, a certificate of the old one was taken: %q", v)
	}
	if v, err := s.dialWith(t, certB, nil); err != nil || v != 'v' {
		t.Fatalf("a certificate of the new client CA: %q %v, want it verified", v, err)
	}
	if !strings.Contains(s.log.String(), "tls client CA reloaded") {
		t.Fatalf("no reload logged:\n%s", s.log)
	}

	// A bundle that does not load leaves B's in use.
	replaceKeepingStamp(t, bundle, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"))
	s.clock.advance(1100 * time.Millisecond)
	if v, err := s.dialWith(t, certB, nil); err != nil || v != 'v' {
		t.Fatalf("with a broken bundle, a certificate of the previous one: %q %v, want it verified", v, err)
	}
	if !strings.Contains(s.log.String(), "tls client CA files changed but do not load") {
		t.Fatalf("the broken bundle was not logged as an error:\n%s", s.log)
	}
}

func TestTLS11IsRefused(t *testing.T) {
	s := startTestServer(t)
	_, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.pool, ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	if !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("a TLS 1.1 handshake failed with %v, want a protocol version alert", err)
	}
	// A TLS 1.2 client with only a CBC suite finds nothing in common.
	_, err = tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.pool, ServerName: "localhost", MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}})
	if err == nil {
		t.Fatal("a TLS 1.2 handshake with only a CBC suite succeeded")
	}
	// TLS 1.2 with a modern suite works.
	c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.pool, ServerName: "localhost", MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	}
	c.Close()
}

func TestValidateNamesTheKey(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"a cert without a key names tls.key", Config{Cert: "c.pem"}, "tls.key"},
		{"a key without a cert names tls.cert", Config{Key: "k.pem"}, "tls.cert"},
		{"a client CA without TLS names tls.clientCA", Config{ClientCA: "ca.pem"}, "tls.clientCA"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate("tls")
			if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
				t.Fatalf("Validate: %v, want an error naming %s", err, tc.want)
			}
		})
	}
	if err := (Config{}).Validate("tls"); err != nil {
		t.Fatalf("an empty section: %v", err)
	}
	_, err := Config{Cert: "/nonexistent/c.pem", Key: "/nonexistent/k.pem"}.ServerConfig("tls", slog.Default())
	if err == nil || !strings.HasPrefix(err.Error(), "tls.cert") {
		t.Fatalf("missing files: %v, want an error naming tls.cert", err)
	}
	dir := t.TempDir()
	files, _, err := EnsureDevCerts(dir, []string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not pem"), 0o644)
	_, err = Config{Cert: files.ServerCert, Key: files.ServerKey, ClientCA: bad}.ServerConfig("tls", slog.Default())
	if err == nil || !strings.HasPrefix(err.Error(), "tls.clientCA") {
		t.Fatalf("a client CA that is not PEM: %v, want an error naming tls.clientCA", err)
	}
}

func TestEnsureDevCertsReusesItsFiles(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	f, res, err := EnsureDevCerts(dir, []string{"localhost", "127.0.0.1", "::1"}, now)
	if err != nil || !res.Wrote {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	for _, p := range []string{f.CAKey, f.ServerKey} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v (%v), want 0600", p, fi.Mode().Perm(), err)
		}
	}
	before, _ := os.ReadFile(f.ServerCert)
	if _, res, err := EnsureDevCerts(dir, []string{"localhost", "127.0.0.1", "::1"}, now); err != nil || res.Wrote {
		t.Fatalf("second run: %+v, %v; want the files reused", res, err)
	}
	caBefore, _ := os.ReadFile(f.CACert)
	if _, res, err := EnsureDevCerts(dir, []string{"localhost", "registry.test"}, now); err != nil || !res.Wrote || res.Foreign != "" {
		t.Fatalf("a new host: %+v, %v; want a new server certificate", res, err)
	}
	after, _ := os.ReadFile(f.ServerCert)
	caAfter, _ := os.ReadFile(f.CACert)
	if bytes.Equal(before, after) || !bytes.Equal(caBefore, caAfter) {
		t.Fatal("a new host must reissue the server certificate from the same CA")
	}
	cert, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caAfter)
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "registry.test", Roots: pool}); err != nil {
		t.Fatalf("the server certificate does not verify for registry.test: %v", err)
	}
	var hostErr x509.HostnameError
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: pool}); !errors.As(err, &hostErr) {
		t.Fatalf("the server certificate verifies for example.com: %v", err)
	}
}

func TestEnsureDevCertsLeavesAForeignCertificateAlone(t *testing.T) {
	dir := t.TempDir()
	f, _, err := EnsureDevCerts(dir, []string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The operator's own certificate, from a CA of theirs, in place of up's.
	theirCA, theirKey, err := newDevCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	theirCA.Subject.Organization = []string{"Example Corp"}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "registry.example", Organization: []string{"Example Corp"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 24 * time.Hour), DNSNames: []string{"registry.example"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, theirCA, &leafKey.PublicKey, theirKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	if err := WritePair(f.ServerCert, f.ServerKey, leaf, leafKey); err != nil {
		t.Fatal(err)
	}
	certBefore, _ := os.ReadFile(f.ServerCert)
	keyBefore, _ := os.ReadFile(f.ServerKey)
	for _, c := range []struct {
		name  string
		hosts []string
		now   time.Time
	}{
		{"the same hosts", []string{"localhost"}, time.Now()},
		{"a host it does not name", []string{"localhost", "registry.test"}, time.Now()},
		{"under 30 days before it expires", []string{"localhost"}, time.Now()},
		{"after the development CA expired", []string{"localhost"}, time.Now().Add(devCALifetime + time.Hour)},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, res, err := EnsureDevCerts(dir, c.hosts, c.now)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(res.Foreign, f.ServerCert) || !strings.Contains(res.Foreign, "not issued by the development CA") {
				t.Fatalf("Foreign = %q, want it to say %s is not the development CA's", res.Foreign, f.ServerCert)
			}
			certAfter, _ := os.ReadFile(f.ServerCert)
			keyAfter, _ := os.ReadFile(f.ServerKey)
			if !bytes.Equal(certBefore, certAfter) || !bytes.Equal(keyBefore, keyAfter) {
				t.Fatal("the operator's certificate or key was replaced")
			}
		})
	}
	// A file that holds no certificate is left alone too.
	os.WriteFile(f.ServerCert, []byte("not a certificate"), 0o644)
	if _, res, err := EnsureDevCerts(dir, []string{"localhost"}, time.Now()); err != nil || !strings.Contains(res.Foreign, "left as it is") {
		t.Fatalf("a server.crt that is no certificate: %+v, %v; want it left alone and said so", res, err)
	}
	if got, _ := os.ReadFile(f.ServerCert); string(got) != "not a certificate" {
		t.Fatal("a server.crt that is no certificate was replaced")
	}
}

func TestEnsureDevCertsReissuesItsOwnCertificate(t *testing.T) {
	dir := t.TempDir()
	f, _, err := EnsureDevCerts(dir, []string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The CA's files are gone: the server certificate it issued is still up's.
	os.Remove(f.CACert)
	os.Remove(f.CAKey)
	_, res, err := EnsureDevCerts(dir, []string{"localhost"}, time.Now())
	if err != nil || !res.Wrote || res.Foreign != "" {
		t.Fatalf("after the CA was removed: %+v, %v; want a new CA and server certificate", res, err)
	}
	ca, _, err := f.LoadDevCA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := readCert(f.ServerCert)
	if err != nil || srv.CheckSignatureFrom(ca) != nil {
		t.Fatalf("the server certificate is not the new CA's: %v", err)
	}
	// A key that does not match the certificate is replaced with both.
	other, _, err := EnsureDevCerts(t.TempDir(), []string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := os.ReadFile(other.ServerKey)
	os.WriteFile(f.ServerKey, otherKey, 0o600)
	if _, res, err := EnsureDevCerts(dir, []string{"localhost"}, time.Now()); err != nil || !res.Wrote {
		t.Fatalf("a mismatched key: %+v, %v; want a new pair", res, err)
	}
	if _, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey); err != nil {
		t.Fatalf("the new pair does not load: %v", err)
	}
}
