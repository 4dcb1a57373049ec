package registry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestUIMount mounts a UI on a served registry: it gets /ui/ and /, the
// registry's own address to call, and never the API's paths; ui.disabled
// leaves both unmounted.
func TestUIMount(t *testing.T) {
	// trustd's /token answers with the client address the registry named and
	// whether the UI's header reached it.
	trustd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/token" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, r.Header.Get("X-Forwarded-For")+"|"+r.Header.Get(UIClientHeader))
	}))
	defer trustd.Close()
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	serve := func(t *testing.T, disabled bool) (string, *UIEnv) {
		var env UIEnv
		cfg := Defaults()
		cfg.Storage.Driver = "inmemory"
		cfg.Auth.Token = &TokenAuthConfig{Trustd: trustd.URL}
		cfg.UI.Disabled = disabled
		cfg.UI.New = func(e UIEnv) (http.Handler, error) {
			env = e
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the UI") }), nil
		}
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
		base := "http://" + ln.Addr().String()
		for range 100 {
			if resp, err := http.Get(base + "/healthz"); err == nil {
				resp.Body.Close()
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		return base, &env
	}
	get := func(t *testing.T, url string) (*http.Response, string) {
		t.Helper()
		resp, err := noRedirect.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	t.Run("on", func(t *testing.T) {
		base, env := serve(t, false)
		if resp, body := get(t, base+"/ui/repos"); resp.StatusCode != http.StatusOK || body != "the UI" {
			t.Errorf("GET /ui/repos = %s %q, want the UI's page", resp.Status, body)
		}
		if resp, _ := get(t, base+"/"); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
			t.Errorf("GET / = %s to %q, want a redirect to /ui/", resp.Status, resp.Header.Get("Location"))
		}
		if resp, _ := get(t, base+"/v2/"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /v2/ = %s, want 401: the UI must not shadow the API", resp.Status)
		}
		if resp, body := get(t, base+"/v2/ui/manifests/latest"); resp.StatusCode == http.StatusOK || body == "the UI" {
			t.Errorf("GET /v2/ui/manifests/latest reached the UI")
		}
		for secret, want := range map[string]string{env.ClientSecret: "203.0.113.7|", "a-wrong-secret": "127.0.0.1|"} {
			req, _ := http.NewRequest(http.MethodGet, base+"/token?service=trustd", nil)
			req.Header.Set(UIClientHeader, secret+" 203.0.113.7")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != want {
				t.Errorf("a /token call naming its browser with secret %q reached trustd as %q, want %q (X-Forwarded-For|%s)", secret, body, want, UIClientHeader)
			}
		}
		if env.Registry != base || env.ClientSecret == "" || env.Trustd != trustd.URL || env.Secure || env.CacheDir == "" {
			t.Errorf("the UI was given %+v, want the registry at %s, trustd at %s, not secure, a cache directory", env, base, trustd.URL)
		}
	})
	t.Run("ui.disabled", func(t *testing.T) {
		base, _ := serve(t, true)
		for _, path := range []string{"/", "/ui/repos"} {
			if resp, body := get(t, base+path); resp.StatusCode != http.StatusNotFound || body == "the UI" {
				t.Errorf("GET %s with ui.disabled = %s %q, want 404", path, resp.Status, body)
			}
		}
	})
}
