// Package notify delivers the registry's events to webhook endpoints as
// CloudEvents 1.0 (JSON, structured mode; pulls batched), each request signed
// with HMAC-SHA256.
//
// Its main invariant: an event is on the storage driver, in the queue of every
// endpoint that wants it, before Notify returns (the registry calls it on the
// request's goroutine), and it leaves the queue only once the endpoint answered
// 2xx, or into the dead-letter area. Delivery is therefore at least once: a
// record may be sent again after a crash between the answer and the delete, or
// when a replica takes over another's records; receivers dedupe by the
// CloudEvent id. Pulls are the exception: they are collected in memory for
// notifications.pullBatch.window and queued as one record, so a process killed
// without a chance to stop loses at most that window's pulls.
package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/signet-oss/signet/registry/storage/driver"
	"github.com/signet-oss/signet/tokenauth"
)

// Notifier queues events and runs one delivery worker per endpoint.
type Notifier struct {
	cfg       Config
	log       *slog.Logger
	q         *queue
	endpoints []*endpoint
	// pulls is true when some endpoint subscribes to pulls: otherwise a pull
	// costs nothing.
	pulls bool

	batchMu    sync.Mutex
	batch      []CloudEvent
	batchRepos []string
	batchTimer *time.Timer

	// drain is closed by Close: workers deliver what they hold and stop at the
	// first failure.
	drain  chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// endpoint is one receiver and the records this process owes it.
type endpoint struct {
	cfg    Endpoint
	secret []byte
	client *http.Client

	mu      sync.Mutex
	pending map[string]*record // key -> record this replica owns and has not delivered
	// seen remembers the owner of another replica's record, so that a scan
	// does not read it again while that owner is alive.
	seen map[string]string
	wake chan struct{}
}

// New returns a notifier over d for cfg's endpoints (cfg must be valid). It
// reads the secret files; Start starts delivering.
func New(cfg Config, d driver.Driver, log *slog.Logger) (*Notifier, error) {
	var b [4]byte
	rand.Read(b[:])
	n := &Notifier{cfg: cfg, log: log, q: &queue{d: d, replica: hex.EncodeToString(b[:])}, drain: make(chan struct{})}
	for _, c := range cfg.Endpoints {
		c = c.withDefaults()
		secret, err := c.secret()
		if err != nil {
			return nil, err
		}
		n.endpoints = append(n.endpoints, &endpoint{
			cfg: c, secret: secret,
			client: &http.Client{
				Timeout: c.Timeout,
				// A redirect would turn the POST into a GET: it is a failed attempt.
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			},
			pending: map[string]*record{}, seen: map[string]string{}, wake: make(chan struct{}, 1),
		})
		n.pulls = n.pulls || slices.Contains(c.Events, KindPull)
	}
	return n, nil
}

// Replica is the name this process writes its records and heartbeat under.
func (n *Notifier) Replica() string { return n.q.replica }

// Start marks this process alive, takes over what stopped processes left
// queued, and starts the workers. They run until Close; ctx's values are kept,
// its end is not what stops them, so that Close can drain after the server
// stopped.
func (n *Notifier) Start(ctx context.Context) {
	ctx, n.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := n.q.beat(ctx, time.Now()); err != nil {
		n.log.Error("notifications: writing the heartbeat", "err", err)
	}
	n.scan(ctx)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.heartbeats(ctx)
	}()
	for _, e := range n.endpoints {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.work(ctx, e)
		}()
	}
	n.log.Info("notifications on", "endpoints", len(n.endpoints), "replica", n.q.replica)
}

// Close queues the pulls collected so far, lets the workers deliver what
// they hold until one fails or ctx ends, then stops them and deletes this
// process's heartbeat, so another process (or this one restarted) takes over
// at once what is left.
func (n *Notifier) Close(ctx context.Context) {
	n.flushPulls(ctx)
	close(n.drain)
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	if err := n.q.stop(context.WithoutCancel(ctx)); err != nil {
		n.log.Warn("notifications: deleting the heartbeat", "err", err)
	}
}

// persistTimeout bounds the queue write of one event.
const persistTimeout = 30 * time.Second

