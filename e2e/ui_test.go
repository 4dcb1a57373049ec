package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// browser drives the web UI as a browser does: a cookie jar, redirects
// followed, forms posted with the CSRF token read from the page.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newBrowser(t *testing.T, st *stack) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: st.URL(""), hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// get returns the status and body of the page at path.
func (b *browser) get(path string) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.hc.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the form on the page at path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	status, body, _ := b.get(path)
	m := csrfField.FindStringSubmatch(body)
	if status != http.StatusOK || m == nil {
		b.t.Fatalf("GET %s = %d with no CSRF token in its form:\n%s", path, status, body)
	}
	return m[1]
}

// post posts form to path, following the redirect that answers it.
func (b *browser) post(path string, form url.Values) (int, string, *http.Response) {
	b.t.Helper()
	resp, err := b.hc.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp
}

func (b *browser) signIn(user, password string) {
	b.t.Helper()
	status, body, _ := b.post("/ui/login", url.Values{"csrf": {b.csrf("/ui/login")}, "username": {user}, "password": {password}})
	if status != http.StatusOK || !strings.Contains(body, "Sign out") {
		b.t.Fatalf("signing in as %s: %d\n%s", user, status, body)
	}
}

// TestWebUI drives the web UI against one `trustctl up`: sign-in (a person's
// and a robot's), the repositories a reader may pull and no other, a
// repository's signed tags, the audit log, the trust graph, the protections of
// every page (CSP, CSRF, cookie flags), and every page in a real browser. The
// subtests share the stack and run in order.
func TestWebUI(t *testing.T) {
	t.Parallel()
	st := startStack(t)
	st.trustctl(t, "keys", "generate", "alice")
	carol := st.addUser(t, "carol", "acme", "publisher")
	rita := st.addUser(t, "rita", "beta", "reader")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")
	st.trustctl(t, "org", "delegate", "beta/secret", "--key", "alice")
	var pushed struct{ Digest string }
	st.jsonOf(t, &pushed, "push", writeLayout(t, newImage(t, "ui-app", newLayer(t, "a.bin", 2048))), st.Addr+"/acme/app:v1", "--key", "alice")
	st.trustctl(t, "push", writeLayout(t, newImage(t, "ui-secret", newLayer(t, "b.bin", 1024))), st.Addr+"/beta/secret:v1", "--key", "alice")
	if err := st.admin().pushImage("acme/app", "v2", newImage(t, "ui-unsigned", newLayer(t, "c.bin", 512)), uploadMonolithicPost); err == nil {
		t.Fatal("an unsigned push to acme/app was admitted")
	}
	var alice struct{ ID string }
	st.jsonOf(t, &alice, "keys", "export", "alice")
	f := &uiFixture{st: st, carol: carol, rita: rita, aliceID: alice.ID, digest: pushed.Digest}

	t.Run("trustctl up prints the UI's URL", f.webUIPrintsURL)
	t.Run("headers and the sign-in form", f.webUIHeaders)
	t.Run("CSRF: a form posted without its token is refused", f.webUICSRF)
	t.Run("sign in: the session cookie's flags; a wrong password", f.webUICookies)
	t.Run("find acme/app, see v1 signed by alice with its expiry", f.webUISearchAndTags)
	t.Run("a reader of beta sees nothing of acme: not listed, a direct URL is 403", f.webUIIsolation)
	t.Run("audit log: a denied push with its reason, filtered", f.webUIAudit)
	t.Run("trust graph: root to keys, as far as the reader may pull", f.webUITrustGraph)
	t.Run("a robot signs in as org+name with its secret", f.webUIRobot)
	t.Run("an org owner makes a robot, sees its secret once, and revokes it", f.webUIOrgRobots)
	t.Run("org page: forms without the CSRF token, a reader of another org", f.webUIOrgRefused)
	t.Run("a real browser loads every page with no CSP violation", f.webUIBrowser)
	t.Run("sign out ends the session", f.webUISignOut)
}

// uiFixture is what TestWebUI's subtests share: the stack, two people's
// passwords, alice's key ID and the digest of acme/app:v1.
type uiFixture struct {
	st              *stack
	carol, rita     string
	aliceID, digest string
	// olga owns acme: the org page's subtests add her.
	olga string
}

