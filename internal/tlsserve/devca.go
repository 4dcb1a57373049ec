package tlsserve

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/signet-oss/signet/internal/atomicfile"
)

// DevFiles are the files of a development CA and the server certificate it
// issued, as `trustctl up --tls` keeps them. The directory holds certificates
// only, so it can be given as is to clients that read a directory of CA
// certificates (skopeo's --cert-dir, docker's certs.d), which refuse a key
// without a client certificate next to it:
//
//	DIR/
//	├── ca.crt           the development CA (ECDSA P-256): what clients trust
//	├── server.crt       the server certificate, for the hosts it was asked for
//	└── private/         0700
//	    ├── ca.key       the CA's key (0600)
//	    └── server.key   the server certificate's key (0600)
type DevFiles struct {
	CACert, CAKey, ServerCert, ServerKey string
}

// DevFilesIn names the development files under dir.
func DevFilesIn(dir string) DevFiles {
	return DevFiles{
		CACert:     filepath.Join(dir, "ca.crt"),
		CAKey:      filepath.Join(dir, "private", "ca.key"),
		ServerCert: filepath.Join(dir, "server.crt"),
		ServerKey:  filepath.Join(dir, "private", "server.key"),
	}
}

// Development certificate lifetimes: the CA outlives many server certificates;
// a server certificate stays under the 398 days browsers and Apple accept.
const (
	devCALifetime     = 10 * 365 * 24 * time.Hour
	devServerLifetime = 397 * 24 * time.Hour
	devRenewBefore    = 30 * 24 * time.Hour
)

// Names in the development certificates, by which a server certificate up
// issued is known even when the CA that issued it is gone.
const (
	devOrg      = "Signet development"
	devServerCN = "Signet development server"
)

// DevResult says what EnsureDevCerts did.
type DevResult struct {
	// Wrote is true when it wrote a file.
	Wrote bool
	// Foreign, when not empty, says that the server certificate file holds a
	// certificate the development CA did not issue (an operator's own), which is
	// left as it is: never renewed nor reissued for new hosts.
	Foreign string
}

// EnsureDevCerts makes a development CA and a server certificate for hosts (DNS
// names and IP addresses) under dir, reusing what is there: the CA while it
// loads and is valid, the server certificate while the CA signed it, it names
// every host and has more than 30 days left. It replaces only a server
// certificate a development CA issued: any other certificate in its place is
// left alone, and the result says so.
func EnsureDevCerts(dir string, hosts []string, now time.Time) (DevFiles, DevResult, error) {
	f := DevFilesIn(dir)
	var res DevResult
	if err := os.MkdirAll(filepath.Join(dir, "private"), 0o700); err != nil {
		return f, res, err
	}
	prevCA, _ := readCert(f.CACert) // what issued the server certificate, even if it has expired
	ca, caKey, err := loadPair(f.CACert, f.CAKey)
	if err != nil || now.After(ca.NotAfter) || !ca.IsCA {
		if ca, caKey, err = newDevCA(now); err != nil {
			return f, res, err
		}
		if err := writePair(f.CACert, f.CAKey, ca, caKey); err != nil {
			return f, res, err
		}
		res.Wrote = true
	}
	srv, err := readCert(f.ServerCert)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		res.Foreign = fmt.Sprintf("%s holds no certificate that can be read (%v): it is left as it is", f.ServerCert, err)
		return f, res, nil
	case !devIssued(srv, ca, prevCA):
		res.Foreign = fmt.Sprintf("%s was not issued by the development CA (its issuer is %q): it is served as it is, never renewed nor reissued for new hosts, and clients must trust its own issuer", f.ServerCert, srv.Issuer.String())
		return f, res, nil
	case !res.Wrote && srv.CheckSignatureFrom(ca) == nil && now.Add(devRenewBefore).Before(srv.NotAfter) && coversHosts(srv, hosts):
		if _, _, err := loadPair(f.ServerCert, f.ServerKey); err == nil {
			return f, res, nil
		}
	}
	srv, srvKey, err := newDevServerCert(ca, caKey, hosts, now)
	if err != nil {
		return f, res, err
	}
	res.Wrote = true
	return f, res, writePair(f.ServerCert, f.ServerKey, srv, srvKey)
}

// devIssued reports whether srv is a server certificate a development CA
// issued: the current one, the one before it, or one whose files are gone.
func devIssued(srv *x509.Certificate, ca, prevCA *x509.Certificate) bool {
	if srv.CheckSignatureFrom(ca) == nil || (prevCA != nil && srv.CheckSignatureFrom(prevCA) == nil) {
		return true
	}
	return srv.Subject.CommonName == devServerCN && slices.Equal(srv.Subject.Organization, []string{devOrg}) &&
		slices.Equal(srv.Issuer.Organization, []string{devOrg})
}

// readCert reads the first certificate of a PEM file.
func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM certificate")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

func coversHosts(c *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(c.DNSNames, h) {
			return false
		}
	}
	return true
}

func newDevCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Signet development CA (" + now.UTC().Format("2006-01-02") + ")", Organization: []string{devOrg}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(devCALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// NewDevLeaf issues a certificate from ca for hosts, with a fresh P-256 key:
// a server certificate, or with client true a client certificate whose
// CommonName is hosts[0].
func NewDevLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string, client bool, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(devServerLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		if len(hosts) > 0 {
			tmpl.Subject.CommonName = hosts[0]
		}
	} else {
		tmpl.Subject = pkix.Name{CommonName: devServerCN, Organization: []string{devOrg}}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func newDevServerCert(ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("a server certificate needs at least one host")
	}
	return NewDevLeaf(ca, caKey, hosts, false, now)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// loadPair reads a certificate and its ECDSA key.
func loadPair(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s is not an ECDSA key", keyPath)
	}
	return pair.Leaf, key, nil
}

// LoadDevCA reads the development CA of f, to issue further certificates.
func (f DevFiles) LoadDevCA() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	return loadPair(f.CACert, f.CAKey)
}

// WritePair writes a certificate (0644) and its key (0600) as PEM, each by a
// rename so a reader never sees half a file.
func WritePair(certPath, keyPath string, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	return writePair(certPath, keyPath, cert, key)
}

func writePair(certPath, keyPath string, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return atomicfile.Write(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
}
