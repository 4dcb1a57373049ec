package driverconfig_test

import (
	"context"
	"errors"
	"testing"

	"github.com/signet-oss/signet/internal/s3test"
	"github.com/signet-oss/signet/storage/driver/driverconfig"
	"github.com/signet-oss/signet/storage/driver/s3"
)

// TestOpenHonoursItsContext checks that opening the storage a server's
// configuration selects runs the s3 driver's bucket check under the caller's
// context, so a caller that gives up (a cancelled start) stops waiting: with a
// live context the bucket is checked once and the open succeeds; with a
// cancelled one the open fails with context.Canceled and the server is not
// asked again. Credentials come from the environment, as for the servers.
func TestOpenHonoursItsContext(t *testing.T) {
	endpoint, bucket, accessKey, secretKey := s3test.Start(t)
	proxy := s3test.StartFaultProxy(t, endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	cfg := driverconfig.Config{Driver: "s3", S3: s3.Settings{Endpoint: proxy.URL, Bucket: bucket, Region: s3test.Region}}

	if _, err := cfg.Open(context.Background(), t.TempDir()); err != nil || proxy.Seen(s3test.OpBucket) != 1 {
		t.Fatalf("with a live context: %v after %d bucket checks, want one that passed", err, proxy.Seen(s3test.OpBucket))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := cfg.Open(ctx, t.TempDir()); !errors.Is(err, context.Canceled) {
		t.Fatalf("with a cancelled context: %v, want context.Canceled", err)
	}
	if n := proxy.Seen(s3test.OpBucket); n != 1 {
		t.Fatalf("with a cancelled context the bucket was checked again (%d checks)", n)
	}
}
