// Package graceful serves HTTP until a context ends, then drains: it stops
// accepting connections, lets the requests in flight finish for up to a
// timeout, and then closes the connections still open and waits for their
// handlers to return. That last step matters for uploads: a PATCH cut off at
// the deadline sees its body end, saves what it received, and stays resumable,
// rather than dying mid-write with the process.
package graceful

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// handlerGrace bounds the wait for handlers after their connections were
// closed: they only have to notice the closed body and save their state.
const handlerGrace = 10 * time.Second

// Config times a stop.
type Config struct {
	// Delay is how long the server keeps serving after ctx is done, before it
	// stops accepting: time for a load balancer, which sees /readyz answer 503
	// from the moment ctx is done, to stop sending new requests.
	Delay time.Duration
	// Timeout is how long the requests in flight then get to finish.
	Timeout time.Duration
}

// Serve serves srv on ln until ctx is done or serving fails, then drains as cfg
// says. It serves HTTPS when srv.TLSConfig is set (the certificate comes from
// its GetCertificate or Certificates). name labels the log lines ("registry",
// "trustd").
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, cfg Config, name string, log *slog.Logger) error {
	var inflight handlers
	h := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !inflight.start() {
			// A request read just before its connection was closed: there is
			// nobody left to answer.
			return
		}
		defer inflight.done()
		h.ServeHTTP(w, r)
	})
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if cfg.Delay > 0 {
		log.Info(name+" stopping: still serving while load balancers see it is not ready", "delay", cfg.Delay)
		select {
		case err := <-errc:
			return err
		case <-time.After(cfg.Delay):
		}
	}
	start := time.Now()
	log.Info(name+" stopping: draining requests in flight", "timeout", cfg.Timeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err == nil {
		log.Info(name+" stopped", "dur", time.Since(start))
		return nil
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// The deadline passed: close what is left, so each handler's body read
	// fails and the handler saves its state, and wait for them to return.
	srv.Close()
	select {
	case <-inflight.closeAndWait():
		log.Warn(name+" stopped: requests still in flight at the deadline were cut off", "dur", time.Since(start))
	case <-time.After(handlerGrace):
		log.Error(name+" stopped: handlers did not return after their connections closed", "wait", handlerGrace)
	}
	return nil
}

// handlers counts the handlers running. Unlike a WaitGroup it may see a
// handler start while it is being waited for (a connection whose request was
// read just as it was closed): once closed, it refuses new ones.
type handlers struct {
	mu      sync.Mutex
	n       int
	closed  bool
	drained chan struct{}
}

func (h *handlers) start() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.n++
	return true
}

func (h *handlers) done() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n--
	if h.closed && h.n == 0 {
		close(h.drained)
	}
}

// closeAndWait refuses new handlers and returns a channel closed once the
// running ones have returned.
func (h *handlers) closeAndWait() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.drained = make(chan struct{})
	if h.n == 0 {
		close(h.drained)
	}
	return h.drained
}
