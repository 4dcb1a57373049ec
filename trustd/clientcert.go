package trustd

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/signet-oss/signet/internal/tlsserve"
	"github.com/signet-oss/signet/trustd/directory"
)

// Client certificates for the management API. With tls.clientCA set, trustd asks
// every TLS client for a certificate and verifies the one it gets against that
// CA; a verified certificate authenticates a management API request as the
// account its subject CommonName names, so an admin's certificate has admin
// rights and any other account's has that account's. A connection without a
// certificate still works as before (bearer tokens), unless
// tls.requireClientCert makes the management API refuse it. The token endpoint,
// the JWKS and the TUF metadata never look at certificates.
//
// A certificate names an account, not one holder of it: an account deleted and
// made again under the same name is reached by the old certificates. A
// certificate is revoked by replacing tls.clientCA, which trustd reloads.

// TLSConfig is trustd's tls section.
type TLSConfig struct {
	// Cert is the PEM certificate chain trustd presents (tls.cert; flag
	// --tls-cert). With Key, trustd serves HTTPS, reloading the pair when the
	// files change.
	Cert string `yaml:"cert"`
	// Key is its PEM private key (tls.key; flag --tls-key).
	Key string `yaml:"key"`
	// ClientCA is a PEM bundle of the CAs that client certificates are verified
	// against (tls.clientCA; flag --tls-client-ca; default none: no client
	// certificates). It is reloaded when the file changes, as the pair is:
	// replacing the CA is how certificates are revoked.
	ClientCA string `yaml:"clientCA"`
	// RequireClientCert makes the management API (/api/v1) refuse every request
	// that comes without a client certificate verified against ClientCA
	// (tls.requireClientCert; flag --tls-require-client-cert; default false).
	RequireClientCert bool `yaml:"requireClientCert"`
}

func (c TLSConfig) serving() tlsserve.Config {
	return tlsserve.Config{Cert: c.Cert, Key: c.Key, ClientCA: c.ClientCA}
}

func (c TLSConfig) validate() error {
	var errs []error
	if err := c.serving().Validate("tls"); err != nil {
		errs = append(errs, err)
	}
	if c.ClientCA != "" {
		if _, err := os.Stat(c.ClientCA); err != nil {
			errs = append(errs, fmt.Errorf("tls.clientCA: %w", err))
		}
	}
	if c.RequireClientCert && c.ClientCA == "" {
		errs = append(errs, errors.New("tls.requireClientCert: needs tls.clientCA, the CA client certificates are verified against"))
	}
	return errors.Join(errs...)
}

// verifiedClientCert returns the client certificate of r's connection if the TLS
// layer verified it against tls.clientCA, else nil.
func (s *Server) verifiedClientCert(r *http.Request) *x509.Certificate {
	if s.cfg.TLS.ClientCA == "" || r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return r.TLS.VerifiedChains[0][0]
}

// caller authenticates a management API request: by its verified client
// certificate, else by its bearer token (unless tls.requireClientCert). A request
// that carries both must name one account with them.
func (s *Server) caller(r *http.Request) (directory.Principal, error) {
	cert := s.verifiedClientCert(r)
	if cert == nil {
		if s.cfg.TLS.RequireClientCert {
			return directory.Principal{}, fmt.Errorf("%w: this API needs a client certificate issued by the CA trustd trusts for them (tls.clientCA)", errUnauth)
		}
		return s.bearer(r)
	}
	p, ok := s.dir.PrincipalOf(cert.Subject.CommonName)
	if !ok {
		return directory.Principal{}, fmt.Errorf("%w: the client certificate's CommonName %q names no account", errUnauth, cert.Subject.CommonName)
	}
	if r.Header.Get("Authorization") != "" {
		bp, err := s.bearer(r)
		if err != nil {
			return directory.Principal{}, err
		}
		if bp.Name != p.Name {
			return directory.Principal{}, fmt.Errorf("%w: the access token speaks for %q, the client certificate for %q", errUnauth, bp.Name, p.Name)
		}
	}
	return p, nil
}
