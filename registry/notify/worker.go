package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/signet-oss/signet/storage/driver"
)

// work delivers the endpoint's records oldest first, one at a time: a record
// that fails holds the ones after it back, so the endpoint sees this process's
// events in order. Each record is read just before it is sent.
func (n *Notifier) work(ctx context.Context, ep *endpoint) {
	readFailures := 0
	for {
		key := ep.next()
		if key == "" {
			select {
			case <-ctx.Done():
				return
			case <-n.drain:
				if ep.next() == "" {
					return
				}
			case <-ep.wake:
			}
			continue
		}
		r, _, err := n.q.load(ctx, ep.cfg.Name, key)
		if ctx.Err() != nil {
			return
		}
		var bad *unreadableError
		switch {
		case errors.Is(err, driver.ErrNotFound):
			// Delivered by a replica that took it over, or requeued
			// elsewhere: nothing is owed.
			ep.remove(key)
			continue
		case errors.As(err, &bad):
			n.buryUnreadable(ctx, ep, key, bad)
			continue
		case err != nil:
			wait := backoff(readFailures, ep.cfg.Backoff, ep.cfg.MaxBackoff, rand.Float64())
			readFailures++
			n.log.Warn("notifications: reading a queued record", "endpoint", ep.cfg.Name, "key", key, "err", err, "retryIn", wait)
			if !n.pause(ctx, wait) {
				return
			}
			continue
		case r.Owner != n.q.replica:
			// Another replica took it over (this one looked dead to it): it
			// delivers it.
			n.log.Info("notifications: a record was taken over by another replica", "endpoint", ep.cfg.Name, "key", key, "owner", r.Owner)
			ep.remove(key)
			continue
		}
		readFailures = 0
		if !n.deliver(ctx, ep, key, r) {
			return
		}
	}
}

// pause waits d; false when ctx ended or Close drains meanwhile.
func (n *Notifier) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-n.drain:
		return false
	case <-t.C:
		return true
	}
}

// outcome classifies an endpoint's answer.
type outcome int

const (
	delivered outcome = iota
	retry
	// permanent: a 4xx other than 408 and 429; the request will never be
	// accepted as it is, so it goes to the dead-letter area at once.
	permanent
)

func classify(status int) outcome {
	switch {
	case status >= 200 && status < 300:
		return delivered
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return retry
	case status >= 400 && status < 500:
		return permanent
	}
	return retry
}

// deliver sends one record until the endpoint takes it, refuses it for good,
// or it is older than MaxAge. It returns false when the worker must stop: ctx
// ended, or an attempt failed while Close drains.
func (n *Notifier) deliver(ctx context.Context, ep *endpoint, key string, r *record) bool {
	name := ep.cfg.Name
	for attempt := 0; ; attempt++ {
		status, retryAfter, err := n.post(ctx, ep, r)
		if ctx.Err() != nil {
			return false
		}
		var why string
		switch {
		case err != nil:
			why = err.Error()
		case classify(status) == delivered:
			if err := n.q.done(ctx, name, key); err != nil {
				n.log.Warn("notifications: delivered, but the record stays queued and will be sent again", "endpoint", name, "key", key, "err", err)
			}
			ep.remove(key)
			return true
		case classify(status) == permanent:
			n.giveUp(ctx, ep, key, r, fmt.Sprintf("the endpoint refused it with %d", status))
			return true
		default:
			why = fmt.Sprintf("status %d", status)
		}
		if time.Since(r.Created) > ep.cfg.MaxAge {
			n.giveUp(ctx, ep, key, r, fmt.Sprintf("undelivered after %s; last failure: %s", ep.cfg.MaxAge, why))
			return true
		}
		wait := backoff(attempt, ep.cfg.Backoff, ep.cfg.MaxBackoff, rand.Float64())
		// An endpoint that says when to come back is believed, up to MaxBackoff.
		wait = max(wait, min(retryAfter, ep.cfg.MaxBackoff))
		n.log.Warn("notification delivery failed", "endpoint", name, "key", key, "attempt", attempt+1, "err", why, "retryIn", wait)
		if !n.pause(ctx, wait) {
			return false
		}
	}
}

// giveUp moves a record to the dead-letter area.
func (n *Notifier) giveUp(ctx context.Context, ep *endpoint, key string, r *record, reason string) {
	n.log.Error("notification given up: moved to the dead-letter area", "endpoint", ep.cfg.Name, "key", key,
		"path", deadDir(ep.cfg.Name)+"/"+key, "events", len(r.Events), "reason", reason)
	if err := n.q.bury(ctx, ep.cfg.Name, key, r, reason, time.Now()); err != nil {
		n.log.Error("notifications: dead-lettering failed; the record stays queued", "endpoint", ep.cfg.Name, "key", key, "err", err)
	}
	ep.remove(key)
}

// backoff is the wait after the attempt-th failure (0 for the first): base
// doubled attempt times, capped at max, of which a random half (jitter in
// [0, 1)) is waited, so replicas retrying together spread out.
func backoff(attempt int, base, max time.Duration, jitter float64) time.Duration {
	d := base
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + time.Duration(jitter*float64(d/2))
}

// post sends one record, signed, and returns the endpoint's status and the
// wait its Retry-After asks for (0 without one).
func (n *Notifier) post(ctx context.Context, ep *endpoint, r *record) (int, time.Duration, error) {
	var body []byte
	var err error
	contentType := ContentTypeEvent
	if r.Batch {
		contentType = ContentTypeBatch
		body, err = json.Marshal(r.Events)
	} else if len(r.Events) == 1 {
		body, err = json.Marshal(r.Events[0])
	} else {
		return 0, 0, fmt.Errorf("a record of %d events that is not a batch", len(r.Events))
	}
	if err != nil {
		return 0, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("POST to endpoint %s: the URL is not valid", ep.cfg.Name)
	}
	for k, v := range ep.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "signet-registry")
	req.Header.Set(SignatureHeader, Sign(ep.secret, time.Now(), body))
	resp, err := ep.client.Do(req)
	if err != nil {
		// A *url.Error quotes the whole URL, and a webhook URL often carries
		// its token in the path or query: only the cause is kept.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return 0, 0, fmt.Errorf("POST to endpoint %s: %w", ep.cfg.Name, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, retryAfter(resp.Header.Get("Retry-After"), time.Now()), nil
}

// retryAfter is the wait a Retry-After header asks for: delay-seconds or an
// HTTP date. A missing, malformed or past value asks for none.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
