// Package instrumented wraps a storage driver to time every operation and
// count its failures for Prometheus, by operation name (a fixed set: one per
// method of the driver contract, plus a writer's commit and cancel).
//
// Its main invariant: the wrapper changes nothing the store can observe. It
// forwards every call unchanged, returns the wrapped driver's readers as they
// are (an *os.File stays one, so blob responses keep their fast copy), and
// keeps the optional interfaces the store looks for (driver.MoveCopier):
// losing one would silently change how blobs are committed.
package instrumented

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-oss/signet/storage/driver"
)

// Operation names, the values of the operation label.
const (
	OpGetContent   = "get_content"
	OpPutContent   = "put_content"
	OpPutContentIf = "put_content_if"
	OpReader       = "reader"
	OpWriter       = "writer"
	OpStat         = "stat"
	OpList         = "list"
	OpMove         = "move"
	OpDelete       = "delete"
	OpWalk         = "walk"
	OpCommit       = "writer_commit"
	OpCancel       = "writer_cancel"
)

var ops = []string{OpGetContent, OpPutContent, OpPutContentIf, OpReader, OpWriter, OpStat, OpList, OpMove, OpDelete, OpWalk, OpCommit, OpCancel}

// Metrics are the driver metrics of one server, resolved per operation.
type Metrics struct {
	duration map[string]prometheus.Observer
	errors   map[string]prometheus.Counter
}

// NewMetrics registers, with reg, namespace_storage_operation_duration_seconds
// and namespace_storage_operation_errors_total, both by operation.
func NewMetrics(reg prometheus.Registerer, namespace string) (*Metrics, error) {
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "storage_operation_duration_seconds",
		Help:    "Time a storage driver operation took, by operation (walk includes its callback).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"operation"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "storage_operation_errors_total",
		Help: "Storage driver operations that failed, by operation (not found, a failed precondition and a cancelled request are outcomes, not failures).",
	}, []string{"operation"})
	for _, c := range []prometheus.Collector{dur, errs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m := &Metrics{duration: map[string]prometheus.Observer{}, errors: map[string]prometheus.Counter{}}
	for _, op := range ops {
		m.duration[op] = dur.WithLabelValues(op)
		m.errors[op] = errs.WithLabelValues(op)
	}
	return m, nil
}

func (m *Metrics) observe(op string, start time.Time, err error) {
	m.duration[op].Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, driver.ErrNotFound) && !errors.Is(err, driver.ErrPreconditionFailed) && !errors.Is(err, context.Canceled) {
		m.errors[op].Inc()
	}
}

// Wrap returns d timed by m. The result implements driver.MoveCopier exactly
// when d does.
func Wrap(d driver.Driver, m *Metrics) driver.Driver {
	w := &wrapped{d: d, m: m}
	if mc, ok := d.(driver.MoveCopier); ok {
		return &moveCopier{wrapped: w, mc: mc}
	}
	return w
}

type wrapped struct {
	d driver.Driver
	m *Metrics
}

// moveCopier is a wrapped driver that forwards driver.MoveCopier.
type moveCopier struct {
	*wrapped
	mc driver.MoveCopier
}

func (w *moveCopier) MoveCopies() bool { return w.mc.MoveCopies() }

// Unwrap returns the wrapped driver.
func (w *wrapped) Unwrap() driver.Driver { return w.d }

func (w *wrapped) Name() string { return w.d.Name() }

func (w *wrapped) GetContent(ctx context.Context, path string) ([]byte, string, error) {
	start := time.Now()
	data, v, err := w.d.GetContent(ctx, path)
	w.m.observe(OpGetContent, start, err)
	return data, v, err
}

func (w *wrapped) PutContent(ctx context.Context, path string, data []byte) (string, error) {
	start := time.Now()
	v, err := w.d.PutContent(ctx, path, data)
	w.m.observe(OpPutContent, start, err)
	return v, err
}

func (w *wrapped) PutContentIf(ctx context.Context, path string, data []byte, cond driver.Condition) (string, error) {
	start := time.Now()
	v, err := w.d.PutContentIf(ctx, path, data, cond)
	w.m.observe(OpPutContentIf, start, err)
	return v, err
}

// Reader times opening the object; the reader itself is returned unwrapped.
func (w *wrapped) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := w.d.Reader(ctx, path, offset)
	w.m.observe(OpReader, start, err)
	return rc, err
}

// Writer times opening the writer; the writer's Commit and Cancel are timed
// too, its writes are not.
func (w *wrapped) Writer(ctx context.Context, path string, resume bool, offset int64) (driver.FileWriter, error) {
	start := time.Now()
	fw, err := w.d.Writer(ctx, path, resume, offset)
	w.m.observe(OpWriter, start, err)
	if err != nil {
		return nil, err
	}
	return &fileWriter{FileWriter: fw, m: w.m}, nil
}

func (w *wrapped) Stat(ctx context.Context, path string) (driver.FileInfo, error) {
	start := time.Now()
	fi, err := w.d.Stat(ctx, path)
	w.m.observe(OpStat, start, err)
	return fi, err
}

func (w *wrapped) List(ctx context.Context, path string) ([]string, error) {
	start := time.Now()
	names, err := w.d.List(ctx, path)
	w.m.observe(OpList, start, err)
	return names, err
}

func (w *wrapped) Move(ctx context.Context, src, dst string) error {
	start := time.Now()
	err := w.d.Move(ctx, src, dst)
	w.m.observe(OpMove, start, err)
	return err
}

func (w *wrapped) Delete(ctx context.Context, path string) error {
	start := time.Now()
	err := w.d.Delete(ctx, path)
	w.m.observe(OpDelete, start, err)
	return err
}

func (w *wrapped) Walk(ctx context.Context, path string, fn func(driver.FileInfo) error) error {
	start := time.Now()
	err := w.d.Walk(ctx, path, fn)
	w.m.observe(OpWalk, start, err)
	return err
}

type fileWriter struct {
	driver.FileWriter
	m *Metrics
}

func (f *fileWriter) Commit(ctx context.Context) error {
	start := time.Now()
	err := f.FileWriter.Commit(ctx)
	f.m.observe(OpCommit, start, err)
	return err
}

func (f *fileWriter) Cancel(ctx context.Context) error {
	start := time.Now()
	err := f.FileWriter.Cancel(ctx)
	f.m.observe(OpCancel, start, err)
	return err
}
