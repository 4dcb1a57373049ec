package tlsserve

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testServer is a TLS listener that completes handshakes with cfg.
type testServer struct {
	addr  string
	files DevFiles
	pool  *x509.CertPool
	clock *fakeClock
	log   *lockedBuffer
}

func startTestServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	clock := &fakeClock{t: time.Now()}
	files, _, err := EnsureDevCerts(dir, []string{"localhost", "127.0.0.1"}, clock.now())
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cfg, err := Config{Cert: files.ServerCert, Key: files.ServerKey}.serverConfig("tls", slog.New(slog.NewTextHandler(logs, nil)), clock.now)
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
				c.(*tls.Conn).Handshake()
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

// issue writes a new server certificate from the CA over the server's files.
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
	if err := WritePair(s.files.ServerCert, s.files.ServerKey, cert, key); err != nil {
		t.Fatal(err)
	}
	// Filesystems with coarse timestamps could give the new files the old
	// modification time; the size alone may not differ either.
	later := time.Now().Add(time.Minute)
	os.Chtimes(s.files.ServerCert, later, later)
	os.Chtimes(s.files.ServerKey, later, later)
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
	// A half-written certificate file.
	if err := os.WriteFile(s.files.ServerCert, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	s.clock.advance(1100 * time.Millisecond)
	if got := s.serial(t); got != first {
		t.Fatalf("with a half-written certificate the server presents %s, want the old %s", got, first)
	}
	if !strings.Contains(s.log.String(), "do not load") {
		t.Fatalf("the failed reload was not logged as an error:\n%s", s.log)
	}
	// A certificate whose key is another's.
	second := s.issue(t)
	other := startTestServer(t)
	otherKey, err := os.ReadFile(other.files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(s.files.ServerKey, otherKey, 0o600)
	later := time.Now().Add(2 * time.Minute)
	os.Chtimes(s.files.ServerKey, later, later)
	s.clock.advance(1100 * time.Millisecond)
	if got := s.serial(t); got != first {
		t.Fatalf("with a mismatched key the server presents %s, want the old %s", got, first)
	}
	// Completing the rotation is picked up.
	third := s.issue(t)
	s.clock.advance(1100 * time.Millisecond)
	if got := s.serial(t); got != third || got == second {
		t.Fatalf("after a good pair the server presents %s, want %s", got, third)
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
	f, wrote, err := EnsureDevCerts(dir, []string{"localhost", "127.0.0.1", "::1"}, now)
	if err != nil || !wrote {
		t.Fatalf("first run: wrote %v, %v", wrote, err)
	}
	for _, p := range []string{f.CAKey, f.ServerKey} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v (%v), want 0600", p, fi.Mode().Perm(), err)
		}
	}
	before, _ := os.ReadFile(f.ServerCert)
	if _, wrote, err := EnsureDevCerts(dir, []string{"localhost", "127.0.0.1", "::1"}, now); err != nil || wrote {
		t.Fatalf("second run: wrote %v, %v; want the files reused", wrote, err)
	}
	caBefore, _ := os.ReadFile(f.CACert)
	if _, wrote, err := EnsureDevCerts(dir, []string{"localhost", "registry.test"}, now); err != nil || !wrote {
		t.Fatalf("a new host: wrote %v, %v; want a new server certificate", wrote, err)
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
