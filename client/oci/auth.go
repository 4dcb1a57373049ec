package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/signet-oss/signet/client"
)

// Credentials are how to authenticate at one registry; the zero value is
// anonymous.
type Credentials struct {
	// RefreshToken is an identity token (a Signet login, docker's
	// "identitytoken"), exchanged with the OAuth2 refresh_token grant.
	RefreshToken string
	// Username and Password are sent with Basic auth to the token endpoint (GET,
	// as docker does), or to a registry that asks for Basic auth.
	Username, Password string
}

// authorizer answers a registry's challenges for one set of scopes and keeps
// the token it got until the registry refuses it.
type authorizer struct {
	creds  Credentials
	hc     *http.Client
	scopes []string

	mu    sync.Mutex
	token string // "Bearer ..." or "Basic ..."
}

// header returns the Authorization header to send, or "".
func (a *authorizer) header() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.token
}

// refresh answers a 401's challenge: it gets a new token for the challenge's
// scope and the authorizer's scopes. failed is the header that was refused.
func (a *authorizer) refresh(ctx context.Context, resp *http.Response, failed string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token != failed {
		return nil // another request refreshed it meanwhile
	}
	var bearer, basic *client.Challenge
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		ch, err := client.ParseChallenge(h)
		if err != nil {
			continue
		}
		switch ch.Scheme {
		case "bearer":
			bearer = &ch
		case "basic":
			basic = &ch
		}
	}
	switch {
	case bearer != nil && bearer.Realm() != "":
		scopes := append([]string(nil), a.scopes...)
		for _, s := range strings.Fields(bearer.Scope()) {
			if !contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
		tok, err := a.fetchToken(ctx, bearer.Realm(), bearer.Service(), scopes)
		if err != nil {
			return err
		}
		a.token = "Bearer " + tok
		return nil
	case basic != nil && a.creds.Username != "":
		if failed != "" {
			return fmt.Errorf("%s refused the user name and password of %q", resp.Request.URL.Host, a.creds.Username)
		}
		req := &http.Request{Header: http.Header{}}
		req.SetBasicAuth(a.creds.Username, a.creds.Password)
		a.token = req.Header.Get("Authorization")
		return nil
	}
	return fmt.Errorf("%s %s answered 401 with no challenge this client can answer (%q)", resp.Request.Method, resp.Request.URL.Redacted(), resp.Header.Values("WWW-Authenticate"))
}

func (a *authorizer) fetchToken(ctx context.Context, realm, service string, scopes []string) (string, error) {
	if a.creds.RefreshToken != "" {
		tr, err := (&client.TokenClient{HTTP: a.hc}).RefreshGrant(ctx, realm, service, a.creds.RefreshToken, scopes...)
		if err != nil {
			return "", fmt.Errorf("getting a token for %s: %w (log in again with `trustctl login`)", strings.Join(scopes, " "), err)
		}
		return tr.Access(), nil
	}
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	u := realm
	if strings.Contains(u, "?") {
		u += "&" + q.Encode()
	} else {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	if a.creds.Username != "" {
		req.SetBasicAuth(a.creds.Username, a.creds.Password)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot reach the token endpoint %s: %w", realm, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		who := "anonymously"
		if a.creds.Username != "" {
			who = "as " + a.creds.Username
		}
		return "", fmt.Errorf("the token endpoint %s refused a token for %s %s: %s", realm, strings.Join(scopes, " "), who, resp.Status)
	}
	var tr client.TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.Access() == "" {
		return "", fmt.Errorf("the token endpoint %s answered without a token", realm)
	}
	return tr.Access(), nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
