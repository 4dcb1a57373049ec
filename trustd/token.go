package trustd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/signet-oss/signet/internal/httpmetrics"
	"github.com/signet-oss/signet/internal/logging"
	"github.com/signet-oss/signet/tokenauth"
	"github.com/signet-oss/signet/trustd/directory"
)

// The token endpoint, per distribution's docs/spec/auth (token.md, oauth.md,
// scope.md, jwt.md):
//
//	GET  /token?service=S&scope=...&offline_token=true&client_id=C   [Basic auth or none]
//	POST /token   grant_type=password&username=U&password=P&service=S&scope=...&access_type=offline
//	POST /token   grant_type=refresh_token&refresh_token=R&service=S&scope=...
//
// scope may repeat and each value may hold several space-separated scopes; the
// actions of one resource are merged. The token carries the intersection of what
// was asked and what the subject may do; missing access is not an error, so an
// anonymous request gets 200 with what anonymous may do. Bad credentials get 401,
// too many failures 429, a malformed request or an unknown service 400.
//
// The answer always carries both "token" and "access_token" (oras reads only the
// latter), "expires_in" and "issued_at", and "scope" (oauth.md requires it). A
// refresh token comes back only when asked for (offline_token=true on GET,
// access_type=offline on a password grant); a refresh grant returns the same
// refresh token it was given.

// maxTokenForm bounds a POST /token body.
const maxTokenForm = 64 << 10

type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

