package trustd

import "context"

// ReleaseReady runs, once, the TUF repository's ReleaseReady, which Serve runs
// every interval.
func (s *Server) ReleaseReady(ctx context.Context) (int, error) { return s.tuf.ReleaseReady(ctx) }
