package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/signet-oss/signet/storage/driver"
)

// The notification queue on the registry's storage driver, next to the
// registry's own state (registry/storage/paths.go), so it works wherever the
// registry does and replicas sharing a store share it:
//
//	/v1/notifications
//	├── replicas/<replica>                     a process's heartbeat: JSON {"time": ...},
//	│                                          rewritten every notifications.heartbeat;
//	│                                          its modification time is what counts;
//	│                                          deleted when the process stops cleanly,
//	│                                          or by a scan once 10×takeoverAfter old
//	└── endpoints/<endpoint>/
//	    ├── queue/<key>                        one delivery still owed (a record, JSON):
//	    │                                      the owner replica, creation time, the
//	    │                                      CloudEvents; deleted once delivered
//	    └── dead/<key>                         a record given up on, with its last error
//	                                           (a record nothing could parse: its bytes,
//	                                           in raw)
//
// <key> is "<creation time, unix nanoseconds, 20 digits>-<replica>-<sequence, 10
// digits>": lexical order is creation order, so listing a queue yields it in the
// order the events happened (as far as the replicas' clocks agree), and two
// processes never write the same key. <replica> is a random name each process
// draws at start. Every object is a leaf under replicas/, queue/ or dead/, so
// no object is a prefix of another.
const queueRoot = "/v1/notifications"

func heartbeatPath(replica string) string { return queueRoot + "/replicas/" + replica }

func queueDir(endpoint string) string { return queueRoot + "/endpoints/" + endpoint + "/queue" }

func deadDir(endpoint string) string { return queueRoot + "/endpoints/" + endpoint + "/dead" }

// record is one delivery owed to one endpoint: a single event, or a batch of
// pulls.
type record struct {
	// Owner is the replica that delivers it; another takes it over (rewriting
	// Owner with a conditional write) once the owner's heartbeat is stale.
	Owner   string    `json:"owner"`
	Created time.Time `json:"created"`
	// Batch sends Events as application/cloudevents-batch+json, even when
	// there is one.
	Batch  bool         `json:"batch,omitempty"`
	Events []CloudEvent `json:"events"`
	// Error and Failed are set in the dead-letter area: why it was given up.
	Error  string    `json:"error,omitempty"`
	Failed time.Time `json:"failed,omitempty"`
	// Raw, in the dead-letter area only, holds the bytes of a queued record
	// that could not be parsed (Events is then empty).
	Raw []byte `json:"raw,omitempty"`
}

// unreadableError is a queued record that is not a record.
type unreadableError struct {
	raw []byte
	err error
}

func (e *unreadableError) Error() string { return "unreadable record: " + e.err.Error() }

// queue reads and writes the records of every endpoint for one replica.
type queue struct {
	d       driver.Driver
	replica string
	seq     atomic.Uint64
}

// newKey returns a fresh record key.
func (q *queue) newKey(now time.Time) string {
	return fmt.Sprintf("%020d-%s-%010d", now.UnixNano(), q.replica, q.seq.Add(1))
}

// put stores a new record; the record is durable when put returns.
func (q *queue) put(ctx context.Context, endpoint, key string, r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := q.d.PutContent(ctx, queueDir(endpoint)+"/"+key, b); err != nil {
		return fmt.Errorf("queueing a notification for %s: %w", endpoint, err)
	}
	return nil
}

// done removes a delivered record; one already gone (delivered by a replica
// that took it over) is not an error.
func (q *queue) done(ctx context.Context, endpoint, key string) error {
	err := q.d.Delete(ctx, queueDir(endpoint)+"/"+key)
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return fmt.Errorf("removing delivered notification %s/%s: %w", endpoint, key, err)
	}
	return nil
}

// bury moves a record to the dead-letter area with the reason it failed.
func (q *queue) bury(ctx context.Context, endpoint, key string, r *record, reason string, now time.Time) error {
	dead := *r
	dead.Error, dead.Failed = reason, now.UTC()
	return q.putDead(ctx, endpoint, key, &dead)
}

// buryRaw moves the bytes of a queued record that cannot be parsed to the
// dead-letter area, as they were, with the reason.
func (q *queue) buryRaw(ctx context.Context, endpoint, key string, raw []byte, reason string, now time.Time) error {
	return q.putDead(ctx, endpoint, key, &record{Error: reason, Failed: now.UTC(), Raw: raw})
}