// tokenRequest is a token request, decoded from either method.
type tokenRequest struct {
	service  string
	scopes   []string
	clientID string
	offline  bool // a refresh token is wanted
	// grant is "basic" (GET with Basic auth), "anonymous", "password" or "refresh_token".
	grant    string
	username string
	password string
	refresh  string
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	req, err := decodeTokenRequest(w, r)
	httpmetrics.Note(w, req.grant)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !slices.Contains(s.cfg.audiences(), req.service) {
		s.writeError(w, r, newAPIError(CodeInvalid, fmt.Sprintf("service %q is not served here (%s)", req.service, strings.Join(s.cfg.audiences(), ", "))))
		return
	}
	asked, err := tokenauth.ParseScopes(req.scopes)
	if err != nil {
		s.writeError(w, r, newAPIError(CodeInvalid, err.Error()))
		return
	}
	p, err := s.authenticateTokenRequest(req, s.clientIP(r))
	if err != nil {
		if errors.Is(err, directory.ErrBadCredentials) {
			w.Header().Set("WWW-Authenticate", `Basic realm="signet"`)
		}
		s.writeError(w, r, err)
		return
	}
	logging.SetSubject(r.Context(), p.Name)
	resp, err := s.issue(r.Context(), p, req, asked)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if resp.RefreshToken != "" && req.grant != "refresh_token" {
		if err := s.record(r, p, refreshRecord(p, req)); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

func decodeTokenRequest(w http.ResponseWriter, r *http.Request) (tokenRequest, error) {
	var req tokenRequest
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		req.service, req.scopes, req.clientID = q.Get("service"), q["scope"], q.Get("client_id")
		req.offline = q.Get("offline_token") == "true"
		req.grant = "anonymous"
		if r.Header.Get("Authorization") != "" {
			user, pass, ok := r.BasicAuth()
			if !ok {
				return req, newAPIError(CodeUnauthorized, "the token endpoint takes Basic credentials, or none for anonymous access")
			}
			req.grant, req.username, req.password = "basic", user, pass
		}
		return req, validateTokenRequest(req)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
	if err := r.ParseForm(); err != nil {
		return req, newAPIError(CodeInvalid, "the body is not a form (application/x-www-form-urlencoded) of at most 64 KiB")
	}
	f := r.Form // the body, then the query: some clients put scope in either
	req.service, req.scopes, req.clientID = f.Get("service"), f["scope"], f.Get("client_id")
	// Secrets only ever come in the body (RFC 6749 2.3.1, 4.3.2): a URL ends up
	// in access logs, proxies and browser history.
	if q := r.URL.Query(); q.Has("password") || q.Has("refresh_token") {
		return req, newAPIError(CodeInvalid, "send password and refresh_token in the form body, never in the URL")
	}
	body := r.PostForm
	switch req.grant = f.Get("grant_type"); req.grant {
	case "password":
		req.username, req.password = f.Get("username"), body.Get("password")
		req.offline = f.Get("access_type") == "offline"
		if req.username == "" {
			return req, newAPIError(CodeInvalid, "the password grant needs username and password")
		}
	case "refresh_token":
		req.refresh = body.Get("refresh_token")
		req.offline = true // the same refresh token is returned
		if req.refresh == "" {
			return req, newAPIError(CodeInvalid, "the refresh_token grant needs refresh_token")
		}
	case "":
		return req, newAPIError(CodeInvalid, "grant_type is missing (password or refresh_token)")
	default:
		return req, newAPIError(CodeInvalid, fmt.Sprintf("grant_type %q is not supported (password, refresh_token)", req.grant))
	}
	return req, validateTokenRequest(req)
}

// validateTokenRequest checks the fields every grant shares.
func validateTokenRequest(req tokenRequest) error {
	if err := validateService(req.service); err != nil {
		return err
	}
	return validateClientID(req.clientID)
}

// maxClientID bounds client_id, which refresh tokens and the audit log keep.
const maxClientID = 64

// validateClientID checks an OAuth client_id: printable ASCII (RFC 6749
// appendix A.1, VSCHAR) of at most maxClientID characters, so what the audit
// log keeps and trustctl prints is neither cut mid-character nor a terminal
// control sequence.
func validateClientID(id string) error {
	if len(id) > maxClientID {
		return newAPIError(CodeInvalid, fmt.Sprintf("invalid_request: client_id is %d bytes, more than %d", len(id), maxClientID))
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return newAPIError(CodeInvalid, fmt.Sprintf("invalid_request: client_id has byte %#02x at %d: only printable ASCII is allowed", id[i], i))
		}
	}
	return nil
}

func validateService(service string) error {
	if service == "" {
		return newAPIError(CodeInvalid, "service is missing: pass the service of the registry's Bearer challenge")
	}
	return nil
}

// authenticateTokenRequest finds who the request speaks for.
func (s *Server) authenticateTokenRequest(req tokenRequest, ip string) (directory.Principal, error) {
	switch req.grant {
	case "basic", "password":
		return s.dir.Authenticate(req.username, req.password, ip)
	case "refresh_token":
		return s.dir.RedeemRefreshToken(req.refresh, req.service, ip)
	}
	return directory.Principal{}, nil
}

// issue signs the access token and, when asked, makes the refresh token.
func (s *Server) issue(ctx context.Context, p directory.Principal, req tokenRequest, asked []tokenauth.Access) (*tokenResponse, error) {
	granted := s.dir.GrantAccess(p, asked)
	tok, claims, err := s.issuer.Issue(p.Name, req.service, granted)
	if err != nil {
		return nil, fmt.Errorf("signing a token: %w", err)
	}
	resp := &tokenResponse{
		Token:       tok,
		AccessToken: tok,
		ExpiresIn:   claims.Expiry - claims.IssuedAt,
		IssuedAt:    time.Unix(claims.IssuedAt, 0).UTC().Format(time.RFC3339),
		Scope:       scopeString(granted),
	}
	switch {
	case req.grant == "refresh_token":
		resp.RefreshToken = req.refresh
	case req.offline && !p.Anonymous():
		if resp.RefreshToken, err = s.dir.NewRefreshToken(ctx, p, req.service, req.clientID); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// scopeString is the granted access as a scope list (oauth.md's "scope").
func scopeString(access []tokenauth.Access) string {
	parts := make([]string, len(access))
	for i, a := range access {
		parts[i] = a.Scope()
	}
	return strings.Join(parts, " ")
}
