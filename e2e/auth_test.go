package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// refusal matches what a client prints when the registry refuses it.
var refusal = regexp.MustCompile(`(?i)denied|unauthorized|forbidden|\b40[13]\b`)

// TestAuthChallenge checks discovery: /v2/ without a token is 401 with a Bearer
// challenge whose realm is on the registry's own origin (go-containerregistry
// refuses any other loopback realm), 200 with any valid token; a repository
// request's challenge names its scope; signet.json names trustd.
func TestAuthChallenge(t *testing.T) {
	t.Parallel()
	st := startStack(t, openAll...)
	hc := &http.Client{Timeout: 30 * time.Second}

	resp, err := hc.Get(st.URL("/v2/"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ch, ok := challenge(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || !ok {
		t.Fatalf("GET /v2/ without a token: %s, WWW-Authenticate %q; want 401 with a Bearer challenge", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	if want := st.URL("/token"); ch["realm"] != want {
		t.Errorf("realm %q, want the registry's own origin %q", ch["realm"], want)
	}
	if ch["service"] == "" {
		t.Errorf("challenge %q names no service", resp.Header.Get("WWW-Authenticate"))
	}
	if !strings.Contains(string(body), "UNAUTHORIZED") {
		t.Errorf("401 body %q lacks the UNAUTHORIZED code", body)
	}

	req, _ := http.NewRequest(http.MethodGet, st.URL("/v2/acme/app/manifests/v1"), nil)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if rch, _ := challenge(resp.Header.Get("WWW-Authenticate")); resp.StatusCode != 401 || rch["scope"] != "repository:acme/app:pull" {
		t.Errorf("GET a manifest without a token: %s, challenge %q; want 401 with scope repository:acme/app:pull", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}

	tok := st.passwordGrant(t, ch, "admin", st.AdminPassword, false).Token
	for _, c := range []struct {
		name, auth string
		want       int
	}{
		{"a valid token without any scope", "Bearer " + tok, http.StatusOK},
		{"a token with a flipped signature byte", "Bearer " + flipLast(tok), http.StatusUnauthorized},
		{"Basic credentials instead of a token", "Basic " + basic("admin", st.AdminPassword), http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(http.MethodGet, st.URL("/v2/"), nil)
		req.Header.Set("Authorization", c.auth)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET /v2/ with %s: %s, want %d", c.name, resp.Status, c.want)
		}
	}

	resp, err = hc.Get(st.URL("/.well-known/signet.json"))
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Trustd string }
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSuffix(info.Trustd, "/") != st.Trustd {
		t.Errorf("signet.json: %s, trustd %q; want 200 naming %s", resp.Status, info.Trustd, st.Trustd)
	}
}

// TestAuthRefreshTokenGrant drives the OAuth2 grants as curl would: a password grant
// with access_type=offline returns a refresh token, the refresh grant returns
// access tokens and the same refresh token, and the registry accepts the access
// token but never the refresh token.
func TestAuthRefreshTokenGrant(t *testing.T) {
	t.Parallel()
	st := startStack(t, openAll...)
	img := newImage(t, "refresh", newLayer(t, "r/one.bin", 16<<10))
	if err := st.admin().pushImage("acme/app", "v1", img, uploadMonolithicPost); err != nil {
		t.Fatal(err)
	}
	password := st.addUser(t, "alice", "acme", "reader")
	ch := st.discover(t)

	first := st.passwordGrant(t, ch, "alice", password, true, "repository:acme/app:pull")
	if first.Token == "" || first.Token != first.AccessToken {
		t.Errorf("password grant: token %q and access_token %q must both be the access token", trim(first.Token), trim(first.AccessToken))
	}
	if first.RefreshToken == "" {
		t.Fatal("password grant with access_type=offline returned no refresh_token")
	}
	checkExpiry(t, "password grant", first)
	st.mustGetManifest(t, first.AccessToken, "acme/app", "v1", img.ManifestDigest)

	form := url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken},
		"service": {ch["service"]}, "client_id": {"e2e"}, "scope": {"repository:acme/app:pull"},
	}
	status, second, body := postToken(t, ch["realm"], form)
	if status != http.StatusOK {
		t.Fatalf("refresh grant: %d %s", status, body)
	}
	if second.RefreshToken != first.RefreshToken {
		t.Errorf("refresh grant returned refresh token %q, want the same one", trim(second.RefreshToken))
	}
	if second.AccessToken == "" || second.Token != second.AccessToken {
		t.Errorf("refresh grant: token %q, access_token %q", trim(second.Token), trim(second.AccessToken))
	}
	checkExpiry(t, "refresh grant", second)
	st.mustGetManifest(t, second.AccessToken, "acme/app", "v1", img.ManifestDigest)

	// The refresh token is a credential for the token endpoint only.
	req, _ := http.NewRequest(http.MethodGet, st.URL("/v2/acme/app/manifests/v1"), nil)
	req.Header.Set("Authorization", "Bearer "+first.RefreshToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the registry with a refresh token as bearer: %v %v, want 401", resp.Status, err)
	}
	form.Set("refresh_token", first.RefreshToken+"x")
	if status, _, body := postToken(t, ch["realm"], form); status != http.StatusUnauthorized {
		t.Errorf("refresh grant with an unknown refresh token: %d %s, want 401", status, body)
	}
	form = url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"not-" + password},
		"service": {ch["service"]}, "client_id": {"e2e"}, "access_type": {"offline"}}
	if status, _, body := postToken(t, ch["realm"], form); status != http.StatusUnauthorized {
		t.Errorf("password grant with a wrong password: %d %s, want 401", status, body)
	}
}

// TestAuthReaderPullsButCannotPush: an org member with role reader pulls with crane,
// and a push is refused with nothing stored.
func TestAuthReaderPullsButCannotPush(t *testing.T) {
	t.Parallel()
	st := startStack(t, openAll...)
	admin := st.admin()
	img := newImage(t, "reader", newLayer(t, "r/one.bin", 32<<10))
	if err := admin.pushImage("acme/app", "v1", img, uploadPostPut); err != nil {
		t.Fatal(err)
	}
	password := st.addUser(t, "reed", "acme", "reader")
	crane := newTool(t, "crane")
	crane.runInput(t, password, "auth", "login", st.Addr, "-u", "reed", "--password-stdin")

	if got := strings.TrimSpace(crane.run(t, "digest", st.Addr+"/acme/app:v1")); got != img.ManifestDigest {
		t.Fatalf("reader's crane digest %s, want %s", got, img.ManifestDigest)
	}
	tarball := filepath.Join(t.TempDir(), "img.tar")
	crane.run(t, "pull", st.Addr+"/acme/app:v1", tarball)
	checkTarLayers(t, readTar(t, tarball), img)

	l := newLayer(t, "r/new.bin", 8<<10)
	layerPath := filepath.Join(t.TempDir(), "layer.tar.gz")
	os.WriteFile(layerPath, l.Blob, 0o644)
	out := crane.mustFail(t, "append", "--oci-empty-base", "-f", layerPath, "-t", st.Addr+"/acme/app:v2")
	if !refusal.MatchString(out) {
		t.Errorf("the reader's refused push does not say denied or unauthorized:\n%s", out)
	}
	st.assertNotStored(t, "acme/app", "v2", l.Digest)
}

// TestAuthRobotToken: a robot made by `trustctl token create` with pull on acme/app
// pulls acme/app and nothing else, and once revoked is refused at its next token
// exchange, by password and by refresh token.
func TestAuthRobotToken(t *testing.T) {
	t.Parallel()
	st := startStack(t, openAll...)
	admin := st.admin()
	app := newImage(t, "robot-app", newLayer(t, "a/one.bin", 16<<10))
	other := newImage(t, "robot-other", newLayer(t, "o/one.bin", 16<<10))
	for repo, img := range map[string]image{"acme/app": app, "acme/other": other} {
		if err := admin.pushImage(repo, "v1", img, uploadMonolithicPost); err != nil {
			t.Fatal(err)
		}
	}
	st.ctl(t, "", "org", "create", "acme")
	out := st.ctl(t, "", "token", "create", "--org", "acme", "--scope", "repository:acme/app:pull",
		"--ttl", "720h", "--name", "ci-bot", "--output", "json")
	var robot struct {
		Name    string
		Secret  string
		Scopes  []string
		Expires time.Time
	}
	if err := json.Unmarshal([]byte(out), &robot); err != nil {
		t.Fatalf("token create --output json: %v\n%s", err, out)
	}
	if robot.Name != "acme+ci-bot" || robot.Secret == "" || !slices.Equal(robot.Scopes, []string{"repository:acme/app:pull"}) {
		t.Fatalf("token create: %+v", robot)
	}
	if d := time.Until(robot.Expires); d < 719*time.Hour || d > 721*time.Hour {
		t.Errorf("robot expires %s, want about 720h from now", robot.Expires)
	}
	ch := st.discover(t)
	refresh := st.passwordGrant(t, ch, robot.Name, robot.Secret, true, "repository:acme/app:pull").RefreshToken

	crane := newTool(t, "crane")
	crane.runInput(t, robot.Secret, "auth", "login", st.Addr, "-u", robot.Name, "--password-stdin")
	t.Run("pulls acme/app", func(t *testing.T) {
		if got := strings.TrimSpace(crane.run(t, "digest", st.Addr+"/acme/app:v1")); got != app.ManifestDigest {
			t.Fatalf("robot's crane digest %s, want %s", got, app.ManifestDigest)
		}
		crane.run(t, "pull", st.Addr+"/acme/app:v1", filepath.Join(t.TempDir(), "app.tar"))
	})
	t.Run("cannot push to acme/app", func(t *testing.T) {
		l := newLayer(t, "a/new.bin", 8<<10)
		layerPath := filepath.Join(t.TempDir(), "layer.tar.gz")
		os.WriteFile(layerPath, l.Blob, 0o644)
		out := crane.mustFail(t, "append", "--oci-empty-base", "-f", layerPath, "-t", st.Addr+"/acme/app:v2")
		if !refusal.MatchString(out) {
			t.Errorf("refused push does not say denied or unauthorized:\n%s", out)
		}
		st.assertNotStored(t, "acme/app", "v2", l.Digest)
	})
	t.Run("cannot pull acme/other", func(t *testing.T) {
		out := crane.mustFail(t, "manifest", st.Addr+"/acme/other:v1")
		if !refusal.MatchString(out) {
			t.Errorf("refused pull does not say denied or unauthorized:\n%s", out)
		}
		if _, err := st.client(robot.Name, robot.Secret).getBlob("acme/other", other.Layers[0].Digest); err == nil {
			t.Error("the robot read a blob of acme/other")
		}
	})
	t.Run("list shows it without its secret", func(t *testing.T) {
		out := st.ctl(t, "", "token", "list", "--org", "acme", "--output", "json")
		if strings.Contains(out, robot.Secret) {
			t.Fatalf("token list prints the secret:\n%s", out)
		}
		var list []struct{ Name string }
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].Name != robot.Name {
			t.Fatalf("token list: %v\n%s", err, out)
		}
	})
	t.Run("revoked, it is refused at its next exchange", func(t *testing.T) {
		st.ctl(t, "", "token", "revoke", "--org", "acme", "ci-bot")
		out := crane.mustFail(t, "digest", st.Addr+"/acme/app:v1")
		if !refusal.MatchString(out) {
			t.Errorf("revoked robot's pull does not say denied or unauthorized:\n%s", out)
		}
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "service": {ch["service"]}, "client_id": {"e2e"}}
		if status, _, body := postToken(t, ch["realm"], form); status != http.StatusUnauthorized {
			t.Errorf("refresh grant of the revoked robot: %d %s, want 401", status, body)
		}
		if out := st.ctl(t, "", "token", "list", "--org", "acme", "--output", "json"); strings.Contains(out, "ci-bot") {
			t.Errorf("token list still shows the revoked robot:\n%s", out)
		}
	})
}

