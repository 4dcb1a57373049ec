package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// fakeStack is a registry front (/v2/ challenge, /token, signet.json) and a trustd
// (/token, /api/v1/whoami) that know one user, enough to test the client's flow.
func fakeStack(t *testing.T) (registry, trustd *httptest.Server) {
	t.Helper()
	tokenHandler := func(service string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			if r.Method != http.MethodPost || r.Form.Get("service") != service {
				http.Error(w, `{"errors":[{"code":"INVALID","message":"bad request"}]}`, 400)
				return
			}
			switch r.Form.Get("grant_type") {
			case "password":
				if r.Form.Get("username") != "alice" || r.Form.Get("password") != "s3cret-pw" {
					w.WriteHeader(401)
					w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`))
					return
				}
				if r.Form.Get("access_type") != "offline" {
					t.Errorf("password grant without access_type=offline")
				}
				json.NewEncoder(w).Encode(map[string]any{"token": "at-" + service, "access_token": "at-" + service, "refresh_token": "rt-" + service, "expires_in": 300})
			case "refresh_token":
				if r.Form.Get("refresh_token") != "rt-"+service {
					w.WriteHeader(401)
					return
				}
				json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + service, "refresh_token": "rt-" + service, "expires_in": 300})
			}
		}
	}
	tmux := http.NewServeMux()
	tmux.HandleFunc("/token", tokenHandler("trustd"))
	tmux.HandleFunc("/api/v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer at-trustd" {
			w.WriteHeader(401)
			return
		}
		w.Write([]byte(`{"name":"alice","kind":"person","admin":false}`))
	})
	trustd = httptest.NewServer(tmux)
	t.Cleanup(trustd.Close)
	rmux := http.NewServeMux()
	rmux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+r.Host+`/token",service="signet-registry"`)
		w.WriteHeader(401)
	})
	rmux.HandleFunc("/token", tokenHandler("signet-registry"))
	rmux.HandleFunc("/.well-known/signet.json", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(SignetInfo{Trustd: trustd.URL, Registry: r.Host})
	})
	registry = httptest.NewServer(rmux)
	t.Cleanup(registry.Close)
	return registry, trustd
}

func TestLoginStoresBothRefreshTokens(t *testing.T) {
	reg, td := fakeStack(t)
	dir := t.TempDir()
	home, _ := LoadConfigFile(filepath.Join(dir, "signet", "config.json"))
	docker, _ := LoadConfigFile(filepath.Join(dir, "docker", "config.json"))
	regHost := strings.TrimPrefix(reg.URL, "http://")
	ctx := context.Background()
	res, err := Login(ctx, LoginOptions{Registry: regHost, User: "alice", Password: "s3cret-pw", Home: home, Docker: docker, Tokens: &TokenClient{}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Trustd != td.URL || res.Registry != regHost {
		t.Fatalf("result %+v", res)
	}
	home, _ = LoadConfigFile(home.Path)
	docker, _ = LoadConfigFile(docker.Path)
	if _, tok := home.Login(regHost); tok != "rt-signet-registry" {
		t.Errorf("home holds registry token %q", tok)
	}
	if _, tok := home.Login(strings.TrimPrefix(td.URL, "http://")); tok != "rt-trustd" {
		t.Errorf("home holds trustd token %q", tok)
	}
	if u, tok := docker.Login(regHost); u != "alice" || tok != "rt-signet-registry" {
		t.Errorf("docker config holds %q %q", u, tok)
	}
	tc, err := OpenTrustd(ctx, home, "", &TokenClient{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := tc.Whoami(ctx)
	if err != nil || id.Name != "alice" {
		t.Fatalf("whoami = %+v, %v", id, err)
	}
}

func TestLoginWrongPasswordSaysSo(t *testing.T) {
	reg, _ := fakeStack(t)
	home, _ := LoadConfigFile(filepath.Join(t.TempDir(), "config.json"))
	_, err := Login(context.Background(), LoginOptions{Registry: reg.URL, User: "alice", Password: "wrong-pw", Home: home, Tokens: &TokenClient{}})
	if err == nil || !strings.Contains(err.Error(), "refused the user name or password") {
		t.Fatalf("got %v", err)
	}
}

func TestOpenTrustdWithoutLoginSaysWhatToDo(t *testing.T) {
	home, _ := LoadConfigFile(filepath.Join(t.TempDir(), "config.json"))
	_, err := OpenTrustd(context.Background(), home, "", &TokenClient{})
	if err == nil || !strings.Contains(err.Error(), "trustctl login") {
		t.Fatalf("got %v", err)
	}
}

func TestBaseURL(t *testing.T) {
	cases := []struct{ in, base, host string }{
		{"127.0.0.1:5000", "http://127.0.0.1:5000", "127.0.0.1:5000"},
		{"localhost:5000", "http://localhost:5000", "localhost:5000"},
		{"[::1]:5000", "http://[::1]:5000", "[::1]:5000"},
		{"registry.example.com", "https://registry.example.com", "registry.example.com"},
		{"http://10.0.0.1:5000/", "http://10.0.0.1:5000", "10.0.0.1:5000"},
	}
	for _, c := range cases {
		base, host, err := BaseURL(context.Background(), c.in, false)
		if err != nil || base != c.base || host != c.host {
			t.Errorf("BaseURL(%q) = %q %q %v, want %q %q", c.in, base, host, err, c.base, c.host)
		}
	}
	if _, _, err := BaseURL(context.Background(), "r.example/v2/", false); err == nil {
		t.Error("a path was accepted")
	}
}
