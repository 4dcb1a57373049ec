package instrumented_test

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/storage/driver/instrumented"
	"github.com/signet-oss/signet/storage/driver/testsuite"
)

// The wrapped driver still keeps the whole driver contract.
func TestSuite(t *testing.T) {
	testsuite.Run(t, func(t *testing.T) driver.Driver {
		m, err := instrumented.NewMetrics(prometheus.NewRegistry(), "test")
		if err != nil {
			t.Fatal(err)
		}
		return instrumented.Wrap(inmemory.New(), m)
	})
}

// copyingDriver is the in-memory driver declaring that its Move copies, as
// object-store drivers do.
type copyingDriver struct{ *inmemory.Driver }

func (copyingDriver) MoveCopies() bool { return true }

func TestWrapKeepsMoveCopier(t *testing.T) {
	m, err := instrumented.NewMetrics(prometheus.NewRegistry(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := instrumented.Wrap(inmemory.New(), m).(driver.MoveCopier); ok {
		t.Error("a driver without MoveCopies gained it when wrapped")
	}
	mc, ok := instrumented.Wrap(copyingDriver{inmemory.New()}, m).(driver.MoveCopier)
	if !ok || !mc.MoveCopies() {
		t.Error("a driver whose Move copies lost MoveCopies when wrapped: the store would move blobs instead of recording them")
	}
}

func TestOperationsAreTimedAndFailuresCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := instrumented.NewMetrics(reg, "test")
	if err != nil {
		t.Fatal(err)
	}
	d := instrumented.Wrap(inmemory.New(), m)
	ctx := t.Context()
	if _, err := d.PutContent(ctx, "/a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.GetContent(ctx, "/a/b"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.GetContent(ctx, "/a/missing"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("GetContent of a missing path: %v", err)
	}
	if _, err := d.PutContent(ctx, "/bad//path", []byte("x")); err == nil {
		t.Fatal("PutContent of an invalid path succeeded")
	}
	w, err := d.Writer(ctx, "/uploads/u1", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("data"))
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	want := map[string]int{instrumented.OpGetContent: 2, instrumented.OpPutContent: 2, instrumented.OpWriter: 1, instrumented.OpCommit: 1, instrumented.OpStat: 0}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, f := range families {
		if f.GetName() != "test_storage_operation_duration_seconds" {
			continue
		}
		for _, mt := range f.GetMetric() {
			got[mt.GetLabel()[0].GetValue()] = int(mt.GetHistogram().GetSampleCount())
		}
	}
	for op, n := range want {
		if got[op] != n {
			t.Errorf("%s timed %d times, want %d", op, got[op], n)
		}
	}
	// A missing path is an outcome, an invalid one a failure.
	if errs := counterValue(t, reg, "test_storage_operation_errors_total", instrumented.OpGetContent); errs != 0 {
		t.Errorf("get_content errors = %v, want 0 (not found is not a failure)", errs)
	}
	if errs := counterValue(t, reg, "test_storage_operation_errors_total", instrumented.OpPutContent); errs != 1 {
		t.Errorf("put_content errors = %v, want 1 (the invalid path)", errs)
	}
}

// counterValue returns the value of the counter name{operation=op}.
func counterValue(t *testing.T, reg *prometheus.Registry, name, op string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			if mt.GetLabel()[0].GetValue() == op {
				return mt.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{operation=%q}", name, op)
	return 0
}
