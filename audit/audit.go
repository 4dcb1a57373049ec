// Package audit keeps Signet's audit log: who published what, changed which
// keys, delegations, grants and tokens, and what the registry's gate refused, as
// append-only records on a storage driver (see layout.go).
//
// Its main invariant: a record is durable before Append returns, and is never
// changed or removed by this package afterwards. Callers append before they
// answer success, so a change the log does not hold was answered with an error.
// Records hold no secrets: callers put names, digests and key IDs in them, never
// passwords, token values or private keys.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/signet-oss/signet/reference"
	"github.com/signet-oss/signet/storage/driver"
)

// Actions recorded. An action is "<object>.<verb>".
const (
	ActionTrustInit      = "trust.init"        // the TUF repository's first root and targets
	ActionRolePublish    = "role.publish"      // a new version of a TUF role
	ActionRoleStage      = "role.stage"        // a role version short of its threshold, kept for more signatures
	ActionTargetPublish  = "target.publish"    // a target added or moved to another digest
	ActionTargetRemove   = "target.remove"     // a target removed
	ActionKeyAdd         = "key.add"           // keys added to a role
	ActionKeyRemove      = "key.remove"        // keys removed from a role
	ActionKeyRotate      = "key.rotate"        // a role's keys replaced (some added, some removed)
	ActionDelegationAdd  = "delegation.add"    // a role delegated (an org, a repository)
	ActionDelegationEdit = "delegation.edit"   // a delegation's paths or threshold changed
	ActionDelegationDel  = "delegation.remove" // a delegation removed
	ActionOrgCreate      = "org.create"        // an organisation made
	ActionMemberSet      = "member.set"        // a member added to an org or given another role
	ActionMemberRemove   = "member.remove"     // a member removed from an org
	ActionUserCreate     = "user.create"       // a person's account made
	ActionGrantCreate    = "grant.create"      // a grant made
	ActionGrantDelete    = "grant.delete"      // a grant removed
	ActionTokenCreate    = "token.create"      // a robot credential or a refresh token issued
	ActionTokenRevoke    = "token.revoke"      // a robot credential (and its refresh tokens) revoked
	ActionAdmissionDeny  = "admission.deny"    // the registry's gate refused a manifest
)

// Outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeDenied  = "denied"
	OutcomeStaged  = "staged"
)

// Record is one entry of the log. Only ID, Time, Source, Actor, Action and
// Outcome are always set; the rest depend on the action.
type Record struct {
	// ID names the record (see layout.go); Append sets it.
	ID string `json:"id"`
	// Time is when it happened, UTC; Append sets it when zero.
	Time time.Time `json:"time"`
	// Source is the service that wrote it: "trustd" or "registry".
	Source string `json:"source"`
	// Actor is the account or robot that acted ("<org>+<name>"), "anonymous"
	// without credentials, or the service itself for its own decisions.
	Actor  string `json:"actor"`
	Action string `json:"action"`
	// Org and Repository are what the action is about, when it is about one.
	Org        string `json:"org,omitempty"`
	Repository string `json:"repository,omitempty"`
	// Role and Version name a TUF role version; Tag and Digest a target or a
	// manifest; KeyIDs the keys an action added, removed or names.
	Role    string   `json:"role,omitempty"`
	Version int64    `json:"version,omitempty"`
	Tag     string   `json:"tag,omitempty"`
	Digest  string   `json:"digest,omitempty"`
	KeyIDs  []string `json:"keyIDs,omitempty"`
	// Subject is whom a grant, robot, token or membership is for.
	Subject string `json:"subject,omitempty"`
	// Detail says what was granted or changed, in a few words
	// ("pull,push on acme/**"); never a secret.
	Detail    string `json:"detail,omitempty"`
	RequestID string `json:"requestID,omitempty"`
	Outcome   string `json:"outcome"`
	// Reason says why an action was denied.
	Reason string `json:"reason,omitempty"`
}

// Limits of a query.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	// MaxExamined bounds the records one Query reads (each a request on an
	// object store), matching or not: a narrow filter over a long history
	// answers a short or empty page with Next set, and the caller pages on.
	MaxExamined = 10 * MaxLimit
)

