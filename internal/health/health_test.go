package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadyzReportsEachCheckAndCachesTheRun(t *testing.T) {
	var runs atomic.Int64
	failing := errors.New("the disk is gone")
	var fail atomic.Bool
	c := New(context.Background(), Check{Name: "storage", Run: func(context.Context) error {
		runs.Add(1)
		if fail.Load() {
			return failing
		}
		return nil
	}})
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }

	probe := func() (int, Report) {
		rec := httptest.NewRecorder()
		c.Handler(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, ReadyPath, nil))
		var rep Report
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
			t.Fatalf("body %q: %v", rec.Body, err)
		}
		return rec.Code, rep
	}
	if code, rep := probe(); code != http.StatusOK || !rep.Ready() || len(rep.Checks) != 1 || !rep.Checks[0].OK {
		t.Fatalf("healthy: %d %+v", code, rep)
	}
	fail.Store(true)
	for range 10 {
		if code, _ := probe(); code != http.StatusOK {
			t.Fatalf("within the cache period the result changed: %d", code)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("11 probes within a second ran the checks %d times, want 1", n)
	}
	now = now.Add(DefaultCacheFor)
	code, rep := probe()
	if code != http.StatusServiceUnavailable || rep.Status != "not ready" || rep.Checks[0].OK || rep.Checks[0].Reason != failing.Error() {
		t.Errorf("failing: %d %+v, want 503 with the check's reason", code, rep)
	}
}

func TestACheckThatHangsFailsWithinTheTimeout(t *testing.T) {
	c := New(context.Background(), Check{Name: "storage", Run: func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(time.Hour) // ignores its context
		return nil
	}})
	c.timeout = 10 * time.Millisecond
	rep := c.Report(context.Background())
	if rep.Ready() || rep.Checks[0].Reason != "no answer within 10ms" {
		t.Errorf("hanging check: %+v, want not ready, no answer within 10ms", rep)
	}
}

func TestReadyzSaysShuttingDownOnceTheServerStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := New(ctx, Check{Name: "storage", Run: func(context.Context) error { return nil }})
	if !c.Report(context.Background()).Ready() {
		t.Fatal("not ready before stopping")
	}
	cancel()
	rec := httptest.NewRecorder()
	c.ServeReady(rec, httptest.NewRequest(http.MethodGet, ReadyPath, nil))
	var rep Report
	json.Unmarshal(rec.Body.Bytes(), &rep)
	if rec.Code != http.StatusServiceUnavailable || rep.Status != "shutting down" {
		t.Errorf("stopping: %d %+v, want 503 shutting down (even with a cached ready result)", rec.Code, rep)
	}
	rec = httptest.NewRecorder()
	c.Handler(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, AlivePath, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d, want 405", rec.Code)
	}
}
