package verify

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// A publisher who just published a target holds the timestamp trustd signed for
// it. Handing that timestamp to the index (Offer) lets the registry see the
// target at once instead of after the pause between refreshes, without giving
// anyone a way around that pause: the offered timestamp must verify with the
// timestamp keys of the root the index holds and be newer than the timestamp it
// holds and than any offered before. So a forged timestamp, a replayed one and
// an older one each cost one parse and at most one signature check, and start
// nothing; a genuine newer one starts one refresh, and trustd signs a newer
// timestamp only when something was published, so the refreshes offers can
// start are bounded by trustd's publishes, not by the callers.

// TimestampHeader is the HTTP header of a manifest PUT that carries the
// timestamp.json trustd signed for what the pusher just published (base64,
// standard encoding), for the registry to Offer to its index.
const TimestampHeader = "Signet-Trust-Timestamp"

// MaxOfferedTimestamp bounds the size of an offered timestamp.json: trustd's is
// well under a kilobyte.
const MaxOfferedTimestamp = 16 << 10

// ErrMalformedOffer: the offered timestamp is not a timestamp.json at all (the
// caller sent garbage: a 400, not a reason to look further).
var ErrMalformedOffer = errors.New("malformed timestamp")

// heldTrust is what an offer is checked against: the root and timestamp
// version of the last successful update, and the newest version an offer has
// already started a refresh for.
type heldTrust struct {
	mu      sync.Mutex
	root    *metadata.Metadata[metadata.RootType]
	version int64
	offered int64
}

func (h *heldTrust) set(root *metadata.Metadata[metadata.RootType], version int64) {
	h.mu.Lock()
	h.root, h.version = root, version
	h.mu.Unlock()
}

func (h *heldTrust) get() (*metadata.Metadata[metadata.RootType], int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.root, h.version
}

// claim records that an offer of version v starts a refresh, unless the index
// holds v already or an earlier offer of v (or later) started one.
func (h *heldTrust) claim(v int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v <= h.version || v <= h.offered {
		return false
	}
	h.offered = v
	return true
}

// Offer hands the index a timestamp.json a publisher received from trustd. When
// it verifies with the held root's timestamp keys, has not expired, and is newer
// than the timestamp held and than every timestamp offered before, Offer runs a
// refresh at once (skipping the pause between refreshes, still sharing one that
// started after the call) and reports true with that refresh's error. Otherwise
// it changes nothing and starts nothing: a timestamp that does not parse fails
// with ErrMalformedOffer, one that does not verify with an *Error of kind
// ErrInvalidMetadata, and one that is not newer (replayed, older, expired, or
// before the index holds any root) reports false and nil. An offer of a version
// another offer is already refreshing for waits for that refresh to end.
func (ix *Index) Offer(ctx context.Context, raw []byte) (bool, error) {
	if len(raw) > MaxOfferedTimestamp {
		return false, fmt.Errorf("%w: %d bytes, over %d", ErrMalformedOffer, len(raw), MaxOfferedTimestamp)
	}
	ts, err := metadata.Timestamp().FromBytes(raw)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrMalformedOffer, err)
	}
	root, held := ix.held.get()
	if root == nil || ts.Signed.Version <= held {
		return false, nil
	}
	if err := root.VerifyDelegate(metadata.TIMESTAMP, ts); err != nil {
		return false, &Error{Kind: ErrInvalidMetadata, Err: fmt.Errorf("offered timestamp v%d: %w", ts.Signed.Version, err)}
	}
	if ts.Signed.IsExpired(ix.cfg.Now().UTC()) {
		return false, nil
	}
	if !ix.held.claim(ts.Signed.Version) {
		if _, held := ix.held.get(); ts.Signed.Version > held {
			ix.waitInflight(ctx) // another offer's refresh brings it
		}
		return false, nil
	}
	return true, ix.refreshAfter(ctx, true)
}

// waitInflight waits for the refresh running now, if any, to end.
func (ix *Index) waitInflight(ctx context.Context) {
	ix.refreshMu.Lock()
	ch := ix.inflight
	ix.refreshMu.Unlock()
	if ch == nil {
		return
	}
	select {
	case <-ch:
	case <-ctx.Done():
	}
}
