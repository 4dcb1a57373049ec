// Package driverconfig is the storage.* section of the registry's and trustd's
// configuration files: which storage driver holds the state, and how to open it.
package driverconfig

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/filesystem"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/storage/driver/s3"
)

// Config selects the storage driver.
type Config struct {
	// Driver is "filesystem" (under the data directory), "s3" (an
	// S3-compatible bucket, which replicas can share) or "inmemory" (lost at
	// exit) (storage.driver, default filesystem).
	Driver string `yaml:"driver"`
	// S3 configures the s3 driver (storage.s3.endpoint, .bucket, .region,
	// .prefix, .timeout); credentials come from the AWS environment variables.
	S3 s3.Settings `yaml:"s3"`
}

// Validate checks the section; data is the data directory the filesystem
// driver would use.
func (c Config) Validate(data string) error {
	switch c.Driver {
	case "filesystem":
		if data == "" {
			return errors.New("data: the filesystem driver needs a data directory")
		}
	case "s3":
		if c.S3.Bucket == "" {
			return errors.New("storage.s3.bucket: the s3 driver needs a bucket")
		}
		if c.S3.Timeout < 0 {
			return fmt.Errorf("storage.s3.timeout: %s is negative", c.S3.Timeout)
		}
	case "inmemory":
	default:
		return fmt.Errorf("storage.driver: %q is not a driver (filesystem, s3, inmemory)", c.Driver)
	}
	return nil
}

// Open opens the driver the section selects, the filesystem one under data.
func (c Config) Open(ctx context.Context, data string) (driver.Driver, error) {
	switch c.Driver {
	case "filesystem":
		dir, err := filepath.Abs(data)
		if err != nil {
			return nil, err
		}
		return filesystem.New(dir)
	case "s3":
		return s3.New(ctx, c.S3.Config())
	case "inmemory":
		return inmemory.New(), nil
	}
	return nil, fmt.Errorf("storage.driver: unknown driver %q", c.Driver)
}