// putDead writes dead at dead/<key>, then removes queue/<key>.
func (q *queue) putDead(ctx context.Context, endpoint, key string, dead *record) error {
	b, err := json.Marshal(dead)
	if err != nil {
		return err
	}
	if _, err := q.d.PutContent(ctx, deadDir(endpoint)+"/"+key, b); err != nil {
		return fmt.Errorf("dead-lettering notification %s/%s: %w", endpoint, key, err)
	}
	return q.done(ctx, endpoint, key)
}

// keys lists the endpoint's queued record keys, oldest first.
func (q *queue) keys(ctx context.Context, endpoint string) ([]string, error) {
	paths, err := q.d.List(ctx, queueDir(endpoint))
	if errors.Is(err, driver.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(paths))
	for _, p := range paths {
		keys = append(keys, path.Base(p))
	}
	return keys, nil
}

// Dead lists the keys of an endpoint's dead-lettered records, oldest first.
func (q *queue) dead(ctx context.Context, endpoint string) ([]string, error) {
	paths, err := q.d.List(ctx, deadDir(endpoint))
	if errors.Is(err, driver.ErrNotFound) {
		return nil, nil
	}
	for i, p := range paths {
		paths[i] = path.Base(p)
	}
	return paths, err
}

// load reads the record at key. ErrNotFound when it is gone; an
// *unreadableError when it is not a record.
func (q *queue) load(ctx context.Context, endpoint, key string) (*record, string, error) {
	b, version, err := q.d.GetContent(ctx, queueDir(endpoint)+"/"+key)
	if err != nil {
		return nil, "", err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, "", &unreadableError{raw: b, err: err}
	}
	return &r, version, nil
}

// claim makes this replica the owner of the record at key if its owner is
// not alive, atomically against other replicas claiming it, and returns the
// record's owner then: this replica's name when it is (now) its own; another's,
// or "" when the record is gone or another replica claimed it first. An
// *unreadableError when it is not a record.
func (q *queue) claim(ctx context.Context, endpoint, key string, alive func(replica string) bool) (string, error) {
	r, version, err := q.load(ctx, endpoint, key)
	if errors.Is(err, driver.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if r.Owner == q.replica {
		return r.Owner, nil
	}
	if alive(r.Owner) {
		return r.Owner, nil
	}
	r.Owner = q.replica
	nb, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	if _, err := q.d.PutContentIf(ctx, queueDir(endpoint)+"/"+key, nb, driver.Condition{IfMatch: version}); err != nil {
		if errors.Is(err, driver.ErrPreconditionFailed) || errors.Is(err, driver.ErrNotFound) {
			return "", nil // another replica claimed or delivered it first
		}
		return "", err
	}
	return r.Owner, nil
}

// beat writes this replica's heartbeat.
func (q *queue) beat(ctx context.Context, now time.Time) error {
	b, _ := json.Marshal(struct {
		Time time.Time `json:"time"`
	}{now.UTC()})
	_, err := q.d.PutContent(ctx, heartbeatPath(q.replica), b)
	return err
}

// heartbeats lists the replicas' heartbeats with their modification times
// (on the storage's clock).
func (q *queue) heartbeats(ctx context.Context) (map[string]time.Time, error) {
	beats := map[string]time.Time{}
	err := q.d.Walk(ctx, queueRoot+"/replicas", func(fi driver.FileInfo) error {
		if !fi.IsDir {
			beats[path.Base(fi.Path)] = fi.ModTime
		}
		return nil
	})
	if errors.Is(err, driver.ErrNotFound) {
		err = nil
	}
	return beats, err
}

// deleteBeat deletes another replica's heartbeat.
func (q *queue) deleteBeat(ctx context.Context, replica string) error {
	err := q.d.Delete(ctx, heartbeatPath(replica))
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	return err
}

// validReplica reports whether s can name a replica's heartbeat.
func validReplica(s string) bool {
	return s != "" && !strings.ContainsAny(s, "/") && driver.ValidPath(heartbeatPath(s))
}

// stop deletes this replica's heartbeat: what it leaves queued is taken over
// at once.
func (q *queue) stop(ctx context.Context) error {
	err := q.d.Delete(ctx, heartbeatPath(q.replica))
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	return err
}
