package auditlog_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/audit/auditlog"
	"github.com/signet-oss/signet/internal/s3test"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/filesystem"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/storage/driver/s3"
)

const root = "/audit/v1"

// replicas returns two drivers on one store, standing in for two processes.
type replicas func(t *testing.T) (driver.Driver, driver.Driver)

// The log's behaviour on every driver.
func TestInMemory(t *testing.T) {
	run(t, func(t *testing.T) (driver.Driver, driver.Driver) { d := inmemory.New(); return d, d })
}

func TestFilesystem(t *testing.T) {
	run(t, func(t *testing.T) (driver.Driver, driver.Driver) {
		dir := t.TempDir()
		a, err := filesystem.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		b, err := filesystem.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	})
}

func TestS3(t *testing.T) {
	run(t, func(t *testing.T) (driver.Driver, driver.Driver) {
		endpoint, bucket, ak, sk := s3test.Start(t)
		cfg := s3.Config{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk}
		a, err := s3.New(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s3.New(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	})
}

func run(t *testing.T, open replicas) {
	t.Run("Filters", func(t *testing.T) { testFilters(t, open) })
	t.Run("PagesAndTimeRanges", func(t *testing.T) { testPages(t, open) })
	t.Run("NarrowRangeReadsOnlyItsDays", func(t *testing.T) { testNarrow(t, open) })
	t.Run("ConcurrentAppendsFromTwoReplicas", func(t *testing.T) { testConcurrent(t, open) })
	t.Run("EmptyLogAndBadQueries", func(t *testing.T) { testEmpty(t, open) })
	t.Run("NarrowFilterReadsBoundedRecordsPerQuery", func(t *testing.T) { testExamined(t, open) })
}

var base = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// seed appends records at base + i minutes.
func seed(t *testing.T, l *auditlog.Log, recs ...audit.Record) []audit.Record {
	t.Helper()
	var out []audit.Record
	for i, r := range recs {
		if r.Time.IsZero() {
			r.Time = base.Add(time.Duration(i) * time.Minute)
		}
		got, err := l.Append(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got)
	}
	return out
}

func ids(recs []audit.Record) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, r.Action+" "+r.Actor+" "+r.Repository)
	}
	return out
}

