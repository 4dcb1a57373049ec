package s3_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"sync"
	"testing"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signet-oss/signet/internal/s3test"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/s3"
	"github.com/signet-oss/signet/storage/driver/testsuite"
)

// newDriver starts a versitygw server with a fresh bucket and returns a driver
// on it; prefix puts the driver's keys under a key prefix.
func newDriver(t testing.TB, prefix string) *s3.Driver {
	t.Helper()
	endpoint, bucket, accessKey, secretKey := s3test.Start(t)
	return open(t, s3.Config{Endpoint: endpoint, Bucket: bucket, Prefix: prefix, AccessKey: accessKey, SecretKey: secretKey})
}

func open(t testing.TB, cfg s3.Config) *s3.Driver {
	t.Helper()
	d, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSuite(t *testing.T) {
	testsuite.Run(t, func(t *testing.T) driver.Driver { return newDriver(t, "") })
}

// replicas returns two Drivers on one bucket, standing in for two registry
// processes: they share nothing but the server.
func replicas(t testing.TB, partSize int64) (*s3.Driver, *s3.Driver) {
	t.Helper()
	endpoint, bucket, accessKey, secretKey := s3test.Start(t)
	cfg := s3.Config{Endpoint: endpoint, Bucket: bucket, AccessKey: accessKey, SecretKey: secretKey, PartSize: partSize}
	return open(t, cfg), open(t, cfg)
}

// pattern returns n bytes that differ at every offset modulo a large prime, so
// that a misplaced or repeated range shows.
func pattern(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i + seed) % 251)
	}
	return b
}

