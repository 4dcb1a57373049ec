package client

import (
	"fmt"
	"testing"
	"time"

	"github.com/signet-oss/signet/audit"
)

// pagedLog serves n records, oldest first, as the audit API pages them:
// at most the asked limit (and at most size) per page, with next until the end.
func pagedLog(n, size int) func(audit.Query) (audit.Page, error) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func(q audit.Query) (audit.Page, error) {
		start := 0
		if q.After != "" {
			fmt.Sscanf(q.After, "r%06d", &start)
			start++
		}
		var p audit.Page
		for i := start; i < n && len(p.Records) < min(q.Limit, size); i++ {
			p.Records = append(p.Records, audit.Record{ID: fmt.Sprintf("r%06d", i), Time: t0.Add(time.Duration(i) * time.Second)})
		}
		if last := start + len(p.Records) - 1; last < n-1 {
			p.Next = fmt.Sprintf("r%06d", last)
		}
		return p, nil
	}
}

func TestReadPagesNewest(t *testing.T) {
	recs, err := readPages(audit.Query{Limit: 3}, true, pagedLog(2500, 700))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].ID != "r002497" || recs[2].ID != "r002499" {
		t.Fatalf("newest 3 of 2500 = %v, want r002497..r002499", ids(recs))
	}
	recs, err = readPages(audit.Query{Limit: 3}, false, pagedLog(2500, 700))
	if err != nil || len(recs) != 3 || recs[0].ID != "r000000" {
		t.Fatalf("first 3 of 2500 = %v (%v), want r000000..r000002", ids(recs), err)
	}
	merged := MergeAudit(2, true, recs, []audit.Record{{ID: "x", Time: recs[0].Time.Add(time.Hour)}})
	if len(merged) != 2 || merged[0].ID != "r000002" || merged[1].ID != "x" {
		t.Fatalf("MergeAudit newest 2 = %v, want r000002, x", ids(merged))
	}
}

func ids(recs []audit.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}
