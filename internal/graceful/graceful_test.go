package graceful

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// slowBody is a request body that sends one part, then blocks until closed.
type slowBody struct {
	sent bool
	stop chan struct{}
}

func (b *slowBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "first part;"), nil
	}
	<-b.stop
	return 0, io.EOF
}

func serve(t *testing.T, h http.Handler, timeout time.Duration) (addr string, cancel func(), done chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() {
		done <- Serve(ctx, &http.Server{Handler: h}, ln, Config{Timeout: timeout}, "test", slog.New(slog.DiscardHandler))
	}()
	return ln.Addr().String(), cancel, done
}

func TestRequestInFlightFinishes(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	addr, cancel, done := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	}), 10*time.Second)
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	cancel()
	// Draining: no new connection is accepted.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts connections while draining")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if s := <-got; s != "finished" {
		t.Fatalf("the request in flight got %q, want it to finish", s)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v", err)
	}
}

func TestDeadlineCutsOffAndHandlersSeeTheirBodiesEnd(t *testing.T) {
	var received atomic.Int64
	var returned atomic.Bool
	started := make(chan struct{})
	addr, cancel, done := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		n, _ := io.Copy(io.Discard, r.Body)
		received.Store(n)
		returned.Store(true)
	}), 200*time.Millisecond)
	body := &slowBody{stop: make(chan struct{})}
	defer close(body.stop)
	go func() {
		req, _ := http.NewRequest(http.MethodPatch, "http://"+addr+"/", body)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v", err)
		}
	case <-time.After(handlerGrace):
		t.Fatal("Serve did not return after the deadline")
	}
	if !returned.Load() {
		t.Fatal("Serve returned before the cut-off handler did")
	}
	if n := received.Load(); n != int64(len("first part;")) {
		t.Fatalf("the handler saw %d bytes before its body ended, want %d", n, len("first part;"))
	}
}

func TestServeFailureIsReturned(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = Serve(context.Background(), &http.Server{Handler: http.NotFoundHandler()}, ln, Config{Timeout: time.Second}, "test", slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Serve on a closed listener returned %v", err)
	}
}

func TestDelayKeepsServingBeforeTheDrain(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served") })
		done <- Serve(ctx, &http.Server{Handler: h}, ln, Config{Delay: 500 * time.Millisecond, Timeout: time.Second}, "test", slog.New(slog.DiscardHandler))
	}()
	cancel()
	start := time.Now()
	time.Sleep(100 * time.Millisecond)
	// Within the delay a new connection is still served.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatalf("a request within the delay: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "served" {
		t.Fatalf("a request within the delay got %q", b)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("Serve returned %s after ctx ended, before its delay", d)
	}
}
