package ui

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/signet-oss/signet/client"
)

// Cookie names. The session cookie is SameSite=Strict: a request another site
// starts never carries it, and the CSRF token guards the forms besides.
const (
	sessionCookie = "signet_session"
	// csrfCookie holds the CSRF token of a browser not signed in, for the
	// sign-in form (double submit); a session has its own.
	csrfCookie = "signet_csrf"
)

// Session lifetimes: a session ends after sessionIdle without a request, and
// after sessionMax in any case; sign-in is then asked again.
const (
	sessionIdle = 30 * time.Minute
	sessionMax  = 12 * time.Hour
)

// session is one signed-in browser. The refresh tokens stay here, on the
// server: the cookie holds only the session's random ID, so neither a token
// nor a refresh token ever reaches the browser.
type session struct {
	user            string
	csrf            string
	registryRefresh string
	trustdRefresh   string
	// orgs are the organisations the account may read, for the navigation.
	orgs     []string
	created  time.Time
	mu       sync.Mutex
	lastSeen time.Time
	access   map[string]cachedToken // by scope; "trustd" for trustd's
	// catalog is the repositories the account may pull, as the registry
	// listed them at catalogAt (see catalogTTL).
	catalog   []string
	catalogAt time.Time
}

type cachedToken struct {
	token   string
	expires time.Time
}

// sessions are kept by the SHA-256 of their IDs, so a memory dump or timing of
// the map gives no usable cookie.
type sessions struct {
	mu sync.Mutex
	m  map[[32]byte]*session
}

func newSessions() *sessions { return &sessions{m: map[[32]byte]*session{}} }

func (ss *sessions) add(s *session) string {
	id := randomToken()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := time.Now()
	for k, old := range ss.m {
		if old.expired(now) {
			delete(ss.m, k)
		}
	}
	ss.m[sha256.Sum256([]byte(id))] = s
	return id
}

func (s *session) expired(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Sub(s.lastSeen) > sessionIdle || now.Sub(s.created) > sessionMax
}

// get returns the request's live session, or nil.
func (ss *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	key := sha256.Sum256([]byte(c.Value))
	ss.mu.Lock()
	s := ss.m[key]
	ss.mu.Unlock()
	if s == nil {
		return nil
	}
	now := time.Now()
	if s.expired(now) {
		ss.remove(r)
		return nil
	}
	s.mu.Lock()
	s.lastSeen = now
	s.mu.Unlock()
	return s
}

func (ss *sessions) remove(r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		ss.mu.Lock()
		delete(ss.m, sha256.Sum256([]byte(c.Value)))
		ss.mu.Unlock()
	}
}

func (u *UI) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge, HttpOnly: true,
		Secure: u.cfg.Secure, SameSite: http.SameSiteStrictMode}
}

// csrfToken is the token the page's forms carry: the session's, else the
// browser's CSRF cookie, set now if it has none.
func (u *UI) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if s := u.sessions.get(r); s != nil {
		return s.csrf
	}
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	tok := randomToken()
	http.SetCookie(w, u.cookie(csrfCookie, tok, int(sessionMax/time.Second)))
	// A cookie set on this answer is not yet on r: remember it for the rest
	// of the page.
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: tok})
	return tok
}

// checkCSRF reports whether a POST carries the CSRF token of its session (or,
// before sign-in, of its CSRF cookie) in its form.
func (u *UI) checkCSRF(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return false
	}
	got := r.PostForm.Get("csrf")
	var want string
	if s := u.sessions.get(r); s != nil {
		want = s.csrf
	} else if c, err := r.Cookie(csrfCookie); err == nil {
		want = c.Value
	}
	return want != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// signedIn runs h for a signed-in browser; any other is sent to sign in.
func (u *UI) signedIn(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := u.sessions.get(r)
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			u.errorPage(w, r, http.StatusUnauthorized, "Not signed in", "Your session has ended: sign in again.")
			return
		}
		h(w, r, s)
	}
}

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, http.StatusOK, "login", map[string]any{"Next": safeNext(r.URL.Query().Get("next"))})
}

