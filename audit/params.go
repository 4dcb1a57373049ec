package audit

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The query's URL parameters, shared by trustd's GET /api/v1/audit, the
// registry's GET /signet/v1/audit and their client:
//
//	since, until   RFC 3339, or a duration back from now ("24h"); without
//	               since (and after), the DefaultWindow before until (or now)
//	org            an organisation; repeated or comma-separated for several
//	repo           a repository name or pattern ("acme/**")
//	actor, action  an account; an action or "<object>.*"
//	limit          1 to MaxLimit (default DefaultLimit)
//	after          the "next" of the previous page

// maxOrgs bounds the org filters of one query.
const maxOrgs = 64

// DefaultWindow is how far back a query over HTTP reads when it names neither
// since nor after: a request without bounds reads the last 30 days, not the
// whole history. Pass since to read further back.
const DefaultWindow = 30 * 24 * time.Hour

// ParseQuery reads a query from URL parameters; errors wrap ErrInvalidQuery.
func ParseQuery(v url.Values, now time.Time) (Query, error) {
	var q Query
	var err error
	if q.Since, err = ParseTime(v.Get("since"), now); err != nil {
		return q, fmt.Errorf("%w: since: %v", ErrInvalidQuery, err)
	}
	if q.Until, err = ParseTime(v.Get("until"), now); err != nil {
		return q, fmt.Errorf("%w: until: %v", ErrInvalidQuery, err)
	}
	for _, o := range v["org"] {
		for o := range strings.SplitSeq(o, ",") {
			if o = strings.TrimSpace(o); o != "" {
				q.Orgs = append(q.Orgs, o)
			}
		}
	}
	if len(q.Orgs) > maxOrgs {
		return q, fmt.Errorf("%w: at most %d org filters", ErrInvalidQuery, maxOrgs)
	}
	q.Repository, q.Actor, q.Action, q.After = v.Get("repo"), v.Get("actor"), v.Get("action"), v.Get("after")
	if l := v.Get("limit"); l != "" {
		if q.Limit, err = strconv.Atoi(l); err != nil || q.Limit < 1 {
			return q, fmt.Errorf("%w: limit %q is not a number from 1 to %d", ErrInvalidQuery, l, MaxLimit)
		}
	}
	if q.Since.IsZero() && q.After == "" {
		end := now
		if !q.Until.IsZero() && q.Until.Before(now) {
			end = q.Until
		}
		q.Since = end.Add(-DefaultWindow)
	}
	return q, q.Validate()
}

// Values is q as URL parameters, for ParseQuery at the other end.
func (q Query) Values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	for _, o := range q.Orgs {
		v.Add("org", o)
	}
	set("repo", q.Repository)
	set("actor", q.Actor)
	set("action", q.Action)
	set("after", q.After)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// ParseTime reads a time bound: "" (none), RFC 3339, or a duration back from
// now ("24h", "30m").
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q is a negative duration", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-01-02T15:04:05Z) nor a duration (24h)", s)
	}
	return t, nil
}
