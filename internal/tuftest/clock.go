package tuftest

import (
	"sync"
	"time"
)

// Clock is a clock for the TUF clients of a test (verify.IndexConfig.Now): it
// keeps real time and the test moves it ahead, instead of sleeping past a
// refresh pause, a cache's age or a role's expiry.
type Clock struct {
	mu    sync.Mutex
	ahead time.Duration
}

// Now returns the real time, moved ahead by all the Advance calls so far.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.ahead)
}

// Advance moves the clock d ahead.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ahead += d
}
