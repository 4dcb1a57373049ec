package tokenauth

import "sync"

// cacheShards spreads the verified-token cache over independently locked maps so
// that concurrent requests rarely contend; keys are SHA-256 digests, so their first
// byte picks a shard uniformly.
const cacheShards = 32

// tokenCache maps sha256(token) to the claims verified for it, until exp. It holds at
// most about max entries: a full shard first drops its expired entries, then
// arbitrary ones.
type tokenCache struct {
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[[32]byte]*Claims
	_  [40]byte // keep shards on separate cache lines
}

func newTokenCache(max int) *tokenCache {
	c := &tokenCache{perShard: max / cacheShards}
	if c.perShard < 1 {
		c.perShard = 1
	}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]*Claims)
	}
	return c
}

// get returns the claims cached for key, or nil.
func (c *tokenCache) get(key *[32]byte) *Claims {
	s := &c.shards[key[0]%cacheShards]
	s.mu.RLock()
	claims := s.m[*key]
	s.mu.RUnlock()
	return claims
}

// remove drops key, e.g. once its token has expired.
func (c *tokenCache) remove(key *[32]byte) {
	s := &c.shards[key[0]%cacheShards]
	s.mu.Lock()
	delete(s.m, *key)
	s.mu.Unlock()
}

// put caches claims for key; now (Unix seconds) decides which entries have expired.
func (c *tokenCache) put(key *[32]byte, claims *Claims, now int64) {
	s := &c.shards[key[0]%cacheShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*key]; !ok && len(s.m) >= c.perShard {
		for k, v := range s.m {
			if v.Expiry+leewaySeconds < now {
				delete(s.m, k)
			}
		}
		// Still full of live tokens: drop arbitrary ones (map order is random) down
		// to 7/8 so the sweep above is not repeated on every insert.
		for k := range s.m {
			if len(s.m) < c.perShard-c.perShard/8 {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[*key] = claims
}

// len returns the number of cached entries.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
