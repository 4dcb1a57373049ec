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
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/signet-oss/signet/reference"
	"github.com/signet-oss/signet/storage/driver"
)

// Notifier queues events and runs one delivery worker per endpoint.
type Notifier struct {
	cfg       Config
	log       *slog.Logger
	q         *queue
	endpoints []*endpoint
	// batchedKinds holds the batched kinds (pulls and the pull policy's) some
	// endpoint subscribes to: any other costs nothing.
	batchedKinds map[string]bool

	batchMu    sync.Mutex
	batch      []CloudEvent
	batchRepos []string
	batchKinds []string
	batchTimer *time.Timer

	// beatMu guards beatAt, the local time (with its monotonic reading) just
	// after this process last wrote its heartbeat: with the heartbeat's
	// modification time it tells the storage's clock (see clock.go).
	beatMu sync.Mutex
	beatAt time.Time

	// drain is closed by Close: workers deliver what they hold and stop at the
	// first failure.
	drain chan struct{}
	// cancel stops the workers and the heartbeat; stopScans the scans.
	cancel    context.CancelFunc
	stopScans context.CancelFunc
	// workers counts the delivery workers, background the heartbeat and the
	// scans.
	workers, background sync.WaitGroup
	closeOnce           sync.Once
}

// endpoint is one receiver and the keys of the records this process owes it.
type endpoint struct {
	cfg    Endpoint
	secret []byte
	client *http.Client

	mu sync.Mutex
	// pending holds the keys of the records this replica owns and has not
	// delivered; only keys: a record's body is read just before it is sent, so
	// a long backlog costs memory per key, not per event.
	pending pending
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
	n := &Notifier{cfg: cfg, log: log, q: &queue{d: d, replica: hex.EncodeToString(b[:])}, drain: make(chan struct{}), batchedKinds: map[string]bool{}}
	for i, c := range cfg.Endpoints {
		c = c.withDefaults()
		secret, err := c.secret(fmt.Sprintf("notifications.endpoints[%d]", i))
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
			pending: newPending(), seen: map[string]string{}, wake: make(chan struct{}, 1),
		})
		for _, k := range c.Events {
			if batched(k) {
				n.batchedKinds[k] = true
			}
		}
	}
	return n, nil
}

// Replica is the name this process writes its records and heartbeat under.
func (n *Notifier) Replica() string { return n.q.replica }

// Start marks this process alive and starts the heartbeat, the scans that
// take over what stopped processes left queued, and the workers. Only the
// first heartbeat write happens before Start returns (bounded, and ended by
// ctx): reading a queued backlog is the scans' job, in the background, so it
// never holds the registry's start back.
//
// The scans end with ctx (or Close). The workers and the heartbeat run until
// Close: ctx's values are kept, its end is not what stops them, so that Close
// can drain after the server stopped.
func (n *Notifier) Start(ctx context.Context) {
	// A first heartbeat that fails (or is slow) is retried by the heartbeat
	// goroutine; meanwhile scans take over only the records of processes
	// without a heartbeat, which needs no clock.
	bctx, cancel := context.WithTimeout(ctx, max(n.cfg.Heartbeat, time.Second))
	n.beat(bctx)
	cancel()
	var sctx context.Context
	sctx, n.stopScans = context.WithCancel(ctx)
	wctx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancelWork
	n.background.Go(func() { n.heartbeats(wctx) })
	n.background.Go(func() { n.scans(sctx) })
	for _, e := range n.endpoints {
		n.workers.Go(func() { n.work(wctx, e) })
	}
	n.log.Info("notifications on", "endpoints", len(n.endpoints), "replica", n.q.replica, "source", n.source())
}

// Close stops the scans, queues the pulls collected so far, lets the workers
// deliver what they hold until one fails or ctx ends (the heartbeat goes on
// meanwhile), then stops them and deletes this process's heartbeat, so
// another process (or this one restarted) takes over at once what is left.
// Calls after the first do nothing.
func (n *Notifier) Close(ctx context.Context) { n.closeOnce.Do(func() { n.close(ctx) }) }

