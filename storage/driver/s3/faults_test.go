package s3_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/s3test"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/s3"
)

// The driver between a sick S3 server and its callers: S3 error answers from
// s3test's FaultProxy, TCP faults from a real Toxiproxy. These faults exist
// only for the s3 driver; the filesystem driver has its own (a full disk).

const faultPartSize = 5 << 20

// faultyDriver returns a driver whose endpoint is a versitygw behind both fault
// injectors, with the given inactivity timeout (0: the default).
func faultyDriver(t *testing.T, timeout time.Duration) (*s3.Driver, *s3test.Faulty) {
	t.Helper()
	f := s3test.StartFaulty(t)
	return open(t, s3.Config{
		Endpoint: f.Endpoint, Bucket: f.Bucket, AccessKey: f.AccessKey, SecretKey: f.SecretKey,
		PartSize: faultPartSize, Timeout: timeout,
	}), f
}

// faultedOps are the driver calls, each with the S3 operation a fault is put
// on, that a registry push and pull make.
var faultedOps = []struct {
	name string
	op   string
	// setup prepares what run needs, with no fault in place.
	setup func(t *testing.T, d driver.Driver)
	// run makes the call and checks what it stored or read when it succeeds.
	run func(ctx context.Context, t *testing.T, d driver.Driver) error
}{
	{"a put", s3test.OpPutObject, nil, func(ctx context.Context, t *testing.T, d driver.Driver) error {
		data := pattern(3, 300<<10)
		if _, err := d.PutContent(ctx, "/put", data); err != nil {
			return err
		}
		return sameContent(t, d, "/put", data)
	}},
	{"a writer of less than a part", s3test.OpPutObject, nil, func(ctx context.Context, t *testing.T, d driver.Driver) error {
		return writeAndCheck(ctx, t, d, "/uploads/small/data", 100<<10)
	}},
	{"a part of a writer", s3test.OpUploadPart, nil, func(ctx context.Context, t *testing.T, d driver.Driver) error {
		return writeAndCheck(ctx, t, d, "/uploads/part/data", faultPartSize+100<<10)
	}},
	{"the completion of a writer", s3test.OpCompleteMultipartUpload, nil, func(ctx context.Context, t *testing.T, d driver.Driver) error {
		return writeAndCheck(ctx, t, d, "/uploads/complete/data", faultPartSize+100<<10)
	}},
	{"a get", s3test.OpGetObject, putFixture, func(ctx context.Context, t *testing.T, d driver.Driver) error {
		data, _, err := d.GetContent(ctx, "/fixture")
		if err != nil {
			return err
		}
		if !bytes.Equal(data, fixture) {
			t.Errorf("GetContent returned %d bytes differing from the %d stored", len(data), len(fixture))
		}
		return nil
	}},
	{"a stat", s3test.OpHeadObject, putFixture, func(ctx context.Context, t *testing.T, d driver.Driver) error {
		fi, err := d.Stat(ctx, "/fixture")
		if err == nil && fi.Size != int64(len(fixture)) {
			t.Errorf("Stat size = %d, want %d", fi.Size, len(fixture))
		}
		return err
	}},
	{"a move", s3test.OpCopyObject, putFixture, func(ctx context.Context, t *testing.T, d driver.Driver) error {
		if err := d.Move(ctx, "/fixture", "/moved"); err != nil {
			return err
		}
		return sameContent(t, d, "/moved", fixture)
	}},
}

var fixture = pattern(5, 200<<10)

func putFixture(t *testing.T, d driver.Driver) {
	t.Helper()
	if _, err := d.PutContent(t.Context(), "/fixture", fixture); err != nil {
		t.Fatal(err)
	}
}

// writeAndCheck writes size bytes through a Writer: below a part, one
// PutObject at Commit; above, an UploadPart as the first part fills, another
// and a completion at Commit.
func writeAndCheck(ctx context.Context, t *testing.T, d driver.Driver, path string, size int) error {
	data := pattern(9, size)
	w, err := d.Writer(ctx, path, false, 0)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	if err := w.Commit(ctx); err != nil {
		return err
	}
	return sameContent(t, d, path, data)
}

