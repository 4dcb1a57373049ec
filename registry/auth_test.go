package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/tokenauth"
)

// authServer is a registry with token auth whose keys come from a JWKS file, and
// an issuer of tokens it trusts.
type authServer struct {
	srv    *httptest.Server
	issuer *tokenauth.Issuer
}

func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	key, err := tokenauth.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(tokenauth.JWKS(key))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := storage.New(context.Background(), inmemory.New(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	api, err := NewServer(store, slog.New(slog.NewTextHandler(io.Discard, nil)), &TokenAuthConfig{JWKS: path})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &authServer{srv: srv, issuer: &tokenauth.Issuer{Name: "signet-trustd", Key: key, TTL: time.Minute}}
}

func (a *authServer) token(t *testing.T, audience string, access ...tokenauth.Access) string {
	t.Helper()
	tok, _, err := a.issuer.Issue("alice", audience, access)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func repoAccess(name string, actions ...string) tokenauth.Access {
	return tokenauth.Access{Type: "repository", Name: name, Actions: actions}
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func TestAuthChallengesAndDecisions(t *testing.T) {
	a := newAuthServer(t)
	srv := a.srv
	pushTok := a.token(t, "signet-registry", repoAccess("acme/app", "pull", "push"))
	content := []byte("layer")
	d := digest.FromBytes(content)
	if r := do(t, srv, "POST", "/v2/acme/app/blobs/uploads/?digest="+d.String(), bearer(pushTok), content); r.status != 201 {
		t.Fatalf("push with a push token: %d %s", r.status, r.body)
	}
	host := strings.TrimPrefix(srv.URL, "http://")

	cases := []struct {
		name      string
		method    string
		path      string
		token     string
		status    int
		code      string
		challenge string
	}{
		{"a ping without a token is challenged", "GET", "/v2/", "", 401, "UNAUTHORIZED",
			`Bearer realm="http://` + host + `/token",service="signet-registry"`},
		{"a pull without a token is challenged with the pull scope", "GET", "/v2/acme/app/blobs/" + d.String(), "", 401, "UNAUTHORIZED",
			`Bearer realm="http://` + host + `/token",service="signet-registry",scope="repository:acme/app:pull"`},
		{"a push without a token is challenged with pull and push", "POST", "/v2/acme/app/blobs/uploads/", "", 401, "UNAUTHORIZED",
			`scope="repository:acme/app:pull,push"`},
		{"a pull-only token cannot push", "POST", "/v2/acme/app/blobs/uploads/", a.token(t, "signet-registry", repoAccess("acme/app", "pull")), 403, "DENIED",
			`error="insufficient_scope"`},
		{"a token for another repository cannot pull", "GET", "/v2/acme/app/blobs/" + d.String(), a.token(t, "signet-registry", repoAccess("acme/other", "pull")), 403, "DENIED", ""},
		{"a token for another audience is invalid", "GET", "/v2/acme/app/blobs/" + d.String(), a.token(t, "trustd", repoAccess("acme/app", "pull")), 401, "UNAUTHORIZED",
			`error="invalid_token"`},
		{"a garbage token is invalid", "GET", "/v2/", "not.a.token", 401, "UNAUTHORIZED", `error="invalid_token"`},
		{"a pull token cannot delete", "DELETE", "/v2/acme/app/blobs/" + d.String(), a.token(t, "signet-registry", repoAccess("acme/app", "pull")), 403, "DENIED", ""},
		{"a mount without a token is challenged for pull on its source too", "POST", "/v2/acme/app/blobs/uploads/?mount=" + d.String() + "&from=acme/base", "", 401, "UNAUTHORIZED",
			`scope="repository:acme/app:pull,push repository:acme/base:pull"`},
		{"a catalog request without the catalog grant is denied", "GET", "/v2/_catalog", pushTok, 403, "DENIED", `scope="registry:catalog:*"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h map[string]string
			if c.token != "" {
				h = bearer(c.token)
			}
			r := do(t, srv, c.method, c.path, h, nil)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if got := errorCode(t, r); got != c.code {
				t.Fatalf("code %s, want %s", got, c.code)
			}
			if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, c.challenge) {
				t.Fatalf("WWW-Authenticate %q lacks %q", ch, c.challenge)
			}
		})
	}
	if r := do(t, srv, "GET", "/v2/", bearer(a.token(t, "signet-registry")), nil); r.status != 200 {
		t.Fatalf("a ping with any valid token: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "GET", "/v2/acme/app/blobs/"+d.String(), bearer(a.token(t, "signet-registry", repoAccess("acme/app", "pull"))), nil); r.status != 200 || string(r.body) != "layer" {
		t.Fatalf("a pull with a pull token: %d", r.status)
	}
}

func TestMountNeverShowsABlobTheCallerCannotPull(t *testing.T) {
	a := newAuthServer(t)
	content := []byte("secret layer")
	d := digest.FromBytes(content)
	owner := a.token(t, "signet-registry", repoAccess("secret/repo", "pull", "push"))
	if r := do(t, a.srv, "POST", "/v2/secret/repo/blobs/uploads/?digest="+d.String(), bearer(owner), content); r.status != 201 {
		t.Fatalf("seed: %d %s", r.status, r.body)
	}
	// The token server was asked for pull on secret/repo and refused: the claim
	// lists it with no actions.
	mine := a.token(t, "signet-registry", repoAccess("mine/app", "pull", "push"), repoAccess("secret/repo"))
	for _, q := range []string{"?mount=" + d.String() + "&from=secret/repo", "?mount=" + d.String()} {
		r := do(t, a.srv, "POST", "/v2/mine/app/blobs/uploads/"+q, bearer(mine), nil)
		if r.status != http.StatusAccepted {
			t.Fatalf("POST %s: %d, want 202 (a plain upload)", q, r.status)
		}
	}
	if r := do(t, a.srv, "HEAD", "/v2/mine/app/blobs/"+d.String(), bearer(mine), nil); r.status != 404 {
		t.Fatalf("the blob leaked into mine/app: HEAD %d", r.status)
	}
	// A token never asked for the source is challenged for it.
	targetOnly := a.token(t, "signet-registry", repoAccess("mine/app", "pull", "push"))
	r := do(t, a.srv, "POST", "/v2/mine/app/blobs/uploads/?mount="+d.String()+"&from=secret/repo", bearer(targetOnly), nil)
	if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), "repository:secret/repo:pull") {
		t.Fatalf("a mount with a token never asked for the source: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	both := a.token(t, "signet-registry", repoAccess("mine/app", "pull", "push"), repoAccess("secret/repo", "pull"))
	if r := do(t, a.srv, "POST", "/v2/mine/app/blobs/uploads/?mount="+d.String()+"&from=secret/repo", bearer(both), nil); r.status != 201 {
		t.Fatalf("a mount with pull on the source: %d", r.status)
	}
}

func TestCatalogShowsOnlyWhatTheTokenMayPull(t *testing.T) {
	a := newAuthServer(t)
	config, layer := []byte(`{}`), []byte("layer")
	admin := a.token(t, "signet-registry", repoAccess("acme/app", "pull", "push"), repoAccess("other/app", "pull", "push"))
	for _, repo := range []string{"acme/app", "other/app"} {
		for _, b := range [][]byte{config, layer} {
			do(t, a.srv, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+digest.FromBytes(b).String(), bearer(admin), b)
		}
		m := imageManifest(digest.FromBytes(config), digest.FromBytes(layer), len(config), len(layer))
		h := bearer(admin)
		h["Content-Type"] = storage.MediaTypeOCIManifest
		if r := do(t, a.srv, "PUT", "/v2/"+repo+"/manifests/v1", h, m); r.status != 201 {
			t.Fatalf("PUT %s: %d %s", repo, r.status, r.body)
		}
	}
	tok := a.token(t, "signet-registry", tokenauth.Access{Type: "registry", Name: "catalog", Actions: []string{"*"}, Patterns: []string{"acme/**"}})
	r := do(t, a.srv, "GET", "/v2/_catalog", bearer(tok), nil)
	if r.status != 200 || string(r.body) != `{"repositories":["acme/app"]}` {
		t.Fatalf("catalog: %d %s", r.status, r.body)
	}
}

func TestDiscoveryNamesTrustdAndTheRootFingerprint(t *testing.T) {
	root := []byte(`{"signed":{"_type":"root","version":1},"signatures":[]}`)
	trustd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/tuf/root.json" {
			http.NotFound(w, r)
			return
		}
		w.Write(root)
	}))
	defer trustd.Close()
	key, _ := tokenauth.GenerateSigningKey()
	jwks, _ := json.Marshal(tokenauth.JWKS(key))
	path := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(path, jwks, 0o600)
	store, _ := storage.New(context.Background(), inmemory.New(), storage.Options{})
	api, err := NewServer(store, slog.New(slog.NewTextHandler(io.Discard, nil)), &TokenAuthConfig{Trustd: trustd.URL, JWKS: path})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	r := do(t, srv, "GET", "/.well-known/signet.json", nil, nil)
	var doc struct{ Registry, Trustd, RootSHA256 string }
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(root)
	if doc.Trustd != trustd.URL || doc.RootSHA256 != hex.EncodeToString(sum[:]) || doc.Registry != strings.TrimPrefix(srv.URL, "http://") {
		t.Fatalf("discovery document: %s", r.body)
	}
}