func (n *Notifier) close(ctx context.Context) {
	if n.stopScans != nil {
		n.stopScans()
	}
	// The open batch is queued even when ctx has already ended (a shutdown
	// timeout of 0): those pulls are lost otherwise.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), persistTimeout)
	n.flushPulls(fctx)
	cancel()
	close(n.drain)
	done := make(chan struct{})
	go func() { n.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	if n.cancel != nil {
		n.cancel()
	}
	n.workers.Wait()
	n.background.Wait()
	if err := n.q.stop(context.WithoutCancel(ctx)); err != nil {
		n.log.Warn("notifications: deleting the heartbeat", "err", err)
	}
}

// persistTimeout bounds the queue write of one event.
const persistTimeout = 30 * time.Second

// Queue writes that fail are tried putAttempts times in all, waiting
// putBackoff, then twice that, between them.
const (
	putAttempts = 3
	putBackoff  = 100 * time.Millisecond
)

// Notify queues e for every endpoint whose filters it passes, and returns once
// it is stored (pulls: once collected into the open batch). Kinds no endpoint
// can subscribe to are ignored. It is not cancelled by ctx's end: a client
// that hangs up after its push still gets the push notified. A queue write
// that still fails after putAttempts loses the event for that endpoint: it is
// logged at error level and returned.
func (n *Notifier) Notify(ctx context.Context, e Event) error {
	if !isKind(e.Kind) {
		return nil
	}
	if batched(e.Kind) && !n.batchedKinds[e.Kind] {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), persistTimeout)
	defer cancel()
	ce := newCloudEvent(n.source(), e)
	if batched(e.Kind) {
		return n.addPull(ctx, ce, e.Kind, e.Repo)
	}
	var errs []error
	for _, ep := range n.endpoints {
		if !ep.wants(e.Kind, e.Repo) {
			continue
		}
		now := time.Now()
		key := n.q.newKey(now)
		r := &record{Owner: n.q.replica, Created: now.UTC(), Events: []CloudEvent{ce}}
		if err := n.persist(ctx, ep.cfg.Name, key, r); err != nil {
			n.log.Error("notifications: the event is lost: it could not be queued", "endpoint", ep.cfg.Name,
				"repo", e.Repo, "kind", e.Kind, "requestId", e.RequestID, "id", ce.ID, "err", err)
			errs = append(errs, err)
			continue
		}
		ep.add(key)
	}
	if len(errs) > 0 {
		return fmt.Errorf("queueing %s of %s: %w", e.Kind, e.Repo, errs[0])
	}
	return nil
}

// persist writes a new record, trying again briefly when the write fails.
func (n *Notifier) persist(ctx context.Context, endpoint, key string, r *record) error {
	var err error
	for attempt := range putAttempts {
		if attempt > 0 {
			t := time.NewTimer(putBackoff << (attempt - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, ctx.Err())
			case <-t.C:
			}
		}
		if err = n.q.put(ctx, endpoint, key, r); err == nil {
			return nil
		}
		n.log.Warn("notifications: queueing a record failed", "endpoint", endpoint, "key", key, "attempt", attempt+1, "err", err)
	}
	return err
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
		if reference.MatchPattern(p, repo) {
			return true
		}
	}
	return false
}

// add hands the key of an owned record to the worker.
func (ep *endpoint) add(key string) {
	ep.mu.Lock()
	ep.pending.add(key)
	ep.mu.Unlock()
	select {
	case ep.wake <- struct{}{}:
	default:
	}
}

// next returns the key of the oldest owned record, or "" when there is none.
func (ep *endpoint) next() string {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.pending.first()
}

func (ep *endpoint) remove(key string) {
	ep.mu.Lock()
	ep.pending.remove(key)
	ep.mu.Unlock()
}

func (ep *endpoint) owns(key string) bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.pending.has(key)
}
