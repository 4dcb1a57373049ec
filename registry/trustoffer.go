package registry

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"github.com/signet-oss/signet/verify"
)

// TimestampHeader carries, on a manifest PUT, the timestamp.json trustd signed
// for what the pusher just published (base64, standard encoding). The gate
// hands it to verify.Index.Offer before deciding: when it verifies with the
// trusted root and is newer than the timestamp held, the index refreshes at
// once, so the push is decided on the new target without waiting out the pause
// between refreshes. Anything else changes nothing (verify/offer.go says why
// that keeps the pause's protection).
const TimestampHeader = verify.TimestampHeader

// offerTimestamp hands a manifest PUT's TimestampHeader to the index. A header
// that is not base64 of a timestamp.json is the client's mistake (400); one that
// does not verify, or is not newer, is logged and the PUT goes on as without it:
// the gate decides on what it holds.
func (s *Server) offerTimestamp(r *http.Request, repo string) error {
	h := r.Header.Get(TimestampHeader)
	if h == "" || !s.gate.enforced(repo) {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return apiError(CodeTimestampInvalid, fmt.Errorf("%s is not base64: %w", TimestampHeader, err))
	}
	refreshed, err := s.gate.index.Offer(r.Context(), raw)
	switch {
	case errors.Is(err, verify.ErrMalformedOffer):
		return apiError(CodeTimestampInvalid, fmt.Errorf("%s: %w", TimestampHeader, err))
	case refreshed:
		s.gate.logged.Store(s.gate.index.Refreshes()) // logged here, not as a miss
		s.log.Info("trust metadata refreshed", "reason", "offered timestamp", "repo", repo, "err", err)
	case err != nil:
		s.log.Warn("offered trust timestamp ignored", "repo", repo, "err", err)
	}
	return nil
}
