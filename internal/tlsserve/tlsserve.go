// Package tlsserve is the tls section of the registry's and trustd's
// configuration: it turns a certificate, its key and an optional client CA into
// the *tls.Config a server listens with.
//
// Its main invariant: a server always presents a certificate and key that loaded
// together in full, and verifies client certificates against a client CA bundle
// that loaded in full. The files are watched (stat at most once a second, on a
// handshake): a new pair or CA bundle replaces the old one for every later
// handshake without a restart, and one that does not load (a half-written file, a
// key that does not match) leaves the old one in use and is logged as an error.
package tlsserve

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
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
	// up to the server. The bundle is reloaded when the file changes.
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
	r := &reloader{prefix: prefix, log: log, now: now}
	r.pair = fileSet{what: "tls certificate", keys: prefix + ".cert, " + prefix + ".key", paths: []string{c.Cert, c.Key}}
	if err := r.pair.load(r.loadPair); err != nil {
		return nil, fmt.Errorf("%s.cert, %s.key: %w", prefix, prefix, err)
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   modernCipherSuites(),
		GetCertificate: r.getCertificate,
	}
	if c.ClientCA != "" {
		// The handshake takes its client CAs from the config GetConfigForClient
		// returns, made anew whenever the CA file changes. That config is not the
		// clone http.Server makes, so it names the protocols the server's would.
		cfg.NextProtos = []string{"h2", "http/1.1"}
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		r.base = cfg
		r.clientCA = &fileSet{what: "tls client CA", keys: prefix + ".clientCA", paths: []string{c.ClientCA}}
		if err := r.clientCA.load(r.loadClientCA); err != nil {
			return nil, fmt.Errorf("%s.clientCA: %w", prefix, err)
		}
		cfg.ClientCAs = r.caConfig.ClientCAs
	}
	cfg.GetConfigForClient = r.getConfigForClient
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
