package tokenauth

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
)

func TestTokenCacheStaysBoundedAndDropsExpiredEntriesFirst(t *testing.T) {
	const max = cacheShards * 4
	c := newTokenCache(max)
	// keys returns n keys that all fall in shard 0.
	next := 0
	keys := func(n int) [][32]byte {
		var out [][32]byte
		for len(out) < n {
			k := sha256.Sum256([]byte(fmt.Sprint(next)))
			next++
			if k[0]%cacheShards == 0 {
				out = append(out, k)
			}
		}
		return out
	}
	live := &Claims{Expiry: 1000}
	expired := &Claims{Expiry: 10}
	for _, k := range keys(c.perShard) {
		c.put(&k, expired, 0)
	}
	// The shard is full of entries that have since expired: inserting live ones
	// sweeps those rather than evicting live tokens.
	fresh := keys(c.perShard)
	for _, k := range fresh {
		c.put(&k, live, 500)
	}
	for i, k := range fresh {
		if c.get(&k) != live {
			t.Fatalf("live entry %d was evicted while expired ones were there to drop", i)
		}
	}
	if n := c.len(); n != c.perShard {
		t.Fatalf("cache holds %d entries, want the %d live ones", n, c.perShard)
	}
	// Far more live tokens than the bound: the cache stays within it.
	for i := 0; i < 20*max; i++ {
		k := sha256.Sum256([]byte(fmt.Sprint("more", i)))
		c.put(&k, live, 500)
	}
	if n := c.len(); n > max {
		t.Fatalf("cache holds %d entries, bound %d", n, max)
	}
}

func TestTokenCacheIsSafeForConcurrentUse(t *testing.T) {
	c := newTokenCache(1024)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := sha256.Sum256([]byte(fmt.Sprint(g, i%300)))
				if c.get(&k) == nil {
					c.put(&k, &Claims{Expiry: int64(i)}, int64(i))
				} else if i%7 == 0 {
					c.remove(&k)
				}
			}
		}()
	}
	wg.Wait()
	if n := c.len(); n > 1024 {
		t.Fatalf("cache holds %d entries, bound 1024", n)
	}
}
