package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/filesystem"
	"github.com/signet-oss/signet/storage/driver/inmemory"
)

const testSecret = "test-secret-not-for-production"

// receiver is a webhook endpoint that checks every request's signature and
// records what it was sent; status decides its answer.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	status atomic.Int32

	mu       sync.Mutex
	requests []received // every request, whatever it was answered
}

type received struct {
	contentType string
	events      []CloudEvent
	status      int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t}
	rc.status.Store(http.StatusOK)
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := Verify([]byte(testSecret), r.Header.Get(SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("a delivery with a bad signature: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		got := received{contentType: r.Header.Get("Content-Type"), status: int(rc.status.Load())}
		switch got.contentType {
		case ContentTypeEvent:
			var ce CloudEvent
			if err := json.Unmarshal(body, &ce); err != nil {
				t.Errorf("a structured event that is not JSON: %v", err)
			}
			got.events = []CloudEvent{ce}
		case ContentTypeBatch:
			if err := json.Unmarshal(body, &got.events); err != nil {
				t.Errorf("a batch that is not a JSON array: %v", err)
			}
		default:
			t.Errorf("Content-Type %q", got.contentType)
		}
		rc.mu.Lock()
		rc.requests = append(rc.requests, got)
		rc.mu.Unlock()
		w.WriteHeader(got.status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// delivered returns the events of the requests answered 2xx, in order.
func (rc *receiver) delivered() []CloudEvent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []CloudEvent
	for _, r := range rc.requests {
		if r.status < 300 {
			out = append(out, r.events...)
		}
	}
	return out
}

func (rc *receiver) attempts() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.requests)
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// drivers are the storage drivers the queue runs on in these tests.
func drivers(t *testing.T) map[string]func() driver.Driver {
	return map[string]func() driver.Driver{
		"inmemory": func() driver.Driver { return inmemory.New() },
		"filesystem": func() driver.Driver {
			d, err := filesystem.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
	}
}

func testConfig(endpoints ...Endpoint) Config {
	c := Defaults()
	c.Source = "https://registry.test"
	c.Heartbeat, c.TakeoverAfter = 50*time.Millisecond, 500*time.Millisecond
	c.PullBatch = PullBatchConfig{Window: time.Hour, MaxEvents: 100}
	for i := range endpoints {
		endpoints[i].Secret = testSecret
		endpoints[i].Backoff, endpoints[i].MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	}
	c.Endpoints = endpoints
	return c
}

func newNotifier(t *testing.T, cfg Config, d driver.Driver) *Notifier {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg, d, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func closeNow(n *Notifier) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n.Close(ctx)
}

func push(repo, tag string) Event {
	return Event{Kind: KindPush, Time: time.Now(), Repo: repo, Tag: tag, Digest: "sha256:" + strings.Repeat("a", 64),
		MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 321, Actor: "alice", RequestID: "req-1"}
}

func queued(t *testing.T, d driver.Driver, endpoint string) []string {
	t.Helper()
	keys, err := (&queue{d: d}).keys(context.Background(), endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestDeliversSignedCloudEventsThroughTheFilters(t *testing.T) {
	for name, newDriver := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			all, other, deletes := newReceiver(t), newReceiver(t), newReceiver(t)
			d := newDriver()
			n := newNotifier(t, testConfig(
				Endpoint{Name: "all", URL: all.srv.URL},
				Endpoint{Name: "other", URL: other.srv.URL, Repositories: []string{"other/**"}},
				Endpoint{Name: "deletes", URL: deletes.srv.URL, Events: []string{KindDelete}},
			), d)
			n.Start(context.Background())
			defer closeNow(n)
			ctx := context.Background()
			sig := push("acme/app", "sha256-"+strings.Repeat("a", 64)+".sig")
			sig.Kind, sig.Subject = KindSignature, "sha256:"+strings.Repeat("b", 64)
			denied := push("acme/app", "v2")
			denied.Kind, denied.Reason = KindAdmissionDenied, "no target acme/app:v2"
			del := Event{Kind: KindDelete, Time: time.Now(), Repo: "acme/app", Tag: "v1"}
			for _, e := range []Event{push("acme/app", "v1"), sig, denied, del, {Kind: "admission-unavailable", Repo: "acme/app"}} {
				if err := n.Notify(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "four events at the catch-all endpoint", func() bool { return len(all.delivered()) == 4 })
			waitFor(t, "the delete at the delete endpoint", func() bool { return len(deletes.delivered()) == 1 })
			got := all.delivered()
			wantTypes := []string{"dev.signet.registry.push", "dev.signet.registry.signature", "dev.signet.registry.admission-denied", "dev.signet.registry.delete"}
			ids := map[string]bool{}
			for i, ce := range got {
				if ce.Type != wantTypes[i] {
					t.Errorf("event %d: type %s, want %s (in order)", i, ce.Type, wantTypes[i])
				}
				if ce.SpecVersion != "1.0" || ce.Source != "https://registry.test" || ce.DataContentType != "application/json" || ce.ID == "" || ce.Time.IsZero() {
					t.Errorf("event %d lacks CloudEvents attributes: %+v", i, ce)
				}
				if ids[ce.ID] {
					t.Errorf("id %s used twice", ce.ID)
				}
				ids[ce.ID] = true
			}
			if p := got[0]; p.Subject != "acme/app:v1" || p.Data.Repository != "acme/app" || p.Data.Digest != "sha256:"+strings.Repeat("a", 64) ||
				p.Data.Actor != "alice" || p.Data.RequestID != "req-1" || p.Data.Size != 321 || p.Data.MediaType == "" {
				t.Errorf("push event: %+v", p)
			}
			if s := got[1]; s.Data.Subject != "sha256:"+strings.Repeat("b", 64) {
				t.Errorf("signature event without the signed digest: %+v", s)
			}
			if dn := got[2]; dn.Data.Reason != "no target acme/app:v2" {
				t.Errorf("denial without its reason: %+v", dn)
			}
			if dl := deletes.delivered()[0]; dl.ID != got[3].ID || dl.Subject != "acme/app:v1" {
				t.Errorf("the delete endpoint got %+v, want the same event (id %s) as the catch-all one", dl, got[3].ID)
			}
			// A last event in other/ shows the filtered endpoint works: it must
			// then hold exactly that one.
			if err := n.Notify(ctx, push("other/x", "v1")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the other/ push", func() bool { return len(other.delivered()) >= 1 })
			if o := other.delivered(); len(o) != 1 || o[0].Subject != "other/x:v1" {
				t.Errorf("the other/** endpoint got %+v, want only other/x:v1", o)
			}
			waitFor(t, "the queue to empty", func() bool { return len(queued(t, d, "all")) == 0 && len(queued(t, d, "other")) == 0 })
		})
	}
}

func TestRetriesInOrderWithTheSameIDs(t *testing.T) {
	rc := newReceiver(t)
	rc.status.Store(http.StatusServiceUnavailable)
	d := inmemory.New()
	n := newNotifier(t, testConfig(Endpoint{Name: "e", URL: rc.srv.URL}), d)
	n.Start(context.Background())
	defer closeNow(n)
	for _, tag := range []string{"1", "2", "3"} {
		if err := n.Notify(context.Background(), push("r", tag)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three failed attempts", func() bool { return rc.attempts() >= 3 })
	rc.status.Store(http.StatusNoContent)
	waitFor(t, "three deliveries", func() bool { return len(rc.delivered()) == 3 })
	got := rc.delivered()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	firstID := rc.requests[0].events[0].ID
	for i, r := range rc.requests {
		if r.status >= 300 && r.events[0].ID != firstID {
			t.Errorf("attempt %d was sent %s while the first event (%s) was not delivered: order lost", i, r.events[0].Subject, firstID)
		}
	}
	if got[0].ID != firstID || got[0].Subject != "r:1" || got[1].Subject != "r:2" || got[2].Subject != "r:3" {
		t.Errorf("delivered %v, want r:1 (id %s), r:2, r:3", got, firstID)
	}
}

func TestPermanentRefusalAndMaxAgeGoToTheDeadLetterArea(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		maxAge time.Duration
		reason string
	}{
		{"a 400 is not retried", http.StatusBadRequest, time.Hour, "refused it with 400"},
		{"a 503 older than maxAge is given up", http.StatusServiceUnavailable, time.Millisecond, "undelivered after 1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t)
			rc.status.Store(int32(tc.status))
			d := inmemory.New()
			ep := Endpoint{Name: "e", URL: rc.srv.URL}
			cfg := testConfig(ep)
			cfg.Endpoints[0].MaxAge = tc.maxAge
			n := newNotifier(t, cfg, d)
			n.Start(context.Background())
			defer closeNow(n)
			if err := n.Notify(context.Background(), push("r", "v1")); err != nil {
				t.Fatal(err)
			}
			var dead []string
			waitFor(t, "a dead-lettered record", func() bool {
				dead, _ = n.q.dead(context.Background(), "e")
				return len(dead) == 1
			})
			if q := queued(t, d, "e"); len(q) != 0 {
				t.Errorf("still queued: %v", q)
			}
			b, _, err := d.GetContent(context.Background(), deadDir("e")+"/"+dead[0])
			if err != nil {
				t.Fatal(err)
			}
			var r record
			json.Unmarshal(b, &r)
			if !strings.Contains(r.Error, tc.reason) || len(r.Events) != 1 || r.Events[0].Subject != "r:v1" {
				t.Errorf("dead record %+v, want the event and an error saying %q", r, tc.reason)
			}
		})
	}
}

func TestPullsAreBatched(t *testing.T) {
	rc := newReceiver(t)
	d := inmemory.New()
	cfg := testConfig(Endpoint{Name: "pulls", URL: rc.srv.URL, Events: []string{KindPull}}, Endpoint{Name: "pushes", URL: rc.srv.URL, Events: []string{KindPush}})
	cfg.PullBatch = PullBatchConfig{Window: time.Hour, MaxEvents: 3}
	n := newNotifier(t, cfg, d)
	n.Start(context.Background())
	for i := range 5 {
		e := push("r", "v1")
		e.Kind, e.Tag = KindPull, string(rune('a'+i))
		if err := n.Notify(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the full batch", func() bool { return len(rc.delivered()) == 3 })
	closeNow(n) // flushes the two pulls of the open window
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.requests) != 2 {
		t.Fatalf("%d requests, want 2 batches", len(rc.requests))
	}
	for i, want := range []int{3, 2} {
		r := rc.requests[i]
		if r.contentType != ContentTypeBatch || len(r.events) != want {
			t.Errorf("request %d: %s with %d events, want a batch of %d", i, r.contentType, len(r.events), want)
		}
		for _, ce := range r.events {
			if ce.Type != "dev.signet.registry.pull" {
				t.Errorf("a %s in a pull batch", ce.Type)
			}
		}
	}
}

// TestPolicyEventsAreBatchedWithPullsForTheirSubscribers: the pull policy's
// events come with each pull, so they are batched as pulls are, each sent
// only to the endpoints that subscribe to its kind.
func TestPolicyEventsAreBatchedWithPullsForTheirSubscribers(t *testing.T) {
	rc := newReceiver(t)
	d := inmemory.New()
	cfg := testConfig(Endpoint{Name: "warnings", URL: rc.srv.URL, Events: []string{KindPolicyWarning}}, Endpoint{Name: "pulls", URL: rc.srv.URL, Events: []string{KindPull}})
	cfg.PullBatch = PullBatchConfig{Window: time.Hour, MaxEvents: 100}
	n := newNotifier(t, cfg, d)
	n.Start(context.Background())
	for _, kind := range []string{KindPull, KindPolicyWarning, KindPolicyDenied, KindPolicyWarning} {
		e := push("r", "v1")
		e.Kind, e.Reason = kind, "the pull policy for r requires more"
		if err := n.Notify(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if q := queued(t, d, "warnings"); len(q) != 0 {
		t.Fatalf("a policy warning was queued on its own (%v): it waits for the batch", q)
	}
	closeNow(n)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	types := map[string]int{}
	for _, r := range rc.requests {
		if r.contentType != ContentTypeBatch {
			t.Errorf("a %s request, want batches only", r.contentType)
		}
		for _, ce := range r.events {
			types[ce.Type]++
		}
	}
	if len(rc.requests) != 2 || types["dev.signet.registry.policy-warning"] != 2 || types["dev.signet.registry.pull"] != 1 || len(types) != 2 {
		t.Fatalf("%d requests carrying %v, want one batch of 2 warnings and one of the pull (no endpoint takes policy-denied)", len(rc.requests), types)
	}
}

func TestNoPullSubscriberQueuesNoPulls(t *testing.T) {
	d := inmemory.New()
	n := newNotifier(t, testConfig(Endpoint{Name: "e", URL: "http://127.0.0.1:1/", Events: []string{KindPush}}), d)
	e := push("r", "v1")
	e.Kind = KindPull
	n.Notify(context.Background(), e)
	n.flushPulls(context.Background())
	if q := queued(t, d, "e"); len(q) != 0 || len(n.batch) != 0 {
		t.Fatalf("a pull was queued (%v) though no endpoint subscribes to pulls", q)
	}
}

func TestQueuedRecordsSurviveAStopAndAreDeliveredByTheNextProcess(t *testing.T) {
	for name, newDriver := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			rc := newReceiver(t)
			rc.status.Store(http.StatusServiceUnavailable)
			d := newDriver()
			cfg := testConfig(Endpoint{Name: "e", URL: rc.srv.URL, Events: []string{KindPush, KindPull}})
			first := newNotifier(t, cfg, d)
			first.Start(context.Background())
			for _, tag := range []string{"1", "2"} {
				first.Notify(context.Background(), push("r", tag))
			}
			pull := push("r", "1")
			pull.Kind = KindPull
			first.Notify(context.Background(), pull)
			waitFor(t, "a failed attempt", func() bool { return rc.attempts() >= 1 })
			closeNow(first) // the endpoint is down: it stops at the first failure
			if q := queued(t, d, "e"); len(q) != 3 {
				t.Fatalf("%d records queued after the stop, want 2 pushes and 1 pull batch", len(q))
			}
			rc.status.Store(http.StatusOK)
			second := newNotifier(t, cfg, d)
			second.Start(context.Background())
			defer closeNow(second)
			waitFor(t, "three deliveries", func() bool { return len(rc.delivered()) == 3 })
			got := rc.delivered()
			if got[0].Subject != "r:1" || got[1].Subject != "r:2" || got[2].Type != "dev.signet.registry.pull" {
				t.Errorf("delivered %v after the restart, want r:1, r:2, then the pull", got)
			}
			waitFor(t, "the queue to empty", func() bool { return len(queued(t, d, "e")) == 0 })
		})
	}
}

// fsDriver is a filesystem driver and its root, where a test can age a
// heartbeat by setting its modification time.
func fsDriver(t *testing.T) (driver.Driver, string) {
	t.Helper()
	root := t.TempDir()
	d, err := filesystem.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return d, root
}

// ageHeartbeat sets replica's heartbeat's modification time to by before now,
// leaving its content (whatever time it says) alone.
func ageHeartbeat(t *testing.T, root, replica string, by time.Duration) {
	t.Helper()
	old := time.Now().Add(-by)
	if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(heartbeatPath(replica))), old, old); err != nil {
		t.Fatal(err)
	}
}

func TestRecordsOfALiveReplicaAreLeftToIt(t *testing.T) {
	ctx := context.Background()
	d, root := fsDriver(t)
	cfg := testConfig(Endpoint{Name: "e", URL: "http://127.0.0.1:1/"})
	crashed := newNotifier(t, cfg, d) // never started: it queues, then "crashes"
	crashed.beat(ctx)
	crashed.Notify(ctx, push("r", "v1"))
	other := newNotifier(t, cfg, d)
	other.beat(ctx)
	other.scan(ctx)
	if key := other.endpoints[0].next(); key != "" {
		t.Fatalf("took over %s while its owner's heartbeat is fresh", key)
	}
	// The owner's heartbeat goes stale on the storage's clock: the record is
	// taken over, by one replica only.
	ageHeartbeat(t, root, crashed.Replica(), cfg.TakeoverAfter+2*time.Second)
	third := newNotifier(t, cfg, d)
	third.beat(ctx)
	other.scan(ctx)
	third.scan(ctx)
	k1 := other.endpoints[0].next()
	k3 := third.endpoints[0].next()
	if (k1 == "") == (k3 == "") {
		t.Fatalf("after the heartbeat went stale, took over by %q and %q: want exactly one replica", k1, k3)
	}
	b, _, _ := d.GetContent(ctx, queueDir("e")+"/"+k1+k3)
	var r record
	json.Unmarshal(b, &r)
	if winner := map[bool]*Notifier{true: other, false: third}[k1 != ""]; r.Owner != winner.Replica() {
		t.Errorf("the record's owner is %q, want the replica that took it over (%s)", r.Owner, winner.Replica())
	}
}

func TestConcurrentScansClaimEachOrphanOnce(t *testing.T) {
	for name, newDriver := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d := newDriver()
			cfg := testConfig(Endpoint{Name: "e", URL: "http://127.0.0.1:1/"})
			// A process that queued and stopped: its heartbeat is gone.
			gone := newNotifier(t, cfg, d)
			const records = 40
			for i := range records {
				if err := gone.Notify(ctx, push("r", fmt.Sprint(i))); err != nil {
					t.Fatal(err)
				}
			}
			scanners := make([]*Notifier, 6)
			for i := range scanners {
				scanners[i] = newNotifier(t, cfg, d)
				scanners[i].beat(ctx)
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			for _, n := range scanners {
				wg.Go(func() {
					<-start
					n.scan(ctx)
				})
			}
			close(start)
			wg.Wait()
			claimedBy := map[string]*Notifier{}
			for _, n := range scanners {
				ep := n.endpoints[0]
				ep.mu.Lock()
				for key := range ep.pending.set {
					if prev, ok := claimedBy[key]; ok {
						t.Errorf("%s claimed by %s and %s", key, prev.Replica(), n.Replica())
					}
					claimedBy[key] = n
				}
				ep.mu.Unlock()
			}
			keys := queued(t, d, "e")
			if len(keys) != records || len(claimedBy) != records {
				t.Fatalf("%d records queued, %d claimed; want all %d claimed", len(keys), len(claimedBy), records)
			}
			for _, key := range keys {
				r, _, err := (&queue{d: d}).load(ctx, "e", key)
				if err != nil {
					t.Fatal(err)
				}
				if n := claimedBy[key]; n == nil || r.Owner != n.Replica() {
					t.Errorf("%s: stored owner %q, but claimed by %v", key, r.Owner, n)
				}
			}
		})
	}
}

