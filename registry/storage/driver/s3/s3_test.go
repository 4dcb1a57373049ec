package s3_test

import (
	"testing"

	"github.com/signet-oss/signet/internal/s3test"
	"github.com/signet-oss/signet/registry/storage/driver"
	"github.com/signet-oss/signet/registry/storage/driver/s3"
	"github.com/signet-oss/signet/registry/storage/driver/testsuite"
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
