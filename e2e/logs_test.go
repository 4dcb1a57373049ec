package e2e

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/signet-oss/signet/signer"
)

// TestLogsCarryRequestIDsAndNoSecrets runs a session that uses every kind of
// credential Signet handles through one `trustctl up` (the admin password, a
// person's password through trustctl login and docker-style Basic auth at
// /token, refresh tokens, a robot secret, bearer tokens, the registry's own
// trustd account, publisher keys sealed with a passphrase, trustd's private
// keys), then reads everything the stack wrote and fails if any of those
// secrets, or a /token query string, appears in it. The logs must also hold
// request lines with request IDs, and one ID must appear on the registry's line
// and on trustd's line for a /token call made through the registry.
func TestLogsCarryRequestIDsAndNoSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The secret of the registry's /token hop to trustd is set, not made by up,
	// so the test knows what to look for.
	proxySecret := "e2e-proxy-" + newPassword()
	st := startStackEnv(t, []string{"SIGNET_PROXY_SECRET=" + proxySecret})
	dir := filepath.Dir(st.Home)
	secrets := map[string]string{
		"the admin password":            st.AdminPassword,
		"the admin's Basic credentials": base64.StdEncoding.EncodeToString([]byte("admin:" + st.AdminPassword)),
		"the key passphrase":            e2ePassphrase,
		"the token proxy secret":        proxySecret,
	}

	// A publisher key, sealed with a passphrase, signs what it pushes.
	st.trustctl(t, "keys", "generate", "logs-publisher")
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "logs-publisher")
	img := newImage(t, "logs-v1", newLayer(t, "logs/v1.bin", 16<<10))
	st.trustctl(t, "push", writeLayout(t, img), st.Addr+"/acme/app:v1", "--key", "logs-publisher")

	// A person, who logs in with trustctl and with docker's Basic auth.
	password := st.addUser(t, "alice", "", "")
	st.ctl(t, "", "org", "add-member", "acme", "alice", "--role", "reader")
	secrets["alice's password"] = password
	secrets["alice's Basic credentials"] = base64.StdEncoding.EncodeToString([]byte("alice:" + password))
	aliceHome := filepath.Join(t.TempDir(), "signet")
	alice := &tool{path: trustctlBin, dir: t.TempDir(), env: []string{
		"HOME=" + filepath.Dir(aliceHome), "PATH=" + os.Getenv("PATH"), "SIGNET_HOME=" + aliceHome,
	}}
	alice.runInput(t, password+"\n", "login", st.Addr, "-u", "alice", "--password-stdin")
	for i, tok := range identityTokens(t, filepath.Join(aliceHome, "config.json")) {
		secrets[fmt.Sprintf("refresh token %d that trustctl login stored", i)] = tok
	}
	if raw, _, err := st.client("alice", password).getManifest("acme/app", "v1"); err != nil || len(raw) == 0 {
		t.Fatalf("alice pulling acme/app:v1 with Basic auth at the realm: %v", err)
	}

	// The OAuth2 grants: a password grant with a refresh token, then the
	// refresh grant; the access tokens are bearer tokens for the registry.
	ch := st.discover(t)
	first := st.passwordGrant(t, ch, "alice", password, true, "repository:acme/app:pull")
	if first.RefreshToken == "" {
		t.Fatal("the password grant returned no refresh token")
	}
	secrets["alice's refresh token"] = first.RefreshToken
	secrets["alice's access token"] = first.AccessToken
	status, second, body := postToken(t, ch["realm"], url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {first.RefreshToken}, "service": {ch["service"]}, "client_id": {"e2e"}, "scope": {"repository:acme/app:pull"}})
	if status != http.StatusOK {
		t.Fatalf("refresh grant: %d %s", status, body)
	}
	secrets["the access token of the refresh grant"] = second.AccessToken
	st.mustGetManifest(t, second.AccessToken, "acme/app", "v1", img.ManifestDigest)

	// A robot, whose secret logs in like a password.
	out := st.ctl(t, "", "token", "create", "--org", "acme", "--scope", "repository:acme/app:pull",
		"--ttl", "1h", "--name", "logs-bot", "--output", "json")
	var robot struct{ Name, Secret string }
	if err := json.Unmarshal([]byte(out), &robot); err != nil || robot.Secret == "" {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	secrets["the robot's secret"] = robot.Secret
	secrets["the robot's Basic credentials"] = base64.StdEncoding.EncodeToString([]byte(robot.Name + ":" + robot.Secret))
	robotGrant := st.passwordGrant(t, ch, robot.Name, robot.Secret, true, "repository:acme/app:pull")
	secrets["the robot's access token"] = robotGrant.AccessToken
	secrets["the robot's refresh token"] = robotGrant.RefreshToken
	st.mustGetManifest(t, robotGrant.AccessToken, "acme/app", "v1", img.ManifestDigest)

	// A /token call through the registry with the caller's request ID: the
	// registry's line and trustd's line must both carry it.
	tokenID := "e2e-logs-token-" + newPassword()
	req, _ := http.NewRequest(http.MethodGet, st.URL("/token?service="+url.QueryEscape(ch["service"])+"&scope="+url.QueryEscape("repository:acme/app:pull")), nil)
	req.SetBasicAuth("alice", password)
	req.Header.Set("X-Request-ID", tokenID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var basic tokenResponse
	json.NewDecoder(resp.Body).Decode(&basic)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || basic.Token == "" {
		t.Fatalf("GET /token as alice with Basic auth: %s", resp.Status)
	}
	if got := resp.Header.Get("X-Request-ID"); got != tokenID {
		t.Errorf("the registry echoed X-Request-ID %q, want %q", got, tokenID)
	}
	secrets["the access token of the Basic-auth /token call"] = basic.Token
	// Without one, the registry makes an ID, echoes it, and sends it on.
	req, _ = http.NewRequest(http.MethodGet, st.URL("/token?service="+url.QueryEscape(ch["service"])), nil)
	req.SetBasicAuth(robot.Name, robot.Secret)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	madeID := resp.Header.Get("X-Request-ID")
	if resp.StatusCode != http.StatusOK || madeID == "" {
		t.Fatalf("GET /token as the robot: %s, X-Request-ID %q", resp.Status, madeID)
	}

	// An unsigned manifest PUT in an enforced repository makes the gate refresh
	// the trust metadata for that request: trustd sees the request's ID.
	pushID := "e2e-logs-push-" + newPassword()
	admin := st.passwordGrant(t, ch, "admin", st.AdminPassword, false, "repository:acme/app:pull,push")
	secrets["the admin's access token"] = admin.AccessToken
	unsigned := newImage(t, "logs-unsigned", newLayer(t, "logs/unsigned.bin", 1<<10))
	req, _ = http.NewRequest(http.MethodPut, st.URL("/v2/acme/app/manifests/unsigned"), strings.NewReader(string(unsigned.Manifest)))
	req.Header.Set("Content-Type", mediaTypeOCIManifest)
	req.Header.Set("Authorization", "Bearer "+admin.AccessToken)
	req.Header.Set("X-Request-ID", pushID)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned manifest PUT to acme/app:unsigned: %s, want 403", resp.Status)
	}

	// The registry's own trustd account, and every private key involved.
	var acct struct{ Password string }
	if raw, err := os.ReadFile(filepath.Join(dir, "data", "registry-account.json")); err != nil || json.Unmarshal(raw, &acct) != nil || acct.Password == "" {
		t.Fatalf("reading the registry's trustd account: %v", err)
	}
	secrets["the registry's trustd password"] = acct.Password
	for _, name := range []string{"logs-publisher", "dev-root", "dev-targets"} {
		keyDir := filepath.Join(st.Home, "keys")
		if strings.HasPrefix(name, signer.DevelopmentPrefix) {
			keyDir = filepath.Join(dir, "data", "keys") // the stack's own
		}
		keys := signer.NewFileKeyStore(keyDir, func(bool) ([]byte, error) { return []byte(e2ePassphrase), nil })
		k, err := keys.Load(ctx, name)
		if err != nil {
			t.Fatalf("loading key %s: %v", name, err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.Signer)
		if err != nil {
			t.Fatal(err)
		}
		addPEMLines(secrets, "key "+name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		secrets["key "+name+" (base64)"] = base64.StdEncoding.EncodeToString(der)
		sealed, err := os.ReadFile(filepath.Join(keyDir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		addPEMLines(secrets, "sealed key "+name, sealed)
	}
	keyFiles, _ := filepath.Glob(filepath.Join(dir, "data", "trustd", "trustd", "v1", "*", "*.pem"))
	tufKeys, _ := filepath.Glob(filepath.Join(dir, "data", "trustd", "trustd", "v1", "tuf", "keys", "*.pem"))
	if keyFiles = append(keyFiles, tufKeys...); len(keyFiles) < 3 {
		t.Fatalf("found %d of trustd's private keys (token signing, snapshot, timestamp): %v", len(keyFiles), keyFiles)
	}
	for _, f := range keyFiles {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		addPEMLines(secrets, "trustd's "+filepath.Base(f), raw)
	}

	// Everything is said: stop the stack so its output is complete.
	st.stop()
	logs := st.log.String()
	for what, secret := range secrets {
		if secret == "" {
			t.Errorf("%s is empty: the session did not use it", what)
			continue
		}
		if strings.Contains(logs, secret) {
			t.Errorf("the stack's logs contain %s", what)
		}
	}
	if strings.Contains(logs, "/token?") || strings.Contains(logs, "Bearer ey") {
		t.Error("the stack's logs contain a /token query string or a bearer token")
	}

	// The logs are not trivially empty: request lines with their keys, from
	// both servers, and the IDs of the two calls above on both.
	lines := strings.Split(logs, "\n")
	count := map[string]int{}
	for _, l := range lines {
		if strings.Contains(l, " msg=request ") && requestLine.MatchString(l) {
			count[field(l, "server")]++
		}
	}
	if count["registry"] < 10 || count["trustd"] < 10 {
		t.Errorf("request lines with method, route, path, status, dur, bytes, request_id and remote: %v, want at least 10 from each server", count)
	}
	checkLine := func(id, server, route string, want map[string]string) {
		t.Helper()
		for _, l := range lines {
			if field(l, "request_id") == id && field(l, "server") == server && field(l, "route") == route {
				for k, v := range want {
					if got := field(l, k); got != v {
						t.Errorf("%s's line for %s has %s=%q, want %q:\n%s", server, route, k, got, v, l)
					}
				}
				return
			}
		}
		t.Errorf("no %s request line for %s with request_id=%s", server, route, id)
	}
	checkLine(tokenID, "registry", "/token", map[string]string{"status": "200", "method": "GET", "path": "/token"})
	checkLine(tokenID, "trustd", "/token", map[string]string{"status": "200", "sub": "alice", "remote": "127.0.0.1"})
	checkLine(madeID, "registry", "/token", map[string]string{"status": "200"})
	checkLine(madeID, "trustd", "/token", map[string]string{"status": "200", "sub": robot.Name})
	checkLine(pushID, "registry", "/v2/{name:.+}/manifests/{reference}",
		map[string]string{"status": "403", "repo": "acme/app", "tag": "unsigned", "sub": "admin"})
	checkLine(pushID, "trustd", "/tuf/{file:[^/]+\\.json}", map[string]string{"path": "/tuf/timestamp.json"})
}

// requestLine matches a request line with every key a request line always has.
var requestLine = regexp.MustCompile(`method=\S+ route=\S* path=\S+ status=\d{3} dur=\S+ bytes=\d+ request_id=\S+ remote=\S+`)

// field returns the value of key in a text log line ("" if absent), unquoting
// a quoted value.
func field(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if q, err := strconv.QuotedPrefix(v); err == nil {
		s, _ := strconv.Unquote(q)
		return s
	}
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v
}

// addPEMLines adds every base64 line of a PEM file's body: a log that printed
// the key would hold them, wrapped or not.
func addPEMLines(secrets map[string]string, what string, pemBytes []byte) {
	n := 0
	for _, l := range strings.Split(string(pemBytes), "\n") {
		if l = strings.TrimSpace(l); len(l) >= 40 && !strings.HasPrefix(l, "-----") && !strings.Contains(l, ":") {
			n++
			secrets[fmt.Sprintf("%s, line %d", what, n)] = l
		}
	}
	if n == 0 {
		secrets[what+" (no base64 body found)"] = ""
	}
}

// identityTokens returns the refresh tokens a docker config file keeps.
func identityTokens(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Auths map[string]struct {
			IdentityToken string `json:"identitytoken"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range cfg.Auths {
		if a.IdentityToken != "" {
			out = append(out, a.IdentityToken)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s keeps no refresh token after trustctl login", path)
	}
	return out
}
