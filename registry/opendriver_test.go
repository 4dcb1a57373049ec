package registry

import (
	"context"
	"testing"

	"github.com/signet-oss/signet/internal/s3test"
	"github.com/signet-oss/signet/storage/driver/driverconfig"
)

// A caller that gives up (a cancelled start) stops OpenDriver.
func TestOpenDriverHonoursItsContext(t *testing.T) {
	s3test.CheckOpenHonoursContext(t, func(ctx context.Context, storage driverconfig.Config) error {
		cfg := Defaults()
		cfg.Storage = storage
		_, err := OpenDriver(ctx, cfg)
		return err
	})
}
