package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/signet-oss/signet/storage/driver"
)

// How the driver bounds a sick endpoint.
//
// The SDK sets no time limit on S3 requests (S3 is exempt from its read
// timeouts, and its transport has no response-header timeout): a black-holed
// route or a hung server holds a registry request, and the push behind it,
// forever. So every connection carries an inactivity timeout (Config.Timeout):
// an attempt fails when no byte has moved in either direction for that long.
// It is not a deadline on the whole request, so a large read on a slow link
// still goes through while it progresses. For an upload, progress is what the
// kernel accepts: its socket buffers (a few MiB once tuned) may take a body
// at once and drain it slower than the timeout, so at the default of 30 s an
// upload link slower than about 100 KiB/s can time out waiting for its answer.
//
// The SDK's standard retryer then retries what may pass (5xx, SlowDown and the
// other throttling codes, resets, refused connections, those timeouts), at most
// maxAttempts attempts in all. Every body the driver sends is a bytes.Reader,
// so a retry replays the same bytes (the SDK seeks it back); nothing streams
// from the registry's client straight into a request. Keep it so: the SDK
// cannot retry a body it cannot rewind, and its error for that hides the
// attempt's own. Its backoff waits
// b·min(base·2^i, maxBackoff) with b random in [0,1) and a base of 50 ms, or
// 1 s after throttling: with the SDK's 20 s cap, three attempts against an
// endpoint answering SlowDown took up to 3 s (1 s + 2 s of sleep), longer than
// the 2 s a readiness probe waits. With maxBackoff at 500 ms the sleeps add
// up to 1 s at most: a registry request that meets a sick store fails within
// about a second plus its attempts, and its client, told 503 with
// Retry-After, does the waiting. The SDK's retry quota stays on: once a
// failing endpoint has used it up (500 tokens, 5 a throttled retry, 14
// another), operations fail after one attempt until successes refill it, so a
// dead store does not triple the load on it.
//
// What still fails after that is wrapped as driver.ErrUnavailable when it may
// pass (see unavailable), so the registry answers 503, not 500.
const (
	// DefaultTimeout is Config.Timeout's default: generous for a server-side
	// copy of a large object, which sends nothing until it is done.
	DefaultTimeout = 30 * time.Second
	maxAttempts    = 3
	maxBackoff     = 500 * time.Millisecond
	// writeSlice is how many bytes a connection writes under one deadline, so
	// that one large Write (a whole part) on a slow link is not timed as one.
	writeSlice = 32 << 10
)

// httpClient returns the driver's HTTP client, built on the one the SDK
// resolved (which carries a custom CA bundle, if one is configured): pooled
// connections to one endpoint, each failing after timeout without progress. It
// is frozen, so the SDK applies none of its own transport defaults over it.
func httpClient(resolved aws.HTTPClient, timeout time.Duration) aws.HTTPClient {
	b, ok := resolved.(*awshttp.BuildableClient)
	if !ok {
		b = awshttp.NewBuildableClient()
	}
	return b.WithDialerOptions(func(d *net.Dialer) { d.Timeout = timeout }).
		WithTransportOptions(func(t *http.Transport) {
			// Registry replicas talk to one endpoint with many requests in
			// flight: keep their connections.
			t.MaxIdleConns = 256
			t.MaxIdleConnsPerHost = 256
			// An idle connection's pending read would time out and close it;
			// retire it first, so that a request never picks one just then.
			t.IdleConnTimeout = timeout / 2
			dial := t.DialContext
			t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &idleConn{Conn: c, timeout: timeout}, nil
			}
		}).Freeze()
}

// retryer is the SDK's standard retryer with the bounds above.
func retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.MaxBackoff = maxBackoff
	})
}

// idleConn fails a read or write once no byte has moved on the connection, in
// either direction, for timeout. Bytes written count as progress for the read
// that waits for the answer (the transport reads while it writes a request),
// and a large write is made in slices, each with its own deadline.
type idleConn struct {
	net.Conn
	timeout time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Read(p)
	return n, c.timedOut(err)
}

func (c *idleConn) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		deadline := time.Now().Add(c.timeout)
		c.Conn.SetWriteDeadline(deadline)
		c.Conn.SetReadDeadline(deadline)
		m, err := c.Conn.Write(p[n:min(len(p), n+writeSlice)])
		n += m
		if err != nil {
			return n, c.timedOut(err)
		}
	}
	return n, nil
}

func (c *idleConn) timedOut(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &idleTimeoutError{c.timeout}
	}
	return err
}

// idleTimeoutError is a connection's inactivity timeout. The SDK retries it as
// a timeout, and the message says what happened.
type idleTimeoutError struct{ d time.Duration }

func (e *idleTimeoutError) Error() string {
	return fmt.Sprintf("no byte moved to or from the S3 endpoint in %s", e.d)
}
func (e *idleTimeoutError) Timeout() bool   { return true }
func (e *idleTimeoutError) Temporary() bool { return true }

// transient are the SDK's own tests of an error that may pass.
var transient = retry.IsErrorRetryables(retry.DefaultRetryables)

// unavailable reports whether err, what is left after the SDK's retries, is a
// backend failure that may pass: a 5xx answer (but 501 Not Implemented), a
// throttling code, a broken or silent connection. A cancelled caller is not.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	if _, status := apiError(err); status >= 500 && status != http.StatusNotImplemented {
		return true
	}
	return transient.IsErrorRetryable(err) == aws.TrueTernary
}

// opErr wraps the error of operation op on path, as driver.ErrUnavailable too
// when it may pass.
func opErr(op, path string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("s3: %s %s: %w: %w", op, path, driver.ErrUnavailable, err)
	}
	return fmt.Errorf("s3: %s %s: %w", op, path, err)
}

// body is a Reader's object stream, whose failures mid-stream are mapped like
// those of the request that opened it.
type body struct {
	io.ReadCloser
	path string
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = opErr("read", b.path, err)
	}
	return n, err
}