// login signs a person or robot in through the registry's /token, with the
// password grant asked for refresh tokens: the registry's and trustd's, since
// each is bound to one service.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	user, password := strings.TrimSpace(r.PostForm.Get("username")), r.PostForm.Get("password")
	next := safeNext(r.PostForm.Get("next"))
	fail := func(status int, msg string) {
		u.render(w, r, status, "login", map[string]any{"Error": msg, "Username": user, "Next": next})
	}
	if user == "" || password == "" {
		fail(http.StatusBadRequest, "Enter a user name (a robot's as org+name) and its password or secret.")
		return
	}
	ctx := withBrowser(r.Context(), r)
	ep, err := u.discover(ctx)
	if err != nil {
		u.cfg.Log.Warn("ui: cannot find the token endpoints", "err", err)
		fail(http.StatusBadGateway, "The token service cannot be reached; try again shortly.")
		return
	}
	reg, err := u.tokens.PasswordGrant(ctx, ep.realm, ep.service, user, password)
	if err == nil && reg.RefreshToken == "" {
		err = errors.New("the token endpoint gave no refresh token")
	}
	var td *client.TokenResponse
	if err == nil {
		td, err = u.tokens.PasswordGrant(ctx, ep.trustdRealm, ep.trustdService, user, password)
	}
	if err != nil {
		var te *client.TokenError
		switch {
		case errors.As(err, &te) && te.Status == http.StatusUnauthorized:
			fail(http.StatusUnauthorized, "The user name or password is wrong.")
		case errors.As(err, &te) && te.Status == http.StatusTooManyRequests:
			fail(http.StatusTooManyRequests, "Too many failed sign-ins for this account: wait a minute and try again.")
		default:
			u.cfg.Log.Warn("ui: sign-in failed", "user", user, "err", err)
			fail(http.StatusBadGateway, "The token service did not answer as expected; try again shortly.")
		}
		return
	}
	now := time.Now()
	s := &session{user: user, csrf: randomToken(), registryRefresh: reg.RefreshToken, trustdRefresh: td.RefreshToken,
		orgs: u.userOrgs(ctx, td.Access()), created: now, lastSeen: now, access: map[string]cachedToken{}}
	id := u.sessions.add(s)
	http.SetCookie(w, u.cookie(sessionCookie, id, int(sessionMax/time.Second)))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	u.sessions.remove(r)
	http.SetCookie(w, u.cookie(sessionCookie, "", -1))
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

// registryToken returns an access token of the registry's service for scope,
// from the session's refresh token; tokens are short-lived and kept until a
// little before they expire.
func (u *UI) registryToken(ctx context.Context, s *session, scope string) (string, error) {
	return u.accessToken(ctx, s, scope, false)
}

// trustdToken returns an access token for trustd's API.
func (u *UI) trustdToken(ctx context.Context, s *session) (string, error) {
	return u.accessToken(ctx, s, "", true)
}

func (u *UI) accessToken(ctx context.Context, s *session, scope string, trustd bool) (string, error) {
	key := "registry " + scope
	if trustd {
		key = "trustd"
	}
	s.mu.Lock()
	c, ok := s.access[key]
	s.mu.Unlock()
	if ok && time.Until(c.expires) > 20*time.Second {
		return c.token, nil
	}
	ep, err := u.discover(ctx)
	if err != nil {
		return "", err
	}
	var tr *client.TokenResponse
	if trustd {
		tr, err = u.tokens.RefreshGrant(ctx, ep.trustdRealm, ep.trustdService, s.trustdRefresh)
	} else {
		var scopes []string
		if scope != "" {
			scopes = []string{scope}
		}
		tr, err = u.tokens.RefreshGrant(ctx, ep.realm, ep.service, s.registryRefresh, scopes...)
	}
	if err != nil {
		return "", err
	}
	life := time.Duration(tr.ExpiresIn) * time.Second
	if life <= 0 {
		life = 60 * time.Second
	}
	s.mu.Lock()
	s.access[key] = cachedToken{token: tr.Access(), expires: time.Now().Add(life)}
	s.mu.Unlock()
	return tr.Access(), nil
}

// safeNext is where to go after sign-in: a path of the UI, never another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix + "repos"
	}
	return next
}