// Query selects records. Zero fields select everything.
type Query struct {
	// Since (inclusive) and Until (exclusive) bound the records' time.
	Since, Until time.Time
	// Orgs: records about any of these organisations.
	Orgs []string
	// Repository: an exact name, or a pattern where "*" is one name component
	// (or part of one) and "**" any number of them.
	Repository string
	Actor      string
	// Action: an exact action, or a prefix ending in ".*" ("token.*").
	Action string
	// After: only records after this ID (the Next of a previous page).
	After string
	// Limit: at most this many records (DefaultLimit when 0, at most MaxLimit).
	Limit int
}

// Page is a query's answer, in time order.
type Page struct {
	Records []Record `json:"records"`
	// Next, when not empty, is the ID to pass as After for the following page:
	// the last record returned when the page is full, or the last record
	// examined when the query stopped at MaxExamined, so a page short of
	// Limit, even an empty one, may have a next. Empty means the range is done.
	Next string `json:"next,omitempty"`
}

// Log is an audit log on a storage driver. Safe for concurrent use, also by
// several processes sharing the driver.
type Log struct {
	d           driver.Driver
	root        string
	source      string
	now         func() time.Time
	maxExamined int // MaxExamined; less in tests
}

// New returns the log stored under root on d, whose records name source.
func New(d driver.Driver, root, source string) *Log {
	return &Log{d: d, root: strings.TrimSuffix(root, "/"), source: source, now: time.Now, maxExamined: MaxExamined}
}

// maxAppendAttempts bounds the retries of an ID that was taken (64 random bits:
// a retry is all but impossible, but never an overwrite).
const maxAppendAttempts = 3

// Append writes rec durably as a new record and returns it with its ID, time and
// source set. rec.Action and rec.Actor must be set.
func (l *Log) Append(ctx context.Context, rec Record) (Record, error) {
	if rec.Action == "" || rec.Actor == "" {
		return rec, errors.New("audit: a record needs an action and an actor")
	}
	if rec.Time.IsZero() {
		rec.Time = l.now()
	}
	rec.Time = rec.Time.UTC()
	rec.Source = l.source
	if rec.Outcome == "" {
		rec.Outcome = OutcomeSuccess
	}
	for range maxAppendAttempts {
		rec.ID = newID(rec.Time)
		p, err := recordPath(l.root, rec.ID)
		if err != nil {
			return rec, err
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return rec, err
		}
		_, err = l.d.PutContentIf(ctx, p, data, driver.Condition{IfAbsent: true})
		if errors.Is(err, driver.ErrPreconditionFailed) {
			continue
		}
		if err != nil {
			return rec, fmt.Errorf("audit: writing the %s record: %w", rec.Action, err)
		}
		return rec, nil
	}
	return rec, fmt.Errorf("audit: no free record name for %s", rec.Time.Format(time.RFC3339Nano))
}

// ErrInvalidQuery is wrapped by the errors of a query that cannot be answered.
var ErrInvalidQuery = errors.New("invalid audit query")

// Validate checks q's fields.
func (q Query) Validate() error {
	if q.Limit < 0 || q.Limit > MaxLimit {
		return fmt.Errorf("%w: limit %d is not between 1 and %d", ErrInvalidQuery, q.Limit, MaxLimit)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return fmt.Errorf("%w: until (%s) is not after since (%s)", ErrInvalidQuery, q.Until.Format(time.RFC3339), q.Since.Format(time.RFC3339))
	}
	if q.After != "" {
		if _, err := idTime(q.After); err != nil {
			return fmt.Errorf("%w: after: %v", ErrInvalidQuery, err)
		}
	}
	if q.Action != "" {
		if _, err := path.Match(q.Action, ""); err != nil {
			return fmt.Errorf("%w: action %q is not an action or a pattern such as token.*", ErrInvalidQuery, q.Action)
		}
	}
	return nil
}