// TestAuthMountDoesNotLeak: a cross-repository mount from a repository the caller
// cannot read becomes a plain upload (202, not 201), and the blob stays unknown in
// the caller's repository.
func TestAuthMountDoesNotLeak(t *testing.T) {
	t.Parallel()
	st := startStack(t, openAll...)
	secret := randomBytes(20 << 10)
	dgst := sha256Digest(secret)
	if err := st.admin().pushBlob("secret/repo", secret, uploadMonolithicPost); err != nil {
		t.Fatal(err)
	}
	password := st.addUser(t, "mallory", "mine", "owner")
	mountPath := "/v2/mine/app/blobs/uploads/?mount=" + dgst + "&from=secret/repo"

	resp, err := http.Post(st.URL(mountPath), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ch, ok := challenge(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || !ok {
		t.Fatalf("mount without a token: %s %q, want 401 with a challenge", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	scopes := strings.Fields(ch["scope"])
	if !slices.Contains(scopes, "repository:secret/repo:pull") || !slices.ContainsFunc(scopes, func(s string) bool {
		return strings.HasPrefix(s, "repository:mine/app:") && strings.Contains(s, "push")
	}) {
		t.Errorf("mount challenge scope %q, want push on mine/app and pull on secret/repo", ch["scope"])
	}
	// The token asks for both, as clients do in one request; trustd grants only mine/app.
	tok := st.passwordGrant(t, map[string]string{"realm": ch["realm"], "service": ch["service"]}, "mallory", password, false,
		"repository:mine/app:pull,push", "repository:secret/repo:pull").Token

	do := func(method, path, token string) *http.Response {
		req, _ := http.NewRequest(method, st.URL(path), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := do(http.MethodPost, mountPath, tok); resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") == "" {
		t.Errorf("mount from an unreadable repository: %s (Location %q), want 202 with an upload Location", resp.Status, resp.Header.Get("Location"))
	}
	if resp := do(http.MethodPost, "/v2/mine/app/blobs/uploads/?mount="+dgst, tok); resp.StatusCode != http.StatusAccepted {
		t.Errorf("mount without from: %s, want 202 (a plain upload)", resp.Status)
	}
	if resp := do(http.MethodHead, "/v2/mine/app/blobs/"+dgst, tok); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD the secret blob in mine/app as mallory: %s, want 404", resp.Status)
	}
	if status, err := st.admin().blobStatus("mine/app", dgst); err != nil || status != http.StatusNotFound {
		t.Errorf("HEAD the secret blob in mine/app as admin: %d %v, want 404", status, err)
	}
	// The same mount by someone who may read the source does mount: the refusal
	// above is the authorisation, not a broken mount.
	adminTok := st.passwordGrant(t, map[string]string{"realm": ch["realm"], "service": ch["service"]}, "admin", st.AdminPassword, false,
		"repository:other/app:pull,push", "repository:secret/repo:pull").Token
	if resp := do(http.MethodPost, "/v2/other/app/blobs/uploads/?mount="+dgst+"&from=secret/repo", adminTok); resp.StatusCode != http.StatusCreated {
		t.Errorf("admin's mount from secret/repo: %s, want 201", resp.Status)
	}
	if resp := do(http.MethodHead, "/v2/other/app/blobs/"+dgst, adminTok); resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD the mounted blob in other/app as admin: %s, want 200", resp.Status)
	}
}

// discover returns the registry's /v2/ challenge parameters.
func (st *stack) discover(t *testing.T) map[string]string {
	t.Helper()
	resp, err := http.Get(st.URL("/v2/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ch, ok := challenge(resp.Header.Get("WWW-Authenticate"))
	if !ok {
		t.Fatalf("GET /v2/: %s, WWW-Authenticate %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	return ch
}

// passwordGrant POSTs the password grant to the challenge's realm and fails t unless
// it answers 200.
func (st *stack) passwordGrant(t *testing.T, ch map[string]string, user, password string, offline bool, scopes ...string) tokenResponse {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {password},
		"service": {ch["service"]}, "client_id": {"e2e"}}
	if offline {
		form.Set("access_type", "offline")
	}
	for _, s := range scopes {
		form.Add("scope", s)
	}
	status, tr, body := postToken(t, ch["realm"], form)
	if status != http.StatusOK {
		t.Fatalf("password grant for %s: %d %s", user, status, body)
	}
	return tr
}

func postToken(t *testing.T, realm string, form url.Values) (int, tokenResponse, string) {
	t.Helper()
	resp, err := http.PostForm(realm, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var tr tokenResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &tr); err != nil {
			t.Fatalf("POST %s: %v in %s", realm, err, body)
		}
	}
	return resp.StatusCode, tr, string(body)
}

// mustGetManifest fetches a manifest with a bearer token and checks its digest.
func (st *stack) mustGetManifest(t *testing.T, token, repo, ref, want string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, st.URL("/v2/"+repo+"/manifests/"+ref), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", mediaTypeOCIManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || sha256Digest(body) != want {
		t.Fatalf("GET %s:%s with the token: %s, digest %s; want 200 with %s", repo, ref, resp.Status, sha256Digest(body), want)
	}
}

// assertNotStored checks, as admin, that a refused push left neither the tag nor
// the layer blob in repo.
func (st *stack) assertNotStored(t *testing.T, repo, tag, blob string) {
	t.Helper()
	admin := st.admin()
	tags, err := admin.tags(repo)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(tags, tag) {
		t.Errorf("the refused push stored tag %s:%s", repo, tag)
	}
	if status, err := admin.blobStatus(repo, blob); err != nil || status != http.StatusNotFound {
		t.Errorf("HEAD %s blob %s after the refused push: %d %v, want 404", repo, blob, status, err)
	}
}

func checkExpiry(t *testing.T, what string, tr tokenResponse) {
	t.Helper()
	if tr.ExpiresIn < 60 {
		t.Errorf("%s: expires_in %d, want at least 60", what, tr.ExpiresIn)
	}
	issued, err := time.Parse(time.RFC3339, tr.IssuedAt)
	if err != nil || time.Since(issued).Abs() > time.Minute {
		t.Errorf("%s: issued_at %q (%v), want an RFC 3339 time near now", what, tr.IssuedAt, err)
	}
}

// checkTarLayers checks that a crane tarball holds the image's layer bytes.
func checkTarLayers(t *testing.T, files map[string][]byte, img image) {
	t.Helper()
	var save []struct{ Layers []string }
	if err := json.Unmarshal(files["manifest.json"], &save); err != nil || len(save) != 1 {
		t.Fatalf("tarball manifest.json %q: %v", files["manifest.json"], err)
	}
	if len(save[0].Layers) != len(img.Layers) {
		t.Fatalf("tarball has %d layers, want %d", len(save[0].Layers), len(img.Layers))
	}
	for i, l := range save[0].Layers {
		if !bytes.Equal(files[l], img.Layers[i].Blob) {
			t.Errorf("tarball layer %s differs from the pushed layer %s", l, img.Layers[i].Digest)
		}
	}
}

func flipLast(tok string) string {
	if tok == "" {
		return tok
	}
	b := []byte(tok)
	i := len(b) - 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func basic(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// trim shortens a token for a failure message.
func trim(s string) string {
	if len(s) > 12 {
		return s[:12] + "..."
	}
	return s
}
