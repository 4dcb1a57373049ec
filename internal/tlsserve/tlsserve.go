// Package tlsserve is the tls section of the registry's and trustd's
// configuration: it turns a certificate, its key and an optional client CA into
// the *tls.Config a server listens with.
//
// Its main invariant: a server always presents a certificate and key that loaded
// together in full. The files are watched (stat at most once a second, on a
// handshake): a new pair replaces the old one for every later handshake without a
// restart, and a pair that does not load (a half-written file, a key that does not
// match) leaves the old pair serving and is logged as an error.
package tlsserve

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"
)

// Config is a server's tls section. With Cert and Key empty the server speaks
// plain HTTP.
type Config struct {
	// Cert is the PEM certificate chain the server presents, leaf first
	// (tls.cert).
	Cert string `yaml:"cert"`
	// Key is the PEM private key of the leaf certificate (tls.key).
	Key string `yaml:"key"`
	// ClientCA is a PEM bundle of the CAs that client certificates are verified
	// against (tls.clientCA, default none: client certificates are not asked for).
	// A client may still connect without one; what a verified certificate means is
	// up to the server.
	ClientCA string `yaml:"clientCA"`
}

// Enabled reports whether the server should speak TLS.
func (c Config) Enabled() bool { return c.Cert != "" || c.Key != "" }

// Validate checks the section whose keys start with prefix (e.g. "tls"),
// naming the key that is wrong.
func (c Config) Validate(prefix string) error {
	var errs []error
	switch {
	case c.Cert != "" && c.Key == "":
		errs = append(errs, fmt.Errorf("%s.key: must be set with %s.cert", prefix, prefix))
	case c.Cert == "" && c.Key != "":
		errs = append(errs, fmt.Errorf("%s.cert: must be set with %s.key", prefix, prefix))
	}
	if c.ClientCA != "" && !c.Enabled() {
		errs = append(errs, fmt.Errorf("%s.clientCA: needs %s.cert and %s.key: client certificates exist only over TLS", prefix, prefix, prefix))
	}
	return errors.Join(errs...)
}

// minReloadInterval bounds how often the certificate files are looked at.
const minReloadInterval = time.Second

// ServerConfig returns the *tls.Config of c: TLS 1.2 or later, for TLS 1.2 only
// ECDHE key exchange with AEAD ciphers (TLS 1.3's suites are fixed by Go), the
// certificate pair reloaded when its files change. It loads the pair once, so a
// server does not start on files that do not load. log receives reloads and
// failed reloads. The config is nil when c does not enable TLS.
func (c Config) ServerConfig(prefix string, log *slog.Logger) (*tls.Config, error) {
	return c.serverConfig(prefix, log, time.Now)
}

// serverConfig is ServerConfig with the clock that paces reloads.
func (c Config) serverConfig(prefix string, log *slog.Logger, now func() time.Time) (*tls.Config, error) {
	if err := c.Validate(prefix); err != nil {
		return nil, err
	}
	if !c.Enabled() {
		return nil, nil
	}
	r := &reloader{certPath: c.Cert, keyPath: c.Key, log: log, now: now}
	if err := r.load(); err != nil {
		return nil, fmt.Errorf("%s.cert, %s.key: %w", prefix, prefix, err)
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   modernCipherSuites(),
		GetCertificate: r.getCertificate,
	}
	if c.ClientCA != "" {
		pool, err := loadPool(c.ClientCA, x509.NewCertPool())
		if err != nil {
			return nil, fmt.Errorf("%s.clientCA: %w", prefix, err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// modernCipherSuites are the TLS 1.2 suites offered: forward secret (ECDHE) and
// authenticated encryption (GCM, ChaCha20-Poly1305) only.
func modernCipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// CertPool returns the system's roots plus the PEM certificates in caFile: what
// a server's own outbound calls trust. An empty caFile is the system's roots.
func CertPool(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	return loadPool(caFile, pool)
}

// Transport returns a clone of http.DefaultTransport that trusts the system's
// roots plus the certificates in caFile; with caFile empty, http.DefaultTransport
// itself.
func Transport(caFile string) (http.RoundTripper, error) {
	if caFile == "" {
		return http.DefaultTransport, nil
	}
	pool, err := CertPool(caFile)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr, nil
}

func loadPool(path string, pool *x509.CertPool) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// reloader serves the current certificate pair, loading it again when either
// file's size or modification time changes.
type reloader struct {
	certPath, keyPath string
	log               *slog.Logger
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   stamp // of the files cert was loaded from
	failed  stamp // of the files that last failed to load, so each is logged once
	statErr bool  // the files could not be read at the last check
	checked time.Time
}

// stamp identifies a version of the two files.
type stamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func (r *reloader) currentStamp() (stamp, error) {
	ci, err := os.Stat(r.certPath)
	if err != nil {
		return stamp{}, err
	}
	ki, err := os.Stat(r.keyPath)
	if err != nil {
		return stamp{}, err
	}
	return stamp{certMod: ci.ModTime(), keyMod: ki.ModTime(), certSize: ci.Size(), keySize: ki.Size()}, nil
}

// load reads the pair; r.mu is held or r is not yet shared.
func (r *reloader) load() error {
	st, err := r.currentStamp()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(r.certPath, r.keyPath)
	if err != nil {
		return err
	}
	r.cert, r.stamp = &cert, st
	return nil
}

func (r *reloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= minReloadInterval {
		r.checked = now
		r.maybeReload()
	}
	return r.cert, nil
}

// maybeReload loads the pair again if its files changed; r.mu is held.
func (r *reloader) maybeReload() {
	st, err := r.currentStamp()
	if err != nil {
		if !r.statErr {
			r.statErr = true
			r.log.Error("tls certificate files cannot be read: serving the previous certificate", "cert", r.certPath, "key", r.keyPath, "err", err)
		}
		return
	}
	r.statErr = false
	if st == r.stamp || st == r.failed {
		return
	}
	if err := r.load(); err != nil {
		r.failed = st
		r.log.Error("tls certificate files changed but do not load: serving the previous certificate", "cert", r.certPath, "key", r.keyPath, "err", err)
		return
	}
	r.failed = stamp{}
	attrs := []any{"cert", r.certPath}
	if leaf := r.cert.Leaf; leaf != nil {
		attrs = append(attrs, "subject", leaf.Subject.String(), "notAfter", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	r.log.Info("tls certificate reloaded", attrs...)
}
