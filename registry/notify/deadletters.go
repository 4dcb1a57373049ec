package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/signet-oss/signet/storage/driver"
)

// DeadLetter is a record given up on, as an operator sees it.
type DeadLetter struct {
	Endpoint string       `json:"endpoint"`
	Key      string       `json:"key"`
	Created  time.Time    `json:"created"`
	Failed   time.Time    `json:"failed"`
	Error    string       `json:"error"`
	Events   []CloudEvent `json:"events"`
	// Raw holds the bytes of a queued record that could not be parsed (and
	// Events is empty); such a dead letter cannot be requeued.
	Raw []byte `json:"raw,omitempty"`
}

// DeadLetters lists the dead letters of endpoint, or of every endpoint when it
// is "", oldest first per endpoint. It reads the driver directly, so it works
// whether or not a registry is running.
func DeadLetters(ctx context.Context, d driver.Driver, endpoint string) ([]DeadLetter, error) {
	endpoints := []string{endpoint}
	if endpoint == "" {
		dirs, err := d.List(ctx, queueRoot+"/endpoints")
		if errors.Is(err, driver.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		endpoints = endpoints[:0]
		for _, p := range dirs {
			endpoints = append(endpoints, path.Base(p))
		}
	} else if !validName(endpoint) {
		return nil, fmt.Errorf("%q is not an endpoint name", endpoint)
	}
	q := &queue{d: d}
	var out []DeadLetter
	for _, ep := range endpoints {
		keys, err := q.dead(ctx, ep)
		if err != nil {
			return nil, err
		}
		for _, key := range keys {
			p := deadDir(ep) + "/" + key
			r, err := readRecord(ctx, d, p)
			if errors.Is(err, driver.ErrNotFound) {
				continue // requeued meanwhile
			}
			if err != nil && !errors.Is(err, errUnparsable) {
				return nil, err
			}
			if err != nil {
				// Listed, not fatal: one damaged file must not hide the others.
				raw, _, _ := d.GetContent(ctx, p)
				r = &record{Error: err.Error(), Raw: raw}
			}
			out = append(out, DeadLetter{Endpoint: ep, Key: key, Created: r.Created, Failed: r.Failed, Error: r.Error, Events: r.Events, Raw: r.Raw})
		}
	}
	return out, nil
}

// Requeue puts the dead letter key of endpoint back in the endpoint's queue
// with no owner, so a running registry (any replica) delivers it: the events
// keep their ids, and maxAge counts from now. The key keeps its place, so it is
// sent before what was queued after it.
func Requeue(ctx context.Context, d driver.Driver, endpoint, key string) error {
	if !validName(endpoint) || key == "" || path.Base(key) != key || key == "." || key == ".." {
		return fmt.Errorf("no dead letter %q of endpoint %q", key, endpoint)
	}
	r, err := readRecord(ctx, d, deadDir(endpoint)+"/"+key)
	if errors.Is(err, driver.ErrNotFound) {
		return fmt.Errorf("no dead letter %q of endpoint %q", key, endpoint)
	}
	if err != nil {
		return err
	}
	if len(r.Events) == 0 {
		return fmt.Errorf("the dead letter %q of endpoint %q holds no event (an unreadable record is kept as its raw bytes): it cannot be requeued", key, endpoint)
	}
	r.Owner, r.Created, r.Error, r.Failed = "", time.Now().UTC(), "", time.Time{}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := d.PutContent(ctx, queueDir(endpoint)+"/"+key, b); err != nil {
		return fmt.Errorf("requeueing %s/%s: %w", endpoint, key, err)
	}
	if err := d.Delete(ctx, deadDir(endpoint)+"/"+key); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return fmt.Errorf("removing the dead letter %s/%s (it is queued again): %w", endpoint, key, err)
	}
	return nil
}

// errUnparsable is a stored record that is not one.
var errUnparsable = errors.New("not a notification record")

func readRecord(ctx context.Context, d driver.Driver, p string) (*record, error) {
	b, _, err := d.GetContent(ctx, p)
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errUnparsable, p, err)
	}
	return &r, nil
}
