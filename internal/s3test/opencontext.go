package s3test

import (
	"context"
	"errors"
	"testing"

	"github.com/signet-oss/signet/storage/driver/driverconfig"
	"github.com/signet-oss/signet/storage/driver/s3"
)

// CheckOpenHonoursContext checks that open, which opens the storage a server's
// configuration selects, runs the s3 driver's bucket check under the caller's
// context: with a live context the bucket is checked once and the open
// succeeds; with a cancelled one the open fails with context.Canceled and the
// server is not asked again. Credentials come from the environment, as for
// the servers.
func CheckOpenHonoursContext(t *testing.T, open func(ctx context.Context, storage driverconfig.Config) error) {
	t.Helper()
	endpoint, bucket, accessKey, secretKey := Start(t)
	proxy := StartFaultProxy(t, endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	storage := driverconfig.Config{Driver: "s3", S3: s3.Settings{Endpoint: proxy.URL, Bucket: bucket, Region: Region}}

	if err := open(context.Background(), storage); err != nil || proxy.Seen(OpBucket) != 1 {
		t.Fatalf("with a live context: %v after %d bucket checks, want one that passed", err, proxy.Seen(OpBucket))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := open(ctx, storage); !errors.Is(err, context.Canceled) {
		t.Fatalf("with a cancelled context: %v, want context.Canceled", err)
	}
	if n := proxy.Seen(OpBucket); n != 1 {
		t.Fatalf("with a cancelled context the bucket was checked again (%d checks)", n)
	}
}
