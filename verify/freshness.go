package verify

import "time"

// LastSuccess returns when a refresh from trustd last succeeded (a refresh
// that found nothing changed counts), the zero time if none has. Loading
// stored metadata is not a refresh.
func (ix *Index) LastSuccess() time.Time {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.lastSuccess
}