func (f *uiFixture) webUIPrintsURL(t *testing.T) {
	st := f.st
	// The line follows the one startStack waits for: TestWebUI's setup gave it time.
	if !strings.Contains(st.log.String(), "stdout: Web UI: http://"+st.Addr+"/ui/\n") {
		t.Errorf("trustctl up did not print the web UI's URL:\n%s", st.log.Tail(20))
	}
}

func (f *uiFixture) webUIHeaders(t *testing.T) {
	st := f.st
	b := newBrowser(t, st)
	status, body, h := b.get("/")
	if status != http.StatusOK || !strings.Contains(body, `action="/ui/login"`) {
		t.Fatalf("GET / = %d, want the sign-in page:\n%s", status, body)
	}
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q, want default-src 'self', frame-ancestors 'none' and no unsafe-inline", csp)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
		t.Errorf("the sign-in page has inline script or style:\n%s", body)
	}
	if status, _, _ := b.get("/ui/static/style.css"); status != http.StatusOK {
		t.Errorf("GET /ui/static/style.css = %d, want 200", status)
	}
	// The API keeps answering as before beside the UI.
	if status, _, _ := b.get("/v2/"); status != http.StatusUnauthorized {
		t.Errorf("GET /v2/ = %d, want 401: the UI's cookie must not authenticate the API", status)
	}
}

func (f *uiFixture) webUICSRF(t *testing.T) {
	st := f.st
	carol := f.carol
	b := newBrowser(t, st)
	b.csrf("/ui/login") // the browser holds a CSRF cookie, the form's token is left out
	status, body, _ := b.post("/ui/login", url.Values{"username": {"carol"}, "password": {carol}})
	if status != http.StatusForbidden || strings.Contains(body, "Sign out") {
		t.Errorf("sign-in without the CSRF token = %d, want 403 and no session:\n%s", status, body)
	}
	status, _, _ = b.post("/ui/login", url.Values{"csrf": {"forged-token-forged-token-forged-token"}, "username": {"carol"}, "password": {carol}})
	if status != http.StatusForbidden {
		t.Errorf("sign-in with a forged CSRF token = %d, want 403", status)
	}
	b.signIn("carol", carol)
	status, _, _ = b.post("/ui/logout", url.Values{})
	if status != http.StatusForbidden {
		t.Errorf("sign-out without the CSRF token = %d, want 403", status)
	}
	if status, body, _ := b.get("/ui/repos"); status != http.StatusOK || !strings.Contains(body, "Sign out") {
		t.Errorf("the refused sign-out ended the session: %d", status)
	}
}