// Matches reports whether rec passes q's filters (all but the time range,
// After and Limit).
func (q Query) Matches(rec Record) bool {
	if len(q.Orgs) > 0 && !contains(q.Orgs, rec.Org) {
		return false
	}
	if q.Repository != "" && rec.Repository != q.Repository && !reference.MatchPattern(q.Repository, rec.Repository) {
		return false
	}
	if q.Actor != "" && rec.Actor != q.Actor {
		return false
	}
	if q.Action != "" && rec.Action != q.Action {
		if ok, _ := path.Match(q.Action, rec.Action); !ok {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// readConcurrency bounds the records one query reads at once (each is a request
// on an object store).
const readConcurrency = 8

// Query returns the records q selects, in time order, at most q.Limit of them.
// It lists only the days of q's time range, and reads at most MaxExamined
// records: when it stops there, Next is the last one it read.
func (l *Log) Query(ctx context.Context, q Query) (Page, error) {
	if err := q.Validate(); err != nil {
		return Page{}, err
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.After != "" {
		if t, _ := idTime(q.After); t.After(q.Since) {
			q.Since = t
		}
	}
	var page Page
	var ids []string // of the current day, in order, still to read
	examined := 0
	flush := func() (bool, error) {
		for len(ids) > 0 {
			n := min(len(ids), readConcurrency, l.maxExamined-examined)
			recs, err := l.read(ctx, ids[:n])
			if err != nil {
				return false, err
			}
			for _, rec := range recs {
				examined++
				if rec == nil || !q.Matches(*rec) {
					continue
				}
				if len(page.Records) == q.Limit {
					page.Next = page.Records[len(page.Records)-1].ID
					return true, nil
				}
				page.Records = append(page.Records, *rec)
			}
			last := ids[n-1]
			ids = ids[n:]
			if examined == l.maxExamined { // the rest on the next page
				page.Next = last
				return true, nil
			}
		}
		return false, nil
	}
	err := l.days(ctx, q.Since, q.Until, func(day string) (bool, error) {
		names, err := l.d.List(ctx, day)
		if errors.Is(err, driver.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("audit: listing %s: %w", day, err)
		}
		for _, p := range names { // List returns lexical, so time, order
			id := idOf(p)
			if id == "" || q.After != "" && id <= q.After {
				continue
			}
			t, _ := idTime(id)
			if t.Before(q.Since) || !q.Until.IsZero() && !t.Before(q.Until) {
				continue
			}
			ids = append(ids, id)
		}
		return flush()
	})
	if page.Records == nil {
		page.Records = []Record{}
	}
	return page, err
}

// read reads the records ids concurrently; a record that vanished is nil.
func (l *Log) read(ctx context.Context, ids []string) ([]*Record, error) {
	out := make([]*Record, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			p, _ := recordPath(l.root, id)
			data, _, err := l.d.GetContent(ctx, p)
			if errors.Is(err, driver.ErrNotFound) {
				return
			}
			if err != nil {
				errs[i] = fmt.Errorf("audit: reading %s: %w", p, err)
				return
			}
			var rec Record
			if err := json.Unmarshal(data, &rec); err != nil {
				errs[i] = fmt.Errorf("audit: %s is not a record: %w", p, err)
				return
			}
			rec.ID = id
			out[i] = &rec
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// days calls fn with every existing day directory whose day overlaps [since,
// until), in order, until fn returns true or an error. It lists only the years
// and months of the range.
func (l *Log) days(ctx context.Context, since, until time.Time, fn func(dir string) (bool, error)) error {
	overlaps := func(start, end time.Time) bool {
		return end.After(since) && (until.IsZero() || start.Before(until))
	}
	years, err := l.list(ctx, l.root, 4)
	if err != nil {
		return err
	}
	for _, y := range years {
		if !overlaps(time.Date(y.n, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(y.n+1, 1, 1, 0, 0, 0, 0, time.UTC)) {
			continue
		}
		months, err := l.list(ctx, y.path, 2)
		if err != nil {
			return err
		}
		for _, m := range months {
			start := time.Date(y.n, time.Month(m.n), 1, 0, 0, 0, 0, time.UTC)
			if !overlaps(start, start.AddDate(0, 1, 0)) {
				continue
			}
			days, err := l.list(ctx, m.path, 2)
			if err != nil {
				return err
			}
			for _, d := range days {
				start := time.Date(y.n, time.Month(m.n), d.n, 0, 0, 0, 0, time.UTC)
				if !overlaps(start, start.AddDate(0, 0, 1)) {
					continue
				}
				if done, err := fn(d.path); done || err != nil {
					return err
				}
			}
		}
	}
	return nil
}

type numberedDir struct {
	path string
	n    int
}

// list returns the children of dir named by width-digit numbers, in order; none
// when dir does not exist.
func (l *Log) list(ctx context.Context, dir string, width int) ([]numberedDir, error) {
	names, err := l.d.List(ctx, dir)
	if errors.Is(err, driver.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: listing %s: %w", dir, err)
	}
	var out []numberedDir
	for _, p := range names {
		if n, ok := component(p, width); ok {
			out = append(out, numberedDir{path: p, n: n})
		}
	}
	return out, nil
}