func sameContent(t *testing.T, d driver.Driver, path string, want []byte) error {
	t.Helper()
	got, _, err := d.GetContent(t.Context(), path)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s holds %d bytes differing from the %d written", path, len(got), len(want))
	}
	return nil
}

// TestTransientFaultsAreRetried: a server that answers an operation twice with
// 503 SlowDown or 500 InternalError, having read the request's body, then
// recovers, costs the caller nothing: the SDK retries, replaying the same
// body, and the call succeeds with the right content.
func TestTransientFaultsAreRetried(t *testing.T) {
	t.Parallel()
	for _, fault := range []s3test.Fault{s3test.SlowDown, s3test.InternalError} {
		for _, tc := range faultedOps {
			t.Run(fault.Code+" on "+tc.name, func(t *testing.T) {
				t.Parallel()
				d, f := faultyDriver(t, 0)
				if tc.setup != nil {
					tc.setup(t, d)
				}
				f.HTTP.Fail(tc.op, fault, 2)
				if err := tc.run(t.Context(), t, d); err != nil {
					t.Fatalf("after two %s answers: %v", fault.Code, err)
				}
				if n := f.HTTP.Failed(tc.op); n != 2 {
					t.Fatalf("%d %s requests were refused, want 2: the fault did not hit the call", n, tc.op)
				}
			})
		}
	}
}

// TestPersistentFaultsAreUnavailable: a server that keeps answering 503
// SlowDown or 500 InternalError makes the call fail with ErrUnavailable (so
// the registry answers 503 with Retry-After, not 500), after a bounded number
// of attempts.
func TestPersistentFaultsAreUnavailable(t *testing.T) {
	t.Parallel()
	for _, fault := range []s3test.Fault{s3test.SlowDown, s3test.InternalError} {
		for _, tc := range faultedOps {
			t.Run(fault.Code+" on "+tc.name, func(t *testing.T) {
				t.Parallel()
				d, f := faultyDriver(t, 0)
				if tc.setup != nil {
					tc.setup(t, d)
				}
				f.HTTP.Fail(tc.op, fault, -1)
				err := tc.run(t.Context(), t, d)
				if !errors.Is(err, driver.ErrUnavailable) {
					t.Fatalf("with every %s answered %s: error %v, want ErrUnavailable", tc.op, fault.Code, err)
				}
				if n := f.HTTP.Seen(tc.op); n < 1 || n > 3 {
					t.Fatalf("%d %s attempts, want 1 to 3", n, tc.op)
				}
				f.HTTP.Clear()
				if tc.setup != nil {
					tc.setup(t, d)
				}
				if err := tc.run(t.Context(), t, d); err != nil {
					t.Fatalf("once the server recovered: %v", err)
				}
			})
		}
	}
}

// bounded runs fn and fails the test if it has not returned within limit: a
// call on a sick connection must end, with an error if need be.
func bounded(t *testing.T, limit time.Duration, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("%s still waiting after %s: a silent connection hangs the caller", what, limit)
		return nil
	}
}

// TestSilentConnectionTimesOut: a connection on which the server never answers
// (toxiproxy's timeout toxic, a black hole) fails each attempt after the
// driver's timeout; the call ends with ErrUnavailable instead of hanging.
func TestSilentConnectionTimesOut(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	d, f := faultyDriver(t, timeout)
	putFixture(t, d)
	f.TCP.Add(t, s3test.Toxic{Name: "blackhole", Type: "timeout", Attributes: map[string]int64{"timeout": 0}})
	// 3 attempts of 0.5 s and at most 1 s of backoff; the rest is slack for a
	// loaded machine, far below "forever".
	const limit = 15 * time.Second
	for _, call := range []struct {
		name string
		fn   func() error
	}{
		{"PutContent", func() error { _, err := d.PutContent(t.Context(), "/put", []byte("x")); return err }},
		{"GetContent", func() error { _, _, err := d.GetContent(t.Context(), "/fixture"); return err }},
		{"Stat", func() error { _, err := d.Stat(t.Context(), "/fixture"); return err }},
	} {
		err := bounded(t, limit, call.name, call.fn)
		if !errors.Is(err, driver.ErrUnavailable) {
			t.Fatalf("%s through a black hole: %v, want ErrUnavailable", call.name, err)
		}
	}
	f.TCP.Remove(t, "blackhole")
	if err := sameContent(t, d, "/fixture", fixture); err != nil {
		t.Fatalf("after the black hole closed: %v", err)
	}
}

