package notify

import (
	"cmp"
	"context"
	"time"
)

// addPull adds a pull (or a pull policy's event, of kind) to the open batch,
// and queues the batch when it is full; the first event of a batch starts the
// window after which it is queued anyway.
func (n *Notifier) addPull(ctx context.Context, ce CloudEvent, kind, repo string) error {
	n.batchMu.Lock()
	n.batch = append(n.batch, ce)
	n.batchRepos = append(n.batchRepos, repo)
	n.batchKinds = append(n.batchKinds, kind)
	full := len(n.batch) >= n.cfg.PullBatch.MaxEvents
	if len(n.batch) == 1 && !full {
		n.batchTimer = time.AfterFunc(n.cfg.PullBatch.Window, func() {
			ctx, cancel := context.WithTimeout(context.Background(), persistTimeout)
			defer cancel()
			n.flushPulls(ctx)
		})
	}
	n.batchMu.Unlock()
	if full {
		n.flushPulls(ctx)
	}
	return nil
}

// flushPulls queues the open batch: one record per endpoint that subscribes
// to the kind of at least one of its events in that event's repository.
func (n *Notifier) flushPulls(ctx context.Context) {
	n.batchMu.Lock()
	events, repos, kinds := n.batch, n.batchRepos, n.batchKinds
	n.batch, n.batchRepos, n.batchKinds = nil, nil, nil
	if n.batchTimer != nil {
		n.batchTimer.Stop()
		n.batchTimer = nil
	}
	n.batchMu.Unlock()
	if len(events) == 0 {
		return
	}
	for _, ep := range n.endpoints {
		var mine []CloudEvent
		var first string // the first pull's repository, for the log
		for i, ce := range events {
			if ep.wants(kinds[i], repos[i]) {
				mine = append(mine, ce)
				first = cmp.Or(first, repos[i])
			}
		}
		if len(mine) == 0 {
			continue
		}
		now := time.Now()
		key := n.q.newKey(now)
		r := &record{Owner: n.q.replica, Created: now.UTC(), Batch: true, Events: mine}
		if err := n.persist(ctx, ep.cfg.Name, key, r); err != nil {
			n.log.Error("notifications: a batch of pulls is lost: it could not be queued", "endpoint", ep.cfg.Name,
				"kind", KindPull, "pulls", len(mine), "repo", first, "requestId", mine[0].Data.RequestID, "err", err)
			continue
		}
		ep.add(key)
	}
}
