package tuf

import (
	"context"
	"fmt"
	"time"
)

// Health reports whether the metadata trustd serves is fresh: the current
// timestamp (read again from the store at most once a second, so a replica
// sees another's re-signing) has not expired and has not come within half of
// ResignBefore of expiring, which the re-signing loop would have prevented
// had it worked. Before the first root is published it returns
// ErrNotInitialised.
func (r *Repo) Health(ctx context.Context) error {
	s := r.fresh(ctx)
	if s == nil {
		return ErrNotInitialised
	}
	now := r.cfg.Now()
	expires := s.timestamp.Signed.Expires
	switch left := expires.Sub(now); {
	case left <= 0:
		return fmt.Errorf("the timestamp (v%d) expired at %s: clients refuse the trust metadata", s.timestamp.Signed.Version, expires.UTC().Format(time.RFC3339))
	case left < r.cfg.ResignBefore/2:
		return fmt.Errorf("the timestamp (v%d) expires at %s and was not re-signed %s before, as tuf.resignBefore asks: re-signing is failing", s.timestamp.Signed.Version, expires.UTC().Format(time.RFC3339), r.cfg.ResignBefore)
	}
	return nil
}