func readAll(t *testing.T, d driver.Driver, path string) []byte {
	t.Helper()
	r, err := d.Reader(t.Context(), path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReplicasShareWrites(t *testing.T) {
	a, b := replicas(t, 0)
	ctx := t.Context()
	v, err := a.PutContent(ctx, "/tags/latest", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	data, bv, err := b.GetContent(ctx, "/tags/latest")
	if err != nil || string(data) != "one" || bv != v {
		t.Fatalf("the other replica reads (%q, %q), %v; want (one, %q)", data, bv, err, v)
	}
	if _, err := b.PutContentIf(ctx, "/tags/latest", []byte("two"), driver.Condition{IfMatch: v}); err != nil {
		t.Fatal(err)
	}
	_, err = a.PutContentIf(ctx, "/tags/latest", []byte("three"), driver.Condition{IfMatch: v})
	if !errors.Is(err, driver.ErrPreconditionFailed) {
		t.Fatalf("a compare-and-swap with a version the other replica replaced: %v, want ErrPreconditionFailed", err)
	}
	if got, err := a.List(ctx, "/tags"); err != nil || !slices.Equal(got, []string{"/tags/latest"}) {
		t.Fatalf("List = %q, %v", got, err)
	}

	// Both replicas increment one counter; only the server's If-Match keeps it exact.
	const path, racers = "/counter", 8
	if _, err := a.PutContent(ctx, path, []byte("0")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range racers {
		d := []*s3.Driver{a, b}[i%2]
		wg.Go(func() {
			for {
				data, v, err := d.GetContent(ctx, path)
				if err != nil {
					t.Error(err)
					return
				}
				n, _ := strconv.Atoi(string(data))
				_, err = d.PutContentIf(ctx, path, []byte(strconv.Itoa(n+1)), driver.Condition{IfMatch: v})
				if err == nil {
					return
				}
				if !errors.Is(err, driver.ErrPreconditionFailed) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if data, _, err := b.GetContent(ctx, path); err != nil || string(data) != strconv.Itoa(racers) {
		t.Fatalf("counter = %q, %v; want %d", data, err, racers)
	}
}

// TestWriterResumedOnAnotherReplica writes an upload on one replica, closes it
// (a request that ended), and resumes and commits it on the other, with kept
// heads both below and above S3's 5 MiB minimum part (read back, or copied
// server-side), and with stray bytes past the offset left by a killed writer.
func TestWriterResumedOnAnotherReplica(t *testing.T) {
	const partSize = 5 << 20
	cases := []struct {
		name    string
		first   int // bytes written on the first replica
		offset  int // where the second resumes
		second  int // bytes it appends
		writeIn int // size of each Write
	}{
		{"a small head is resumed", 1000, 1000, 3000, 512},
		{"a head of several parts is resumed", 12 << 20, 12 << 20, 7 << 20, 1 << 20},
		{"stray bytes past a small offset are dropped", 3 << 20, 1 << 20, 2 << 20, 64 << 10},
		{"stray bytes past a large offset are dropped", 11 << 20, 7 << 20, 6<<20 + 3, 1 << 20},
		{"a resume that writes nothing keeps the object", 6 << 20, 6 << 20, 0, 1 << 20},
	}
	a, b := replicas(t, partSize)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := "/uploads/" + strconv.Itoa(i) + "/data"
			first, second := pattern(1, tc.first), pattern(7, tc.second)
			w, err := a.Writer(ctx, path, false, 0)
			if err != nil {
				t.Fatal(err)
			}
			writeChunks(t, w, first, tc.writeIn)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			w, err = b.Writer(ctx, path, true, int64(tc.offset))
			if err != nil {
				t.Fatal(err)
			}
			if w.Size() != int64(tc.offset) {
				t.Fatalf("Size() after resume = %d, want %d", w.Size(), tc.offset)
			}
			writeChunks(t, w, second, tc.writeIn)
			if err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			want := append(first[:tc.offset:tc.offset], second...)
			if got := readAll(t, a, path); !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes differing from the %d written", len(got), len(want))
			}
			if err := a.Move(ctx, path, "/blobs/"+strconv.Itoa(i)); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, b, "/blobs/"+strconv.Itoa(i)); !bytes.Equal(got, want) {
				t.Fatal("the moved object differs from the one written")
			}
		})
	}
}

func writeChunks(t *testing.T, w driver.FileWriter, data []byte, chunk int) {
	t.Helper()
	for len(data) > 0 {
		n := min(chunk, len(data))
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
}

// TestPrefixSeparatesDeployments puts two deployments in one bucket.
func TestPrefixSeparatesDeployments(t *testing.T) {
	endpoint, bucket, accessKey, secretKey := s3test.Start(t)
	cfg := s3.Config{Endpoint: endpoint, Bucket: bucket, AccessKey: accessKey, SecretKey: secretKey}
	cfg.Prefix = "/deploy-a/"
	a := open(t, cfg)
	cfg.Prefix = "deploy-b"
	b := open(t, cfg)
	ctx := t.Context()
	for _, d := range []*s3.Driver{a, b} {
		if _, err := d.PutContent(ctx, "/blobs/x", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Delete(ctx, "/blobs"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.GetContent(ctx, "/blobs/x"); err != nil {
		t.Fatalf("deleting in one prefix removed the other's object: %v", err)
	}
	if got, err := b.List(ctx, "/"); err != nil || !slices.Equal(got, []string{"/blobs"}) {
		t.Fatalf("List(/) = %q, %v; want [/blobs]", got, err)
	}
	out, err := s3test.Client(endpoint, accessKey, secretKey).ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 1 || *out.Contents[0].Key != "deploy-b/blobs/x" {
		t.Fatalf("bucket holds %d keys, want only deploy-b/blobs/x", len(out.Contents))
	}
}

// TestPrefixRuleRejected pins what a file-backed server does with a write that
// would put an object at a prefix of another's path: ErrInvalidPath.
func TestPrefixRuleRejected(t *testing.T) {
	d := newDriver(t, "")
	ctx := t.Context()
	if _, err := d.PutContent(ctx, "/a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/a", "/a/b/c"} {
		if _, err := d.PutContent(ctx, p, []byte("y")); !errors.Is(err, driver.ErrInvalidPath) {
			t.Errorf("PutContent(%s) error = %v, want ErrInvalidPath", p, err)
		}
	}
}
