// Package auditlog keeps Signet's audit log on a storage driver: append-only
// records (package audit), written once and never changed (see layout.go).
//
// Its main invariant: a record is durable before Append returns, and is never
// changed or removed by this package afterwards. Callers append before they
// answer success, so a change the log does not hold was answered with an error.
package auditlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/storage/driver"
)

// Log is an audit log on a storage driver. Safe for concurrent use, also by
// several processes sharing the driver.
type Log struct {
	d           driver.Driver
	root        string
	source      string
	now         func() time.Time
	maxExamined int // audit.MaxExamined; less in tests
}

// New returns the log stored under root on d, whose records name source.
func New(d driver.Driver, root, source string) *Log {
	return &Log{d: d, root: strings.TrimSuffix(root, "/"), source: source, now: time.Now, maxExamined: audit.MaxExamined}
}

// maxAppendAttempts bounds the retries of an ID that was taken (64 random bits:
// a retry is all but impossible, but never an overwrite).
const maxAppendAttempts = 3

// Append writes rec durably as a new record and returns it with its ID, time and
// source set. rec.Action and rec.Actor must be set.
func (l *Log) Append(ctx context.Context, rec audit.Record) (audit.Record, error) {
	if rec.Action == "" || rec.Actor == "" {
		return rec, errors.New("audit: a record needs an action and an actor")
	}
	if rec.Time.IsZero() {
		rec.Time = l.now()
	}
	rec.Time = rec.Time.UTC()
	rec.Source = l.source
	if rec.Outcome == "" {
		rec.Outcome = audit.OutcomeSuccess
	}
	for range maxAppendAttempts {
		rec.ID = audit.NewID(rec.Time)
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

// readConcurrency bounds the records one query reads at once (each is a request
// on an object store).
const readConcurrency = 8

// Query returns the records q selects, in time order, at most q.Limit of them.
// It lists only the days of q's time range, and reads at most audit.MaxExamined
// records: when it stops there, Next is the last one it read.
func (l *Log) Query(ctx context.Context, q audit.Query) (audit.Page, error) {
	if err := q.Validate(); err != nil {
		return audit.Page{}, err
	}
	if q.Limit == 0 {
		q.Limit = audit.DefaultLimit
	}
	if q.After != "" {
		if t, _ := audit.IDTime(q.After); t.After(q.Since) {
			q.Since = t
		}
	}
	var page audit.Page
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
			t, _ := audit.IDTime(id)
			if t.Before(q.Since) || !q.Until.IsZero() && !t.Before(q.Until) {
				continue
			}
			ids = append(ids, id)
		}
		return flush()
	})
	if page.Records == nil {
		page.Records = []audit.Record{}
	}
	return page, err
}

// read reads the records ids concurrently; a record that vanished is nil.
func (l *Log) read(ctx context.Context, ids []string) ([]*audit.Record, error) {
	out := make([]*audit.Record, len(ids))
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
			var rec audit.Record
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
