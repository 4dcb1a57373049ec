package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/signet-oss/signet/internal/tlsserve"
)

// defaultTLS is the TLS configuration of http.DefaultTransport, made if there is
// none. Every HTTP client trustctl makes goes through http.DefaultTransport or a
// clone of it made later, so the global TLS flags change it once, before the
// command does anything.
func defaultTLS(flag string) (*tls.Config, error) {
	tr, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("%s: the default HTTP transport cannot be configured", flag)
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return tr.TLSClientConfig, nil
}

// trustCA makes every HTTPS call of this process trust the PEM certificates in
// file besides the system's roots (and any CA trusted before).
func trustCA(file string) error {
	cfg, err := defaultTLS("--cacert")
	if err != nil {
		return err
	}
	pool := cfg.RootCAs
	if pool == nil {
		if pool, err = tlsserve.CertPool(""); err != nil {
			return err
		}
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("--cacert: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("--cacert: %s holds no PEM certificate", file)
	}
	cfg.RootCAs = pool
	return nil
}

// useClientCert makes every HTTPS call of this process present the client
// certificate in certFile (with its key in keyFile) to a server that asks for
// one; a server that does not ask never sees it. Both empty is no certificate.
func useClientCert(certFile, keyFile string) error {
	switch {
	case certFile == "" && keyFile == "":
		return nil
	case certFile == "":
		return fmt.Errorf("--client-cert: must be given with --client-key")
	case keyFile == "":
		return fmt.Errorf("--client-key: must be given with --client-cert")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("--client-cert, --client-key: %w", err)
	}
	cfg, err := defaultTLS("--client-cert")
	if err != nil {
		return err
	}
	cfg.Certificates = []tls.Certificate{pair}
	return nil
}

// upTLS makes (or reuses) the development CA and server certificate of a stack
// under dataDir/tls, for the local machine's names and the hosts of the listen
// addresses, and makes this process trust the CA. A server certificate the
// development CA did not issue is served as it is, and w is told so.
func upTLS(w io.Writer, dataDir string, listenAddrs ...string) (tlsserve.DevFiles, error) {
	hostname, _ := os.Hostname()
	files, res, err := tlsserve.EnsureDevCerts(filepath.Join(dataDir, "tls"), devCertHosts(hostname, listenAddrs...), time.Now())
	if err != nil {
		return files, fmt.Errorf("--tls: the development certificates: %w", err)
	}
	if res.Foreign != "" {
		fmt.Fprintln(w, "trustctl up --tls:", res.Foreign)
	}
	return files, trustCA(files.CACert)
}

// devCertHosts are the names the development server certificate is for: the
// local machine's, and the host of each listen address unless it is an
// unspecified address (0.0.0.0, ::), which no client connects to by name.
func devCertHosts(hostname string, listenAddrs ...string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	add := func(h string) {
		if h == "" || slices.Contains(hosts, h) {
			return
		}
		if ip := net.ParseIP(h); ip != nil {
			if ip.IsUnspecified() || slices.ContainsFunc(hosts, func(o string) bool { return ip.Equal(net.ParseIP(o)) }) {
				return
			}
			h = ip.String()
		}
		hosts = append(hosts, h)
	}
	add(hostname)
	for _, a := range listenAddrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = a
		}
		add(strings.Trim(host, "[]"))
	}
	return hosts
}

// printTLSLines tells how each client trusts the development CA.
func printTLSLines(w io.Writer, files tlsserve.DevFiles, regAddr string) {
	certDir := filepath.Dir(files.CACert)
	fmt.Fprintf(w, `
TLS is on: the registry and trustd present a certificate of the development CA %[1]s
(for this local stack only). Clients trust it so:
  Go clients (crane, oras, regctl, trustctl):  export SSL_CERT_FILE=%[1]s
  trustctl, keeping the system's roots too:    trustctl --cacert %[1]s ...
  regctl:   regctl registry set --cacert "$(cat %[1]s)" %[2]s
  oras:     oras push --ca-file %[1]s ...
  skopeo:   skopeo copy --dest-cert-dir %[3]s (or --src-cert-dir, --cert-dir) ...
  docker:   sudo mkdir -p /etc/docker/certs.d/%[2]s && sudo cp %[1]s /etc/docker/certs.d/%[2]s/ca.crt
`, files.CACert, regAddr, certDir)
}
