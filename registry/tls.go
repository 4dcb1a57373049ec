package registry

import (
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/signet-oss/signet/internal/tlsserve"
)

// TLSConfig is the registry's tls section: with a certificate and key it serves
// HTTPS (reloading them when the files change), and CA lets its own calls to
// trustd trust a private CA.
type TLSConfig struct {
	// Cert is the PEM certificate chain the registry presents (tls.cert; flag
	// --tls-cert).
	Cert string `yaml:"cert"`
	// Key is its PEM private key (tls.key; flag --tls-key).
	Key string `yaml:"key"`
	// CA is a PEM bundle trusted, besides the system's roots, for the registry's
	// calls to trustd: tokens for the gate, trust metadata, the JWKS and the
	// /token it passes on (tls.ca; flag --tls-ca).
	CA string `yaml:"ca"`
}

func (c TLSConfig) serving() tlsserve.Config { return tlsserve.Config{Cert: c.Cert, Key: c.Key} }

func (c TLSConfig) validate() error {
	var errs []error
	if err := c.serving().Validate("tls"); err != nil {
		errs = append(errs, err)
	}
	if c.CA != "" {
		if _, err := os.Stat(c.CA); err != nil {
			errs = append(errs, fmt.Errorf("tls.ca: %w", err))
		}
	}
	return errors.Join(errs...)
}

// transport is what the registry's calls to trustd go through.
func (c TLSConfig) transport() (http.RoundTripper, error) {
	rt, err := tlsserve.Transport(c.CA)
	if err != nil {
		return nil, fmt.Errorf("tls.ca: %w", err)
	}
	return rt, nil
}
