package notify

import "container/heap"

// pending is the set of record keys an endpoint's worker owes, oldest (least)
// first. Adding, removing and finding the first key cost O(log n) or less, so
// a backlog of n records is delivered in O(n log n), not O(n²).
//
// A removed key stays in the heap until it comes first, and is dropped then:
// the set, not the heap, says what is pending.
type pending struct {
	set   map[string]struct{}
	order keyHeap
}

func newPending() pending { return pending{set: map[string]struct{}{}} }

func (p *pending) add(key string) {
	if _, ok := p.set[key]; ok {
		return
	}
	p.set[key] = struct{}{}
	heap.Push(&p.order, key)
}

func (p *pending) remove(key string) {
	delete(p.set, key)
	if len(p.order) > 0 && p.order[0] == key {
		heap.Pop(&p.order)
	}
}

func (p *pending) has(key string) bool {
	_, ok := p.set[key]
	return ok
}

func (p *pending) len() int { return len(p.set) }

// first returns the least pending key, or "" when none is.
func (p *pending) first() string {
	for len(p.order) > 0 {
		k := p.order[0]
		if _, ok := p.set[k]; ok {
			return k
		}
		heap.Pop(&p.order)
	}
	return ""
}

// keyHeap is a min-heap of keys for container/heap.
type keyHeap []string

func (h keyHeap) Len() int           { return len(h) }
func (h keyHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h keyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *keyHeap) Push(x any)        { *h = append(*h, x.(string)) }
func (h *keyHeap) Pop() any {
	old := *h
	k := old[len(old)-1]
	*h = old[:len(old)-1]
	return k
}
