package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/signet-oss/signet/trustd/api"
)

// Trustd is a client of trustd's management API, authenticated with an access
// token whose audience is trustd's own service.
type Trustd struct {
	// Base is trustd's base URL, e.g. http://127.0.0.1:5001.
	Base string
	// Token is the bearer access token.
	Token string
	// HTTP is the client to use; nil means a default with a 30s timeout.
	HTTP *http.Client
}

// APIError is a refusal of trustd's API: {"errors":[{"code","message"}]}.
type APIError struct {
	// Op says what was attempted, e.g. "creating organisation acme".
	Op      string
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("%s: %s", e.Op, msg)
	if e.Code != "" {
		s = fmt.Sprintf("%s: %s (%s)", e.Op, msg, e.Code)
	}
	switch e.Status {
	case http.StatusUnauthorized:
		s += "; your login is no longer accepted: run `trustctl login HOST` again"
	case http.StatusForbidden:
		s += "; your account lacks the right: ask an owner of the organisation or the admin"
	}
	return s
}

// firstAPIError is the first error of a refusal's body (api.Errors), or nil.
func firstAPIError(body []byte) *api.Error {
	var eb api.Errors
	if json.Unmarshal(body, &eb) != nil || len(eb.Errors) == 0 {
		return nil
	}
	return &eb.Errors[0]
}

// Whoami returns who the token speaks for.
func (c *Trustd) Whoami(ctx context.Context) (api.Identity, error) {
	var id api.Identity
	_, err := c.do(ctx, "asking trustd who you are", http.MethodGet, "/api/v1/whoami", nil, &id, http.StatusOK)
	return id, err
}

// CreateUser creates a person account (admin only).
func (c *Trustd) CreateUser(ctx context.Context, name, password string) error {
	_, err := c.do(ctx, "creating user "+name, http.MethodPost, "/api/v1/users",
		api.UserRequest{Name: name, Password: password}, nil, http.StatusCreated)
	return err
}

// CreateGrant grants actions on the repositories matching pattern to the user
// subject (admin only).
func (c *Trustd) CreateGrant(ctx context.Context, subject, pattern string, actions ...string) error {
	_, err := c.do(ctx, "granting "+subject+" "+strings.Join(actions, ",")+" on "+pattern, http.MethodPost, "/api/v1/grants",
		api.GrantRequest{Subject: subject, Pattern: pattern, Actions: actions}, nil, http.StatusCreated)
	return err
}

// CreateOrg creates an organisation (admin only); created is false when it already
// existed, which is not an error.
func (c *Trustd) CreateOrg(ctx context.Context, name string) (created bool, err error) {
	status, err := c.do(ctx, "creating organisation "+name, http.MethodPost, "/api/v1/orgs",
		api.OrgRequest{Name: name}, nil, http.StatusCreated, http.StatusOK)
	return status == http.StatusCreated, err
}

// Org returns an organisation with its members.
func (c *Trustd) Org(ctx context.Context, name string) (api.Org, error) {
	var o api.Org
	_, err := c.do(ctx, "reading organisation "+name, http.MethodGet, "/api/v1/orgs/"+url.PathEscape(name), nil, &o, http.StatusOK)
	return o, err
}

// SetMember gives user role (owner, publisher or reader) in org.
func (c *Trustd) SetMember(ctx context.Context, org, user, role string) error {
	_, err := c.do(ctx, fmt.Sprintf("making %s a %s of %s", user, role, org), http.MethodPut,
		"/api/v1/orgs/"+url.PathEscape(org)+"/members/"+url.PathEscape(user),
		api.MemberRequest{Role: role}, nil, http.StatusOK, http.StatusCreated, http.StatusNoContent)
	return err
}

// RemoveMember removes user from org.
func (c *Trustd) RemoveMember(ctx context.Context, org, user string) error {
	_, err := c.do(ctx, fmt.Sprintf("removing %s from %s", user, org), http.MethodDelete,
		"/api/v1/orgs/"+url.PathEscape(org)+"/members/"+url.PathEscape(user), nil, nil, http.StatusOK, http.StatusNoContent)
	return err
}

// CreateRobot creates a robot credential of org; the answer holds its secret, which
// trustd never shows again.
func (c *Trustd) CreateRobot(ctx context.Context, org string, r api.RobotRequest) (api.Robot, error) {
	var out api.Robot
	_, err := c.do(ctx, fmt.Sprintf("creating robot %s in %s", r.Name, org), http.MethodPost,
		"/api/v1/orgs/"+url.PathEscape(org)+"/robots", r, &out, http.StatusCreated, http.StatusOK)
	return out, err
}

// Robots lists org's robots (without secrets).
func (c *Trustd) Robots(ctx context.Context, org string) ([]api.Robot, error) {
	var out []api.Robot
	_, err := c.do(ctx, "listing the robots of "+org, http.MethodGet, "/api/v1/orgs/"+url.PathEscape(org)+"/robots", nil, &out, http.StatusOK)
	if out == nil {
		out = []api.Robot{}
	}
	return out, err
}

// RevokeRobot revokes a robot of org: its secret and refresh tokens stop working at
// their next token exchange. name may carry the "<org>+" prefix or not.
func (c *Trustd) RevokeRobot(ctx context.Context, org, name string) error {
	_, err := c.do(ctx, fmt.Sprintf("revoking robot %s of %s", name, org), http.MethodDelete,
		"/api/v1/orgs/"+url.PathEscape(org)+"/robots/"+url.PathEscape(name), nil, nil, http.StatusNoContent, http.StatusOK)
	return err
}

func (c *Trustd) do(ctx context.Context, op, method, path string, in, out any, want ...int) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.Base, "/")+path, body)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: cannot reach trustd at %s: %w", op, c.Base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s: reading trustd's answer: %w", op, err)
	}
	ok := false
	for _, w := range want {
		ok = ok || resp.StatusCode == w
	}
	if !ok {
		ae := &APIError{Op: op, Status: resp.StatusCode}
		if e := firstAPIError(raw); e != nil {
			ae.Code, ae.Message = e.Code, e.Message
		} else {
			ae.Message = truncate(string(raw), 200)
		}
		return resp.StatusCode, ae
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s: unreadable answer from trustd: %v", op, err)
		}
	}
	return resp.StatusCode, nil
}