// Notify queues e for every endpoint whose filters it passes, and returns once
// it is stored (pulls: once collected into the open batch). Kinds no endpoint
// can subscribe to are ignored. It is not cancelled by ctx's end: a client
// that hangs up after its push still gets the push notified.
func (n *Notifier) Notify(ctx context.Context, e Event) error {
	if !slices.Contains(Kinds, e.Kind) {
		return nil
	}
	if e.Kind == KindPull && !n.pulls {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), persistTimeout)
	defer cancel()
	ce := newCloudEvent(n.source(), e)
	if e.Kind == KindPull {
		return n.addPull(ctx, ce, e.Repo)
	}
	var errs []error
	for _, ep := range n.endpoints {
		if !ep.wants(e.Kind, e.Repo) {
			continue
		}
		now := time.Now()
		key := n.q.newKey(now)
		r := &record{Owner: n.q.replica, Created: now.UTC(), Events: []CloudEvent{ce}}
		if err := n.q.put(ctx, ep.cfg.Name, key, r); err != nil {
			n.log.Error("notifications: the event is not queued", "endpoint", ep.cfg.Name, "repo", e.Repo, "kind", e.Kind, "err", err)
			errs = append(errs, err)
			continue
		}
		ep.add(key, r)
	}
	if len(errs) > 0 {
		return fmt.Errorf("queueing %s of %s: %w", e.Kind, e.Repo, errs[0])
	}
	return nil
}

func (n *Notifier) source() string {
	if n.cfg.Source == "" {
		return "signet-registry"
	}
	return n.cfg.Source
}

// wants reports whether the endpoint subscribes to kind in repo.
func (ep *endpoint) wants(kind, repo string) bool {
	if !slices.Contains(ep.cfg.Events, kind) {
		return false
	}
	for _, p := range ep.cfg.Repositories {
		if tokenauth.MatchPattern(p, repo) {
			return true
		}
	}
	return false
}

// add hands an owned record to the worker.
func (ep *endpoint) add(key string, r *record) {
	ep.mu.Lock()
	ep.pending[key] = r
	ep.mu.Unlock()
	select {
	case ep.wake <- struct{}{}:
	default:
	}
}

// next returns the oldest owned record, or "" when there is none.
func (ep *endpoint) next() (string, *record) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if len(ep.pending) == 0 {
		return "", nil
	}
	var first string
	for k := range ep.pending {
		if first == "" || k < first {
			first = k
		}
	}
	return first, ep.pending[first]
}

func (ep *endpoint) remove(key string) {
	ep.mu.Lock()
	delete(ep.pending, key)
	ep.mu.Unlock()
}

func (ep *endpoint) owns(key string) bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	_, ok := ep.pending[key]
	return ok
}

// heartbeats rewrites the heartbeat and scans the queues for records to take
// over, every cfg.Heartbeat, until ctx ends or Close drains.
func (n *Notifier) heartbeats(ctx context.Context) {
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.drain:
			return
		case <-t.C:
		}
		if err := n.q.beat(ctx, time.Now()); err != nil {
			n.log.Warn("notifications: writing the heartbeat", "err", err)
		}
		n.scan(ctx)
	}
}

// scan adopts the queued records this process does not hold yet: its own
// (left by a failed delete) and those of processes whose heartbeat is older
// than TakeoverAfter or gone.
func (n *Notifier) scan(ctx context.Context) {
	beats := map[string]bool{}
	alive := func(replica string) bool {
		if a, ok := beats[replica]; ok {
			return a
		}
		t, err := n.q.lastBeat(ctx, replica)
		// An unreadable heartbeat counts as alive: taking over is the
		// riskier mistake (every replica would deliver).
		a := err != nil || time.Since(t) < n.cfg.TakeoverAfter
		beats[replica] = a
		return a
	}
	for _, ep := range n.endpoints {
		keys, err := n.q.keys(ctx, ep.cfg.Name)
		if err != nil {
			n.log.Warn("notifications: listing the queue", "endpoint", ep.cfg.Name, "err", err)
			continue
		}
		listed := make(map[string]bool, len(keys))
		for _, key := range keys {
			listed[key] = true
			if ep.owns(key) {
				continue
			}
			ep.mu.Lock()
			owner, known := ep.seen[key]
			ep.mu.Unlock()
			if known && alive(owner) {
				continue
			}
			r, owner, err := n.q.claim(ctx, ep.cfg.Name, key, alive)
			if err != nil {
				n.log.Warn("notifications: reading a queued record", "endpoint", ep.cfg.Name, "key", key, "err", err)
				continue
			}
			if r == nil {
				if owner != "" {
					ep.mu.Lock()
					ep.seen[key] = owner
					ep.mu.Unlock()
				}
				continue
			}
			n.log.Info("notifications: delivering a record left queued", "endpoint", ep.cfg.Name, "key", key)
			ep.add(key, r)
		}
		ep.mu.Lock()
		for k := range ep.seen {
			if !listed[k] {
				delete(ep.seen, k)
			}
		}
		ep.mu.Unlock()
	}
}
