package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/signet-oss/signet/storage/driver"
)

// Ping checks that the driver answers, with one Stat of an object every store
// has (the upload signing key): a cheap call for readiness probes. Not found
// still means the driver answered.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.d.Stat(ctx, uploadKeyPath()); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return fmt.Errorf("storage (%s) does not answer: %w", s.d.Name(), err)
	}
	return nil
}