func testFilters(t *testing.T, open replicas) {
	d, _ := open(t)
	l := auditlog.New(d, root, "trustd")
	seed(t, l,
		audit.Record{Actor: "admin", Action: audit.ActionOrgCreate, Org: "acme"},
		audit.Record{Actor: "admin", Action: audit.ActionGrantCreate, Subject: "bob", Detail: "pull on acme/**"},
		audit.Record{Actor: "bob", Action: audit.ActionTargetPublish, Org: "acme", Repository: "acme/app", Tag: "v1", Digest: "sha256:aa"},
		audit.Record{Actor: "bob", Action: audit.ActionTargetPublish, Org: "acme", Repository: "acme/tools/cli", Tag: "v2"},
		audit.Record{Actor: "carol", Action: audit.ActionTokenCreate, Org: "acme", Subject: "acme+ci"},
		audit.Record{Actor: "carol", Action: audit.ActionTokenRevoke, Org: "acme", Subject: "acme+ci"},
		audit.Record{Actor: "eve", Action: audit.ActionTargetPublish, Org: "acme-corp", Repository: "acme-corp/app"},
	)
	tests := []struct {
		name string
		q    audit.Query
		want []string
	}{
		{"no filter returns everything in time order", audit.Query{}, []string{
			"org.create admin ", "grant.create admin ", "target.publish bob acme/app", "target.publish bob acme/tools/cli",
			"token.create carol ", "token.revoke carol ", "target.publish eve acme-corp/app"}},
		{"an org filter keeps that org only, not a prefix of it", audit.Query{Orgs: []string{"acme"}}, []string{
			"org.create admin ", "target.publish bob acme/app", "target.publish bob acme/tools/cli", "token.create carol ", "token.revoke carol "}},
		{"several orgs", audit.Query{Orgs: []string{"acme-corp", "nobody"}}, []string{"target.publish eve acme-corp/app"}},
		{"an exact repository", audit.Query{Repository: "acme/app"}, []string{"target.publish bob acme/app"}},
		{"a repository pattern with ** spans components", audit.Query{Repository: "acme/**"}, []string{"target.publish bob acme/app", "target.publish bob acme/tools/cli"}},
		{"a repository pattern with * is one component", audit.Query{Repository: "*/app"}, []string{"target.publish bob acme/app", "target.publish eve acme-corp/app"}},
		{"an actor", audit.Query{Actor: "carol"}, []string{"token.create carol ", "token.revoke carol "}},
		{"an exact action", audit.Query{Action: audit.ActionTokenRevoke}, []string{"token.revoke carol "}},
		{"an action pattern", audit.Query{Action: "token.*"}, []string{"token.create carol ", "token.revoke carol "}},
		{"filters combine", audit.Query{Actor: "bob", Repository: "acme/tools/**"}, []string{"target.publish bob acme/tools/cli"}},
		{"a filter nothing matches", audit.Query{Actor: "mallory"}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, err := l.Query(t.Context(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(page.Records); !slices.Equal(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
			if page.Next != "" {
				t.Errorf("Next = %q with everything returned", page.Next)
			}
		})
	}
	page, _ := l.Query(t.Context(), audit.Query{Repository: "acme/app"})
	r := page.Records[0]
	if r.Source != "trustd" || r.Outcome != audit.OutcomeSuccess || r.Tag != "v1" || r.Digest != "sha256:aa" || r.ID == "" || !r.Time.Equal(base.Add(2*time.Minute)) {
		t.Errorf("the record read back is %+v", r)
	}
}

func testPages(t *testing.T, open replicas) {
	d, _ := open(t)
	l := auditlog.New(d, root, "registry")
	// Records over three days, crossing a month and a year boundary.
	days := []time.Time{
		time.Date(2025, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC),
	}
	var recs []audit.Record
	for i, at := range days {
		recs = append(recs, audit.Record{Time: at, Actor: fmt.Sprint("a", i), Action: audit.ActionAdmissionDeny})
	}
	seed(t, l, recs...)
	var got []string
	var after string
	pages := 0
	for {
		page, err := l.Query(t.Context(), audit.Query{Limit: 1, After: after})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range page.Records {
			got = append(got, r.Actor)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if want := []string{"a0", "a1", "a2", "a3"}; !slices.Equal(got, want) || pages != 4 {
		t.Errorf("paging one by one gave %q in %d pages, want %q in 4", got, pages, want)
	}
	ranges := []struct {
		name         string
		since, until time.Time
		want         []string
	}{
		{"since is inclusive, until exclusive", days[1], days[3], []string{"a1", "a2"}},
		{"since alone", days[2], time.Time{}, []string{"a2", "a3"}},
		{"until alone", time.Time{}, days[1], []string{"a0"}},
		{"a range between records", days[2].Add(time.Hour), days[3], []string{}},
	}
	for _, tc := range ranges {
		t.Run(tc.name, func(t *testing.T) {
			page, err := l.Query(t.Context(), audit.Query{Since: tc.since, Until: tc.until})
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, r := range page.Records {
				got = append(got, r.Actor)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// counting records the paths a driver was asked to list and read.
type counting struct {
	driver.Driver
	mu     sync.Mutex
	listed []string
	read   []string
	puts   int
}

func (c *counting) List(ctx context.Context, p string) ([]string, error) {
	c.mu.Lock()
	c.listed = append(c.listed, p)
	c.mu.Unlock()
	return c.Driver.List(ctx, p)
}

func (c *counting) GetContent(ctx context.Context, p string) ([]byte, string, error) {
	c.mu.Lock()
	c.read = append(c.read, p)
	c.mu.Unlock()
	return c.Driver.GetContent(ctx, p)
}

func (c *counting) PutContent(ctx context.Context, p string, data []byte) (string, error) {
	c.mu.Lock()
	c.puts++
	c.mu.Unlock()
	return c.Driver.PutContent(ctx, p, data)
}

func testNarrow(t *testing.T, open replicas) {
	d, _ := open(t)
	c := &counting{Driver: d}
	l := auditlog.New(c, root, "trustd")
	var recs []audit.Record
	for day := range 20 {
		for h := range 3 {
			recs = append(recs, audit.Record{Time: base.AddDate(0, 0, day).Add(time.Duration(h) * time.Hour), Actor: "x", Action: audit.ActionRolePublish, Version: int64(day)})
		}
	}
	seed(t, l, recs...)
	if c.puts != 0 {
		t.Errorf("Append called the overwriting PutContent %d times; records are put-if-absent", c.puts)
	}
	c.listed, c.read = nil, nil
	since := base.AddDate(0, 0, 7).Add(90 * time.Minute)
	page, err := l.Query(t.Context(), audit.Query{Since: since, Until: since.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 1 || page.Records[0].Version != 7 {
		t.Fatalf("got %+v, want the one record of day 7 at 11:00", page.Records)
	}
	day7 := "/audit/v1/2026/03/11"
	for _, p := range c.listed {
		if strings.Count(p, "/") == 5 && p != day7 {
			t.Errorf("the query listed the day %s outside its range", p)
		}
	}
	if len(c.read) != 1 {
		t.Errorf("the query read %d records (%q), want only the one in range", len(c.read), c.read)
	}
}

func testExamined(t *testing.T, open replicas) {
	d, _ := open(t)
	c := &counting{Driver: d}
	l := auditlog.New(c, root, "trustd")
	auditlog.SetMaxExamined(l, 10)
	var recs []audit.Record
	for i := range 26 { // over two days
		recs = append(recs, audit.Record{Time: base.Add(time.Duration(i) * time.Hour), Actor: "x", Action: audit.ActionRolePublish})
	}
	recs[25].Actor = "needle"
	seed(t, l, recs...)

	var pages []int
	var after string
	for {
		c.read = nil
		page, err := l.Query(t.Context(), audit.Query{Actor: "needle", After: after})
		if err != nil {
			t.Fatal(err)
		}
		if len(c.read) > 10 {
			t.Errorf("page %d read %d records, more than the 10 a query may", len(pages)+1, len(c.read))
		}
		pages = append(pages, len(page.Records))
		if len(pages) > 5 || page.Next == "" {
			break
		}
		after = page.Next
	}
	if !slices.Equal(pages, []int{0, 0, 1}) {
		t.Errorf("paging for the last record gave pages of %v records, want [0 0 1]: empty pages with a next, then the match", pages)
	}

	// A page that fills before the limit on reads still ends at its last record.
	page, err := l.Query(t.Context(), audit.Query{Actor: "x", Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 3 || page.Next != page.Records[2].ID {
		t.Errorf("a full page: %d records, next %q", len(page.Records), page.Next)
	}
}

func testConcurrent(t *testing.T, open replicas) {
	a, b := open(t)
	logs := []*auditlog.Log{auditlog.New(a, root, "registry"), auditlog.New(b, root, "registry")}
	const writers, each = 8, 6
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC) // every record at the same instant
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				_, err := logs[w%2].Append(context.Background(), audit.Record{Time: at, Actor: fmt.Sprintf("w%d", w), Action: audit.ActionAdmissionDeny, Detail: fmt.Sprint(i)})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	page, err := logs[0].Query(t.Context(), audit.Query{Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range page.Records {
		seen[r.Actor+"/"+r.Detail] = true
	}
	if len(page.Records) != writers*each || len(seen) != writers*each {
		t.Errorf("got %d records (%d distinct), want %d: concurrent appends lost or overwrote records", len(page.Records), len(seen), writers*each)
	}
}

func testEmpty(t *testing.T, open replicas) {
	d, _ := open(t)
	l := auditlog.New(d, root, "trustd")
	page, err := l.Query(t.Context(), audit.Query{})
	if err != nil || page.Records == nil || len(page.Records) != 0 {
		t.Errorf("an empty log gave %+v, %v; want no records and no error", page, err)
	}
	bad := []audit.Query{
		{Limit: audit.MaxLimit + 1},
		{Limit: -1},
		{Since: base, Until: base},
		{After: "yesterday"},
		{Action: "[token"},
	}
	for _, q := range bad {
		if _, err := l.Query(t.Context(), q); !errors.Is(err, audit.ErrInvalidQuery) {
			t.Errorf("query %+v: got %v, want ErrInvalidQuery", q, err)
		}
	}
	if _, err := l.Append(t.Context(), audit.Record{Action: audit.ActionOrgCreate}); err == nil {
		t.Error("a record without an actor was appended")
	}
}

func TestParseQueryWindow(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	id := "20260520T000000.000000000Z-0123456789abcdef"
	tests := []struct {
		name   string
		params url.Values
		since  time.Time
	}{
		{"no since reads the default window before now", url.Values{}, now.Add(-audit.DefaultWindow)},
		{"no since reads the default window before until", url.Values{"until": {"2026-01-01T00:00:00Z"}}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(-audit.DefaultWindow)},
		{"an until after now does not move the window", url.Values{"until": {"2027-01-01T00:00:00Z"}}, now.Add(-audit.DefaultWindow)},
		{"since is kept", url.Values{"since": {"2020-01-01T00:00:00Z"}}, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"a cursor carries its own position", url.Values{"after": {id}}, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := audit.ParseQuery(tc.params, now)
			if err != nil {
				t.Fatal(err)
			}
			if !q.Since.Equal(tc.since) {
				t.Errorf("since %s, want %s", q.Since, tc.since)
			}
		})
	}
}
