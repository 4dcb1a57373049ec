package trustd

import (
	"context"
	"time"
)

// ReleaseReady runs, once, the TUF repository's ReleaseReady, which Serve runs
// every interval.
func (s *Server) ReleaseReady(ctx context.Context) (int, error) { return s.tuf.ReleaseReady(ctx) }

// SetClock makes s read the time from now. Call it before s serves.
func (s *Server) SetClock(now func() time.Time) { s.now = now }