// TestSlowTransferIsNotCutShort: the timeout is on silence, not on a whole
// request: a 256 KiB read at 64 KiB/s (about 4 s) completes under a timeout
// of 1 s, and so does a read through 300 ms of latency.
func TestSlowTransferIsNotCutShort(t *testing.T) {
	t.Parallel()
	d, f := faultyDriver(t, time.Second)
	data := pattern(11, 256<<10)
	if _, err := d.PutContent(t.Context(), "/slow", data); err != nil {
		t.Fatal(err)
	}
	f.TCP.Add(t, s3test.Toxic{Name: "slow", Type: "bandwidth", Attributes: map[string]int64{"rate": 64}})
	if err := sameContent(t, d, "/slow", data); err != nil {
		t.Fatalf("a slow but steady read: %v", err)
	}
	f.TCP.Remove(t, "slow")
	f.TCP.Add(t, s3test.Toxic{Name: "latency", Type: "latency", Attributes: map[string]int64{"latency": 300}})
	if _, err := d.PutContent(t.Context(), "/late", data); err != nil {
		t.Fatalf("a put through 300 ms of latency: %v", err)
	}
	if err := sameContent(t, d, "/late", data); err != nil {
		t.Fatalf("a read through 300 ms of latency: %v", err)
	}
}

// TestCutConnections: connections cut mid-body, every one (limit_data closes
// each after 64 KiB from the driver; reset_peer resets each at once), make a
// call fail with ErrUnavailable after its retries, never store part of an
// object, and leave what was stored intact.
func TestCutConnections(t *testing.T) {
	t.Parallel()
	for _, toxic := range []s3test.Toxic{
		{Name: "cut", Type: "limit_data", Stream: "upstream", Attributes: map[string]int64{"bytes": 64 << 10}},
		{Name: "reset", Type: "reset_peer", Stream: "upstream", Attributes: map[string]int64{"timeout": 0}},
	} {
		t.Run(toxic.Type, func(t *testing.T) {
			t.Parallel()
			d, f := faultyDriver(t, 2*time.Second)
			putFixture(t, d)
			f.TCP.Add(t, toxic)
			big := pattern(13, 256<<10)
			err := bounded(t, 30*time.Second, "PutContent", func() error {
				_, err := d.PutContent(t.Context(), "/cut", big)
				return err
			})
			if !errors.Is(err, driver.ErrUnavailable) {
				t.Fatalf("a put whose connections are cut: %v, want ErrUnavailable", err)
			}
			err = bounded(t, 30*time.Second, "Writer", func() error {
				return writeAndCheck(t.Context(), t, d, "/uploads/cut/data", faultPartSize+100<<10)
			})
			if !errors.Is(err, driver.ErrUnavailable) {
				t.Fatalf("a writer whose connections are cut: %v, want ErrUnavailable", err)
			}
			f.TCP.Remove(t, toxic.Name)
			if _, err := d.Stat(t.Context(), "/cut"); !errors.Is(err, driver.ErrNotFound) {
				t.Fatalf("Stat of the cut put: %v, want ErrNotFound: part of an object was stored", err)
			}
			if err := sameContent(t, d, "/fixture", fixture); err != nil {
				t.Fatal(err)
			}
			if err := writeAndCheck(t.Context(), t, d, "/uploads/after/data", faultPartSize+100<<10); err != nil {
				t.Fatalf("a writer once the connections heal: %v", err)
			}
		})
	}
}
