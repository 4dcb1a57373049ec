package tokenauth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// readier is a KeySet that can tell whether it holds keys.
type readier interface {
	ready(ctx context.Context) error
}

// Ready reports whether the verifier can verify tokens now: its key set holds
// at least one signing key. A remote set that has none yet fetches them
// (within its own bound on how often it fetches) and waits up to ctx; it
// keeps its last good set through an outage, so it stays ready then.
func (v *Verifier) Ready(ctx context.Context) error {
	if r, ok := v.keys.(readier); ok {
		return r.ready(ctx)
	}
	return nil
}

func (s staticKeySet) ready(context.Context) error {
	if len(s.idx) == 0 {
		return errors.New("the key set holds no signing key")
	}
	return nil
}

func (f *fileKeySet) ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.idx) == 0 {
		return fmt.Errorf("the JWKS file %s holds no signing key", f.path)
	}
	return nil
}

func (r *remoteKeySet) ready(ctx context.Context) error {
	r.mu.Lock()
	if len(r.idx) > 0 {
		r.mu.Unlock()
		return nil
	}
	call := r.inflight
	if call == nil {
		call = r.startFetchLocked(time.Now())
	}
	r.mu.Unlock()
	if call != nil {
		select {
		case <-call.done:
		case <-ctx.Done():
			return fmt.Errorf("JWKS %s: no keys fetched yet: %w", r.url, ctx.Err())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case len(r.idx) > 0:
		return nil
	case r.lastErr != nil:
		return fmt.Errorf("JWKS %s: %v", r.url, r.lastErr)
	default:
		return fmt.Errorf("JWKS %s holds no signing key", r.url)
	}
}
