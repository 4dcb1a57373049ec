package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/client"
)

// auditPage is how many records a page of the audit log shows.
const auditPage = 50

// auditFilters are the audit page's form fields, as given.
var auditFilters = []string{"org", "repo", "actor", "action", "since", "until"}

// auditLog shows trustd's audit log and the registry's (denied pushes, with
// their reasons), merged in time order, filtered as the audit APIs filter. Each
// log answers for what the reader may read: trustd's for admins and
// organisation owners, the registry's for admins.
func (u *UI) auditLog(w http.ResponseWriter, r *http.Request, s *session) {
	v := r.URL.Query()
	if v.Get("since") == "" && v.Get("after") == "" {
		v.Set("since", "24h")
	}
	q, err := audit.ParseQuery(v, time.Now())
	if err != nil {
		u.errorPage(w, r, http.StatusBadRequest, "Filter not understood", strings.TrimPrefix(err.Error(), audit.ErrInvalidQuery.Error()+": "))
		return
	}
	q.Limit = auditPage
	data := map[string]any{}
	form := map[string]string{}
	for _, f := range auditFilters {
		form[f] = v.Get(f)
	}
	data["Form"] = form
	var lists [][]audit.Record
	var notes []string
	tok, err := u.trustdToken(r.Context(), s)
	if err == nil {
		td := &client.Trustd{Base: u.cfg.Trustd, Token: tok, HTTP: u.http}
		var recs []audit.Record
		recs, err = td.Audit(r.Context(), q, false)
		lists = append(lists, recs)
	}
	var ae *client.APIError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		notes = append(notes, "trustd's log is for admins and the owners of organisations: it shows you nothing.")
	case err != nil:
		u.upstreamError(w, r, err)
		return
	}
	recs, err := u.registryAudit(r.Context(), s, q)
	switch {
	case errors.Is(err, errForbidden):
		notes = append(notes, "The registry's log (denied pushes) is for admins.")
	case err != nil:
		u.upstreamError(w, r, err)
		return
	default:
		lists = append(lists, recs)
	}
	full := false
	for _, l := range lists {
		full = full || len(l) >= auditPage
	}
	merged := client.MergeAudit(auditPage, false, lists...)
	data["Records"], data["Notes"] = merged, notes
	if (full || len(merged) == auditPage) && len(merged) > 0 {
		next := url.Values{}
		for _, f := range auditFilters {
			if form[f] != "" {
				next.Set(f, form[f])
			}
		}
		next.Set("after", merged[len(merged)-1].ID)
		data["Next"] = Prefix + "audit?" + next.Encode()
	}
	u.render(w, r, http.StatusOK, "audit", data)
}

// registryAudit reads up to q.Limit records of the registry's audit log.
func (u *UI) registryAudit(ctx context.Context, s *session, q audit.Query) ([]audit.Record, error) {
	var out []audit.Record
	for len(out) < q.Limit {
		resp, err := u.registryDo(ctx, s, http.MethodGet, "/signet/v1/audit?"+q.Values().Encode(), "registry:audit:read")
		if err != nil {
			return nil, err
		}
		var page audit.Page
		err = json.NewDecoder(io.LimitReader(resp.Body, 32<<20)).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("the registry's audit log: unreadable answer: %w", err)
		}
		out = append(out, page.Records...)
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	return out[:min(len(out), q.Limit)], nil
}