func (f *uiFixture) webUICookies(t *testing.T) {
	st := f.st
	carol := f.carol
	b := newBrowser(t, st)
	status, body, _ := b.post("/ui/login", url.Values{"csrf": {b.csrf("/ui/login")}, "username": {"carol"}, "password": {"wrong"}})
	if status != http.StatusUnauthorized || !strings.Contains(body, "wrong") {
		t.Errorf("sign-in with a wrong password = %d, want 401 saying so:\n%s", status, body)
	}
	noRedirect := &http.Client{Jar: b.hc.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(b.base+"/ui/login", url.Values{"csrf": {b.csrf("/ui/login")}, "username": {"carol"}, "password": {carol}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/repos" {
		t.Errorf("sign-in = %d to %q, want 303 to /ui/repos", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "signet_session" {
			session = c
		}
	}
	switch {
	case session == nil:
		t.Fatalf("sign-in set no session cookie: %q", resp.Header.Values("Set-Cookie"))
	case !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/ui/" || session.Secure:
		t.Errorf("session cookie = %+v, want HttpOnly, SameSite=Strict, Path=/ui/ (not Secure over http)", session)
	case strings.Count(session.Value, ".") == 2 || strings.Contains(resp.Header.Get("Location"), "token"):
		t.Errorf("the session cookie or redirect carries a token: %q", session.Value)
	}
	req, _ := http.NewRequest(http.MethodGet, b.base+"/v2/_catalog", nil)
	req.AddCookie(session)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v2/_catalog with the session cookie = %d, want 401", resp.StatusCode)
	}
}

func (f *uiFixture) webUISearchAndTags(t *testing.T) {
	st := f.st
	carol := f.carol
	b := newBrowser(t, st)
	b.signIn("carol", carol)
	status, body, _ := b.get("/ui/repos?q=app")
	if status != http.StatusOK || !strings.Contains(body, `href="/ui/r/acme/app"`) || !strings.Contains(body, "enforced") {
		t.Fatalf("search for app = %d, want acme/app, enforced:\n%s", status, body)
	}
	if _, body, _ := b.get("/ui/repos?q=nothing-matches"); strings.Contains(body, "acme/app") {
		t.Errorf("a search that matches nothing listed acme/app")
	}
	status, body, _ = b.get("/ui/r/acme/app")
	if status != http.StatusOK {
		t.Fatalf("GET /ui/r/acme/app = %d:\n%s", status, body)
	}
	year := time.Now().UTC().AddDate(1, 0, 0).Format("2006")
	for _, want := range []string{
		`id="tag-v1"`, "signed</span> by " + f.aliceID[:16], f.digest[:19], "application/vnd.oci.image.manifest.v1",
		"expires " + year, "docker pull " + st.Addr + "/acme/app:v1", "docker pull " + st.Addr + "/acme/app@" + f.digest,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page of acme/app lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `id="tag-sha256-`) {
		t.Errorf("the page of acme/app lists the signature's tag as an image:\n%s", body)
	}
}

func (f *uiFixture) webUIIsolation(t *testing.T) {
	st := f.st
	rita := f.rita
	b := newBrowser(t, st)
	b.signIn("rita", rita)
	_, body, _ := b.get("/ui/repos")
	if !strings.Contains(body, "beta/secret") || strings.Contains(body, "acme/") {
		t.Errorf("rita's repositories: want beta/secret and nothing of acme:\n%s", body)
	}
	for _, path := range []string{"/ui/r/acme/app", "/ui/r/acme/none"} {
		status, body, _ := b.get(path)
		// The sign-out form's random CSRF token may hold "v1" by chance.
		if status != http.StatusForbidden || strings.Contains(csrfField.ReplaceAllString(body, ""), "v1") {
			t.Errorf("rita GET %s = %d, want 403 saying nothing of its tags:\n%s", path, status, body)
		}
	}
	if status, _, _ := b.get("/ui/r/beta/secret"); status != http.StatusOK {
		t.Errorf("rita GET /ui/r/beta/secret = %d, want 200", status)
	}
}

func (f *uiFixture) webUIAudit(t *testing.T) {
	st := f.st
	carol := f.carol
	b := newBrowser(t, st)
	b.signIn("admin", st.AdminPassword)
	status, body, _ := b.get("/ui/audit?repo=acme/**&action=admission.deny")
	if status != http.StatusOK || !strings.Contains(body, "<code>admission.deny</code>") || !strings.Contains(body, "acme/app:v2") ||
		!strings.Contains(body, "is not signed for acme/app:v2") {
		t.Errorf("the audit page filtered on denied pushes = %d, want acme/app:v2's denial and its reason:\n%s", status, body)
	}
	if strings.Contains(body, "<code>target.publish</code>") {
		t.Errorf("the action filter let other actions through:\n%s", body)
	}
	_, body, _ = b.get("/ui/audit?org=beta")
	if !strings.Contains(body, "beta/secret") || strings.Contains(body, "acme/app") {
		t.Errorf("the audit page filtered on org beta shows acme/app or lacks beta/secret:\n%s", body)
	}
	if status, _, _ := b.get("/ui/audit?since=yesterday-ish"); status != http.StatusBadRequest {
		t.Errorf("a since that is no time = %d, want 400", status)
	}
	c := newBrowser(t, st)
	c.signIn("carol", carol)
	status, body, _ = c.get("/ui/audit")
	if status != http.StatusOK || strings.Contains(body, "<code>admission.deny</code>") || !strings.Contains(body, "is for admins") {
		t.Errorf("carol's audit page = %d, want no registry records and a note that they are for admins:\n%s", status, body)
	}
}

func (f *uiFixture) webUITrustGraph(t *testing.T) {
	st := f.st
	carol := f.carol
	b := newBrowser(t, st)
	b.signIn("carol", carol)
	status, body, _ := b.get("/ui/trust")
	if status != http.StatusOK || !strings.Contains(body, "<svg") {
		t.Fatalf("GET /ui/trust = %d, want an SVG:\n%s", status, body)
	}
	for _, want := range []string{">root</text>", ">targets</text>", ">acme</text>", ">acme/app</text>", "key " + f.aliceID[:16], "signed by 1 of 1 delegated keys", "expires "} {
		if !strings.Contains(body, want) {
			t.Errorf("carol's trust graph lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "beta") {
		t.Errorf("carol's trust graph shows beta, which she may not pull:\n%s", body)
	}
	if strings.Contains(body, " style=") || strings.Contains(body, "<style") {
		t.Errorf("the trust graph has inline style, which the CSP refuses:\n%s", body)
	}
}

func (f *uiFixture) webUIRobot(t *testing.T) {
	st := f.st
	out := st.ctl(t, "", "token", "create", "--org", "acme", "--scope", "repository:acme/app:pull", "--name", "uibot", "--output", "json")
	var robot struct{ Name, Secret string }
	if err := json.Unmarshal([]byte(out), &robot); err != nil || robot.Secret == "" {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	b := newBrowser(t, st)
	b.signIn("acme+uibot", robot.Secret)
	if status, body, _ := b.get("/ui/r/acme/app"); status != http.StatusOK || !strings.Contains(body, `id="tag-v1"`) {
		t.Errorf("the robot's GET /ui/r/acme/app = %d, want v1:\n%s", status, body)
	}
}

func (f *uiFixture) webUIBrowser(t *testing.T) {
	st := f.st
	webUIInBrowser(t, st, "admin", st.AdminPassword)
}

func (f *uiFixture) webUISignOut(t *testing.T) {
	st := f.st
	rita := f.rita
	b := newBrowser(t, st)
	b.signIn("rita", rita)
	status, body, _ := b.post("/ui/logout", url.Values{"csrf": {b.csrf("/ui/repos")}})
	if status != http.StatusOK || !strings.Contains(body, `action="/ui/login"`) {
		t.Errorf("sign-out = %d, want the sign-in page", status)
	}
	if _, body, _ := b.get("/ui/repos"); strings.Contains(body, "beta/secret") {
		t.Errorf("after sign-out the repositories are still shown")
	}
}

// owner signs in as olga, an owner of acme, adding her on first use.
func (f *uiFixture) owner(t *testing.T) *browser {
	t.Helper()
	if f.olga == "" {
		f.olga = f.st.addUser(t, "olga", "acme", "owner")
	}
	b := newBrowser(t, f.st)
	b.signIn("olga", f.olga)
	return b
}

// dockerToken is the status of the registry's /token answering basic auth
// for a pull of acme/app, as docker asks it.
func dockerToken(t *testing.T, st *stack, user, password string) int {
	t.Helper()
	resp, err := http.Get(st.URL("/v2/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	m := regexp.MustCompile(`service="([^"]+)"`).FindStringSubmatch(resp.Header.Get("WWW-Authenticate"))
	if m == nil {
		t.Fatalf("GET /v2/ challenge %q names no service", resp.Header.Get("WWW-Authenticate"))
	}
	req, _ := http.NewRequest(http.MethodGet, st.URL("/token?service="+url.QueryEscape(m[1])+"&scope=repository:acme/app:pull"), nil)
	req.SetBasicAuth(user, password)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var robotSecret = regexp.MustCompile(`id="robot-secret" readonly value="([^"]+)"`)

func (f *uiFixture) webUIOrgRobots(t *testing.T) {
	st := f.st
	b := f.owner(t)
	status, body, _ := b.get("/ui/repos")
	if status != http.StatusOK || !strings.Contains(body, `href="/ui/orgs/acme"`) {
		t.Errorf("olga's navigation lacks a link to acme's page:\n%s", body)
	}
	status, body, _ = b.get("/ui/orgs/acme")
	if status != http.StatusOK {
		t.Fatalf("olga GET /ui/orgs/acme = %d:\n%s", status, body)
	}
	for _, want := range []string{"<td>carol</td><td>publisher</td>", "<td>olga</td><td>owner</td>", htmlText("acme+uibot"),
		`<a href="/ui/r/acme/app">acme/app</a>`, f.aliceID[:16], "1 of 1", "trustctl org delegate acme/REPO"} {
		if !strings.Contains(body, want) {
			t.Errorf("acme's page lacks %q:\n%s", want, body)
		}
	}
	csrf := csrfField.FindStringSubmatch(body)[1]
	status, body, _ = b.post("/ui/orgs/acme/robots", url.Values{"csrf": {csrf}, "name": {"webbot"},
		"scopes": {"repository:acme/app:pull"}, "ttl": {"1h"}})
	m := robotSecret.FindStringSubmatch(body)
	if status != http.StatusCreated || m == nil {
		t.Fatalf("creating a robot = %d, want 201 with its secret:\n%s", status, body)
	}
	secret := m[1]
	if !strings.Contains(body, "docker login "+st.Addr+" -u ") {
		t.Errorf("the new robot's sign-in command does not name the registry %s:\n%s", st.Addr, body)
	}
	if _, body, _ := b.get("/ui/orgs/acme"); strings.Contains(body, secret) || !strings.Contains(body, htmlText("acme+webbot")) {
		t.Errorf("a reload of acme's page shows the secret again, or not the robot")
	}
	if status := dockerToken(t, st, "acme+webbot", secret); status != http.StatusOK {
		t.Fatalf("the new robot's docker login = %d, want 200", status)
	}
	status, body, _ = b.post("/ui/orgs/acme/robots/acme+webbot/revoke", url.Values{"csrf": {csrf}})
	if status != http.StatusOK || strings.Contains(body, htmlText("acme+webbot")) {
		t.Errorf("revoking = %d, want acme's page without the robot:\n%s", status, body)
	}
	if status := dockerToken(t, st, "acme+webbot", secret); status != http.StatusUnauthorized {
		t.Errorf("the revoked robot's docker login = %d, want 401", status)
	}
	if status, body, _ := b.post("/ui/orgs/acme/robots", url.Values{"csrf": {csrf}, "name": {"x"}}); status != http.StatusBadRequest {
		t.Errorf("a robot with no scopes = %d, want 400:\n%s", status, body)
	}
	status, body, _ = b.post("/ui/orgs/acme/robots", url.Values{"csrf": {csrf}, "name": {"x"}, "scopes": {"repository:acme/app:pull"}, "ttl": {"forever"}})
	if status != http.StatusBadRequest || !strings.Contains(body, "not a positive duration") {
		t.Errorf("a robot with a lifetime that is no duration = %d, want 400 with trustd's reason:\n%s", status, body)
	}
	if status, _, _ := b.post("/ui/orgs/acme/robots/acme+nobot/revoke", url.Values{"csrf": {csrf}}); status != http.StatusNotFound {
		t.Errorf("revoking a robot that does not exist = %d, want 404", status)
	}
}

func (f *uiFixture) webUIOrgRefused(t *testing.T) {
	st := f.st
	b := f.owner(t)
	before, _, _ := b.get("/ui/orgs/acme")
	if before != http.StatusOK {
		t.Fatalf("olga GET /ui/orgs/acme = %d", before)
	}
	status, _, _ := b.post("/ui/orgs/acme/robots", url.Values{"name": {"forged"}, "scopes": {"repository:acme/app:pull"}})
	if status != http.StatusForbidden {
		t.Errorf("creating a robot without the CSRF token = %d, want 403", status)
	}
	status, _, _ = b.post("/ui/orgs/acme/robots/acme+uibot/revoke", url.Values{})
	if status != http.StatusForbidden {
		t.Errorf("revoking a robot without the CSRF token = %d, want 403", status)
	}
	if _, body, _ := b.get("/ui/orgs/acme"); strings.Contains(body, "forged") || !strings.Contains(body, htmlText("acme+uibot")) {
		t.Errorf("a refused form changed acme's robots:\n%s", body)
	}
	c := newBrowser(t, st)
	c.signIn("carol", f.carol)
	status, body, _ := c.get("/ui/orgs/acme")
	if status != http.StatusOK || !strings.Contains(body, "<td>olga</td><td>owner</td>") || strings.Contains(body, "uibot") || strings.Contains(body, "Create robot") {
		t.Errorf("carol, a publisher, GET /ui/orgs/acme = %d, want the members only:\n%s", status, body)
	}
	if status, _, _ := c.post("/ui/orgs/acme/robots", url.Values{"csrf": {c.csrf("/ui/repos")}, "name": {"carolbot"}, "scopes": {"repository:acme/app:pull"}}); status != http.StatusForbidden {
		t.Errorf("carol creating a robot = %d, want 403", status)
	}
	r := newBrowser(t, st)
	r.signIn("rita", f.rita)
	if status, body, _ := r.get("/ui/orgs/acme"); status != http.StatusForbidden || strings.Contains(body, "carol") {
		t.Errorf("rita, a reader of beta, GET /ui/orgs/acme = %d, want 403 naming no member:\n%s", status, body)
	}
}

// htmlText is s as html/template writes it in text: a robot's "+" as &#43;.
func htmlText(s string) string { return strings.ReplaceAll(s, "+", "&#43;") }
