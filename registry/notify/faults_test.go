package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/testlog"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
)

// faultyDriver wraps a driver the way a remote store behaves under trouble:
// every call fails once its context has ended, and writes or reads under
// chosen paths fail or block.
type faultyDriver struct {
	driver.Driver
	// failPuts makes this many more writes under failPrefix fail.
	failPrefix string
	failPuts   atomic.Int32
	// block holds reads under blockPrefix until it is closed or the call's
	// context ends; blocked counts the reads that were held.
	blockPrefix string
	block       chan struct{}
	blocked     atomic.Int32
	// beats counts heartbeat writes.
	beats atomic.Int32
}

var errInjected = errors.New("injected storage failure")

func (f *faultyDriver) PutContent(ctx context.Context, path string, data []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if f.failPrefix != "" && strings.HasPrefix(path, f.failPrefix) && f.failPuts.Add(-1) >= 0 {
		return "", errInjected
	}
	if strings.HasPrefix(path, queueRoot+"/replicas/") {
		f.beats.Add(1)
	}
	return f.Driver.PutContent(ctx, path, data)
}

func (f *faultyDriver) GetContent(ctx context.Context, path string) ([]byte, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if f.block != nil && strings.HasPrefix(path, f.blockPrefix) {
		f.blocked.Add(1)
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
	return f.Driver.GetContent(ctx, path)
}

func newLoggedNotifier(t *testing.T, cfg Config, d driver.Driver) (*Notifier, *testlog.Buffer) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	n, err := New(cfg, d, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return n, logs
}

func TestStartLeavesTheBacklogToABackgroundScanThatCtxEnds(t *testing.T) {
	rc := newReceiver(t)
	f := &faultyDriver{Driver: inmemory.New()}
	cfg := testConfig(Endpoint{Name: "e", URL: rc.srv.URL})
	gone := newNotifier(t, cfg, f) // queued a backlog, then stopped
	const backlog = 200
	for i := range backlog {
		if err := gone.Notify(context.Background(), push("r", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	// Reading the queue hangs, as a store under trouble may.
	f.blockPrefix, f.block = queueDir("e"), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := newNotifier(t, cfg, f)
	started := make(chan struct{})
	go func() {
		n.Start(ctx)
		close(started)
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("Start is still reading the queued backlog")
	}
	waitFor(t, "the scan to reach the queue", func() bool { return f.blocked.Load() > 0 })
	// The heartbeat goes on while the scan is stuck.
	beats := f.beats.Load()
	waitFor(t, "two more heartbeats during the scan", func() bool { return f.beats.Load() >= beats+2 })

	// The caller's context ends (SIGTERM): the stuck scan gives up; then the
	// store recovers, and a new process delivers the whole backlog in order.
	cancel()
	close(f.block)
	closeNow(n)
	next := newNotifier(t, cfg, f)
	next.Start(context.Background())
	defer closeNow(next)
	waitFor(t, "the backlog delivered", func() bool { return len(rc.delivered()) >= backlog })
	for i, ce := range rc.delivered()[:backlog] {
		if want := fmt.Sprintf("r:%d", i); ce.Subject != want {
			t.Fatalf("delivery %d is %s, want %s: the backlog is out of order", i, ce.Subject, want)
		}
	}
}

func TestPendingYieldsKeysInOrder(t *testing.T) {
	p := newPending()
	for _, k := range []string{"05", "02", "09", "01", "07", "03"} {
		p.add(k)
	}
	p.add("02") // twice is once
	p.remove("07")
	p.remove("01")
	p.add("07") // back after a removal
	var got []string
	for k := p.first(); k != ""; k = p.first() {
		got = append(got, k)
		p.remove(k)
	}
	if want := []string{"02", "03", "05", "07", "09"}; !slices.Equal(got, want) || p.len() != 0 {
		t.Fatalf("keys %v (%d left), want %v", got, p.len(), want)
	}
}

func TestAFailedDeliveryNamesTheEndpointNotItsURL(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // nothing listens there any more: every attempt fails
	const path, query = "/services/T0000/B0000/PathTokenXYZ", "QueryTokenXYZ"
	d := inmemory.New()
	cfg := testConfig(Endpoint{Name: "slack", URL: down.URL + path + "?token=" + query})
	cfg.Endpoints[0].MaxAge = time.Millisecond
	n, logs := newLoggedNotifier(t, cfg, d)
	n.Start(context.Background())
	defer closeNow(n)
	if err := n.Notify(context.Background(), push("r", "v1")); err != nil {
		t.Fatal(err)
	}
	var dead []DeadLetter
	waitFor(t, "a dead letter", func() bool {
		dead, _ = DeadLetters(context.Background(), d, "slack")
		return len(dead) == 1
	})
	closeNow(n)
	for what, s := range map[string]string{"the log": logs.String(), "the dead letter": dead[0].Error} {
		if strings.Contains(s, "PathTokenXYZ") || strings.Contains(s, query) {
			t.Errorf("%s holds the endpoint's URL:\n%s", what, s)
		}
		if !strings.Contains(s, "slack") || !strings.Contains(s, "connect") {
			t.Errorf("%s does not say which endpoint failed, and how:\n%s", what, s)
		}
	}
}

func TestCloseQueuesTheOpenBatchEvenPastItsContext(t *testing.T) {
	f := &faultyDriver{Driver: inmemory.New()}
	n := newNotifier(t, testConfig(Endpoint{Name: "e", URL: "http://127.0.0.1:1/", Events: []string{KindPull}}), f)
	n.Start(context.Background())
	pull := push("r", "v1")
	pull.Kind = KindPull
	if err := n.Notify(context.Background(), pull); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a shutdown timeout of 0
	n.Close(ctx)
	if q := queued(t, f, "e"); len(q) != 1 {
		t.Fatalf("%d records queued after Close, want the batch of the pull", len(q))
	}
}

func TestAQueueWriteThatFailsIsRetriedThenLoggedAsLost(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fails  int32
		queued bool
	}{
		{"a write that fails twice is queued on the third attempt", 2, true},
		{"a write that keeps failing loses the event, loudly", putAttempts, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &faultyDriver{Driver: inmemory.New(), failPrefix: queueDir("e")}
			f.failPuts.Store(tc.fails)
			n, logs := newLoggedNotifier(t, testConfig(Endpoint{Name: "e", URL: "http://127.0.0.1:1/"}), f)
			e := push("acme/app", "v1")
			e.RequestID = "req-lost-42"
			err := n.Notify(context.Background(), e)
			if q := queued(t, f, "e"); (len(q) == 1) != tc.queued || (err == nil) != tc.queued {
				t.Fatalf("queued %v, Notify: %v; want queued %v", q, err, tc.queued)
			}
			if tc.queued {
				return
			}
			var lost string
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "level=ERROR") {
					lost = line
				}
			}
			for _, want := range []string{"repo=acme/app", "kind=push", "requestId=req-lost-42", "endpoint=e"} {
				if !strings.Contains(lost, want) {
					t.Errorf("the error line %q does not say %s", lost, want)
				}
			}
		})
	}
}

