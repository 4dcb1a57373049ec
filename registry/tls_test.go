package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/tlsserve"
)

// TestServeTLS runs the registry over HTTPS with a development CA, in front of a
// token service that is itself on HTTPS from the same CA: the challenge's realm
// says https, and /token reaches the token service only when tls.ca trusts it.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	files, _, err := tlsserve.EnsureDevCerts(dir, []string{"localhost", "127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(files.ServerCert, files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	trustd := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			w.Write([]byte(`{"token":"from-trustd"}`))
			return
		}
		http.NotFound(w, r)
	}))
	trustd.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	trustd.StartTLS()
	defer trustd.Close()
	caPEM, _ := os.ReadFile(files.CACert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}

	serve := func(t *testing.T, ca string) string {
		cfg := Defaults()
		cfg.Storage.Driver = "inmemory"
		cfg.Auth.Token = &TokenAuthConfig{Trustd: trustd.URL}
		cfg.TLS = TLSConfig{Cert: files.ServerCert, Key: files.ServerKey, CA: ca}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- ServeListener(ctx, cfg, ln, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
		t.Cleanup(func() {
			cancel()
			if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("ServeListener: %v", err)
			}
		})
		return "https://" + ln.Addr().String()
	}
	get := func(t *testing.T, url string) (*http.Response, string) {
		t.Helper()
		var resp *http.Response
		var err error
		for range 100 { // until the server is up
			if resp, err = hc.Get(url); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	t.Run("with tls.ca the registry serves https and reaches trustd over https", func(t *testing.T) {
		base := serve(t, files.CACert)
		resp, _ := get(t, base+"/v2/")
		if resp.StatusCode != http.StatusUnauthorized || resp.TLS == nil {
			t.Fatalf("GET /v2/: %s (tls %v), want 401 over TLS", resp.Status, resp.TLS != nil)
		}
		if want := `realm="` + base + `/token"`; !strings.Contains(resp.Header.Get("WWW-Authenticate"), want) {
			t.Fatalf("challenge %q does not carry %s", resp.Header.Get("WWW-Authenticate"), want)
		}
		resp, body := get(t, base+"/token?service=signet-registry")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "from-trustd") {
			t.Fatalf("GET /token: %s %s, want trustd's answer", resp.Status, body)
		}
	})
	t.Run("without tls.ca the private CA is not trusted for trustd", func(t *testing.T) {
		base := serve(t, "")
		resp, body := get(t, base+"/token?service=signet-registry")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("GET /token: %s %s, want 502: trustd's certificate is not trusted", resp.Status, body)
		}
	})
	t.Run("a plain HTTP request to the TLS port gets no registry answer", func(t *testing.T) {
		base := serve(t, files.CACert)
		get(t, base+"/v2/") // up
		resp, err := http.Get("http://" + strings.TrimPrefix(base, "https://") + "/v2/")
		if err != nil {
			t.Fatalf("plain HTTP to the TLS port: %v, want Go's 400 answer", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the TLS port: %s, want 400", resp.Status)
		}
	})
}

func TestTLSConfigValidateNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  TLSConfig
		want string
	}{
		{"a certificate without a key", TLSConfig{Cert: "c.pem"}, "tls.key"},
		{"a key without a certificate", TLSConfig{Key: "k.pem"}, "tls.cert"},
		{"a CA file that does not exist", TLSConfig{CA: "/nonexistent/ca.pem"}, "tls.ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Defaults()
			cfg.TLS = tc.tls
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want+":") {
				t.Fatalf("Validate: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
