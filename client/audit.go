package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/signet-oss/signet/audit"
)

// Reading the audit logs: trustd's (GET /api/v1/audit) and the registry's (GET
// /signet/v1/audit, with a token for registry:audit:read), page by page, merged
// in time order.

// auditScope is the registry's audit log scope.
const auditScope = "registry:audit:read"

// Audit reads up to q.Limit records of trustd's audit log (following pages):
// the first of the range, or with newest the last.
func (c *Trustd) Audit(ctx context.Context, q audit.Query, newest bool) ([]audit.Record, error) {
	return readPages(q, newest, func(q audit.Query) (audit.Page, error) {
		var page audit.Page
		_, err := c.do(ctx, "reading trustd's audit log", http.MethodGet, "/api/v1/audit?"+q.Values().Encode(), nil, &page, http.StatusOK)
		return page, err
	})
}

// ErrAuditDenied: the registry refused its audit log to this login (it is for
// admins).
var ErrAuditDenied = errors.New("the registry's audit log is for admins")

// RegistryAudit reads up to q.Limit records of the audit log of the registry at
// host, authenticating with login when the registry challenges: the first of
// the range, or with newest the last.
func RegistryAudit(ctx context.Context, host string, login RegistryLogin, tc *TokenClient, q audit.Query, newest bool) ([]audit.Record, error) {
	base, _, err := BaseURL(ctx, host, false)
	if err != nil {
		return nil, err
	}
	auth := ""
	return readPages(q, newest, func(q audit.Query) (audit.Page, error) {
		url := base + "/signet/v1/audit?" + q.Values().Encode()
		status, body, hdr, err := get(ctx, tc, url, auth)
		if err != nil {
			return audit.Page{}, err
		}
		if status == http.StatusUnauthorized && auth == "" {
			if auth, err = registryAuditToken(ctx, tc, hdr, login); err != nil {
				return audit.Page{}, err
			}
			if status, body, _, err = get(ctx, tc, url, auth); err != nil {
				return audit.Page{}, err
			}
		}
		switch {
		case status == http.StatusForbidden || status == http.StatusUnauthorized:
			return audit.Page{}, fmt.Errorf("%w (%s answered %d)", ErrAuditDenied, host, status)
		case status != http.StatusOK:
			msg := truncate(string(body), 200)
			if e := firstAPIError(body); e != nil {
				msg = e.Code + ": " + e.Message
			}
			return audit.Page{}, fmt.Errorf("reading the audit log of %s: %d %s", host, status, msg)
		}
		var page audit.Page
		if err := json.Unmarshal(body, &page); err != nil {
			return audit.Page{}, fmt.Errorf("reading the audit log of %s: unreadable answer: %v", host, err)
		}
		return page, nil
	})
}

// registryAuditToken answers the registry's challenge for the audit scope.
func registryAuditToken(ctx context.Context, tc *TokenClient, hdr http.Header, login RegistryLogin) (string, error) {
	var ch *Challenge
	for _, h := range hdr.Values("WWW-Authenticate") {
		if c, err := ParseChallenge(h); err == nil && c.Scheme == "bearer" && c.Realm() != "" {
			ch = &c
		}
	}
	if ch == nil {
		return "", fmt.Errorf("the registry asked for credentials without a Bearer challenge")
	}
	var tr *TokenResponse
	var err error
	switch {
	case login.IdentityToken != "":
		tr, err = tc.RefreshGrant(ctx, ch.Realm(), ch.Service(), login.IdentityToken, auditScope)
	case login.Password != "":
		tr, err = tc.PasswordGrant(ctx, ch.Realm(), ch.Service(), login.Username, login.Password, auditScope)
	default:
		return "", fmt.Errorf("%w: not logged in to the registry (run `trustctl login HOST`)", ErrAuditDenied)
	}
	if err != nil {
		return "", fmt.Errorf("getting a token for the registry's audit log: %w", err)
	}
	return "Bearer " + tr.Access(), nil
}

// get sends a GET with the Authorization header auth (when not empty).
func get(ctx context.Context, tc *TokenClient, url, auth string) (int, []byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := tc.http().Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("cannot reach %s: %w", req.URL.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	return resp.StatusCode, body, resp.Header, err
}

// readPages reads pages until q.Limit records (DefaultLimit when 0) or the end.
// A page may be short, even empty, and still have a next (the server reads a
// bounded number of records per request): only an empty next ends the range.
// With newest it reads the whole range, full pages at a time, keeping the last
// q.Limit records: the log is listed oldest first only.
func readPages(q audit.Query, newest bool, page func(audit.Query) (audit.Page, error)) ([]audit.Record, error) {
	want := q.Limit
	if want <= 0 {
		want = audit.DefaultLimit
	}
	var out []audit.Record
	for newest || len(out) < want {
		q.Limit = min(want-len(out), audit.MaxLimit)
		if newest {
			q.Limit = audit.MaxLimit
		}
		p, err := page(q)
		if err != nil {
			return out, err
		}
		if newest {
			out = append(out, p.Records...)
			out = out[max(0, len(out)-want):]
		} else {
			out = append(out, p.Records[:min(len(p.Records), want-len(out))]...)
		}
		if p.Next == "" {
			break
		}
		if p.Next <= q.After {
			return out, fmt.Errorf("the audit log answered a next page (%s) that does not follow %s", p.Next, q.After)
		}
		q.After = p.Next
	}
	return out, nil
}

// MergeAudit merges record lists, each in time order, into one in time order
// (ties by ID), keeping the first limit (all when limit <= 0), or with newest
// the last.
func MergeAudit(limit int, newest bool, lists ...[]audit.Record) []audit.Record {
	var out []audit.Record
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.SortStableFunc(out, func(a, b audit.Record) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if limit > 0 && len(out) > limit {
		if newest {
			return out[len(out)-limit:]
		}
		out = out[:limit]
	}
	return out
}