func TestHeartbeatAgeIsJudgedOnTheStoragesClock(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(Endpoint{Name: "e", URL: "http://127.0.0.1:1/"})
	for _, tc := range []struct {
		name string
		// says is the time the owner's heartbeat content claims; age how old
		// the storage says the heartbeat file is.
		says     time.Time
		age      time.Duration
		takeOver bool
	}{
		{"a heartbeat written now by a clock an hour slow is alive", time.Now().Add(-time.Hour), 0, false},
		{"a heartbeat that says now but was not rewritten for long is stale", time.Now(), cfg.TakeoverAfter + 2*time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, root := fsDriver(t)
			owner := newNotifier(t, cfg, d)
			if err := owner.q.beat(ctx, tc.says); err != nil {
				t.Fatal(err)
			}
			if tc.age > 0 {
				ageHeartbeat(t, root, owner.Replica(), tc.age)
			}
			owner.Notify(ctx, push("r", "v1"))
			other := newNotifier(t, cfg, d)
			other.beat(ctx)
			other.scan(ctx)
			if took := other.endpoints[0].next() != ""; took != tc.takeOver {
				t.Fatalf("took over: %v, want %v", took, tc.takeOver)
			}
		})
	}
}

func TestScansDeleteHeartbeatsOfProcessesLongGone(t *testing.T) {
	ctx := context.Background()
	d, root := fsDriver(t)
	cfg := testConfig(Endpoint{Name: "e", URL: "http://127.0.0.1:1/"})
	longGone, recent := newNotifier(t, cfg, d), newNotifier(t, cfg, d)
	longGone.beat(ctx)
	recent.beat(ctx)
	ageHeartbeat(t, root, longGone.Replica(), staleHeartbeatFactor*cfg.TakeoverAfter+2*time.Second)
	ageHeartbeat(t, root, recent.Replica(), 2*cfg.TakeoverAfter)
	n := newNotifier(t, cfg, d)
	n.beat(ctx)
	n.scan(ctx)
	if _, err := d.Stat(ctx, heartbeatPath(longGone.Replica())); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("the heartbeat %s old is still there (%v)", staleHeartbeatFactor*cfg.TakeoverAfter, err)
	}
	for _, kept := range []string{recent.Replica(), n.Replica()} {
		if _, err := d.Stat(ctx, heartbeatPath(kept)); err != nil {
			t.Errorf("the heartbeat of %s: %v, want it kept", kept, err)
		}
	}
}