func TestAnUnreadableRecordIsDeadLetteredWithItsBytes(t *testing.T) {
	ctx := context.Background()
	garbage := []byte("{\"owner\": truncated by a disk that filled up")
	const key = "00000000000000000001-gone-0000000001"
	for _, tc := range []struct {
		name       string
		failBury   bool
		wantLogged string
	}{
		{"the bytes and the reason are kept", false, "unreadable record moved to the dead-letter area"},
		{"a dead-lettering that fails is logged, and the record stays queued", true, "dead-lettering an unreadable record failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &faultyDriver{Driver: inmemory.New()}
			if _, err := f.PutContent(ctx, queueDir("e")+"/"+key, garbage); err != nil {
				t.Fatal(err)
			}
			if tc.failBury {
				f.failPrefix = deadDir("e")
				f.failPuts.Store(1000)
			}
			n, logs := newLoggedNotifier(t, testConfig(Endpoint{Name: "e", URL: "http://127.0.0.1:1/"}), f)
			n.beat(ctx)
			n.scan(ctx)
			if !strings.Contains(logs.String(), tc.wantLogged) {
				t.Errorf("the log does not say %q:\n%s", tc.wantLogged, logs)
			}
			if tc.failBury {
				if q := queued(t, f, "e"); len(q) != 1 {
					t.Fatalf("queued %v, want the unreadable record left where it was", q)
				}
				return
			}
			if q := queued(t, f, "e"); len(q) != 0 {
				t.Fatalf("still queued: %v", q)
			}
			dead, err := DeadLetters(ctx, f, "e")
			if err != nil || len(dead) != 1 {
				t.Fatalf("dead letters %+v, %v", dead, err)
			}
			if dl := dead[0]; dl.Key != key || !bytes.Equal(dl.Raw, garbage) || !strings.Contains(dl.Error, "unreadable record") || dl.Failed.IsZero() {
				t.Errorf("dead letter %+v, want the original bytes and the reason", dl)
			}
			if b, err := json.Marshal(dead[0]); err != nil || !strings.Contains(string(b), `"raw":`) {
				t.Errorf("the dead letter as JSON lacks its raw bytes: %s, %v", b, err)
			}
			if err := Requeue(ctx, f, "e", key); err == nil || !strings.Contains(err.Error(), "cannot be requeued") {
				t.Errorf("Requeue of an unreadable record: %v, want a refusal", err)
			}
		})
	}
}
