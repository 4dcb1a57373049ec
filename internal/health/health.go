// Package health answers the liveness and readiness probes of Signet's servers:
// /healthz says the process serves, /readyz runs the server's checks (storage
// reachable, trust metadata fresh, keys loaded) and answers 200 or 503 with a
// JSON report naming each check and, when it failed, why.
//
// Its main invariant: probes never hammer what they check. Checks run with a
// bounded time each, at most once per CacheFor however many probes arrive (the
// others wait for that run or get its cached result), and never after the
// server started shutting down, when /readyz answers 503 at once.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Paths of the probes on a server's main listener.
const (
	AlivePath = "/healthz"
	ReadyPath = "/readyz"
)

// Defaults of a Checker.
const (
	DefaultTimeout  = 2 * time.Second
	DefaultCacheFor = time.Second
)

// Check is one readiness condition. Run returns nil when it holds, or an error
// saying why not (shown to whoever probes: it must hold no secret).
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Result is one check's outcome in a Report.
type Result struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

// Report is the body of /readyz.
type Report struct {
	// Status is "ready", "not ready" or "shutting down".
	Status string   `json:"status"`
	Checks []Result `json:"checks"`
}

// Ready reports whether every check passed.
func (r Report) Ready() bool { return r.Status == statusReady }

const (
	statusReady    = "ready"
	statusNotReady = "not ready"
	statusStopping = "shutting down"
)

// Checker runs a server's checks. Its zero value is not usable: use New.
type Checker struct {
	checks   []Check
	stopping <-chan struct{}
	// Timeout bounds each check; CacheFor is how long a result is reused.
	timeout, cacheFor time.Duration
	now               func() time.Time

	mu   sync.Mutex // held while the checks run: concurrent probes share a run
	last Report
	at   time.Time
}

// New returns a Checker of checks. When ctx is done (the server drains before
// it stops), Report answers "shutting down" without running them.
func New(ctx context.Context, checks ...Check) *Checker {
	return &Checker{checks: checks, stopping: ctx.Done(), timeout: DefaultTimeout, cacheFor: DefaultCacheFor, now: time.Now}
}

// Add adds a check; checks are added before the server serves.
func (c *Checker) Add(name string, run func(ctx context.Context) error) {
	c.checks = append(c.checks, Check{Name: name, Run: run})
}

// Report runs the checks, or returns the result of a run less than CacheFor
// old. The caller's ctx only bounds its wait: a run, shared with other probes,
// is bounded by the checker's own timeout.
func (c *Checker) Report(ctx context.Context) Report {
	if c.shuttingDown() {
		return c.stoppingReport()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && c.now().Sub(c.at) < c.cacheFor {
		return c.last
	}
	if c.shuttingDown() {
		return c.stoppingReport()
	}
	results := make([]Result, len(c.checks))
	var wg sync.WaitGroup
	for i, ch := range c.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.run(context.WithoutCancel(ctx), ch)
		}()
	}
	wg.Wait()
	rep := Report{Status: statusReady, Checks: results}
	for _, r := range results {
		if !r.OK {
			rep.Status = statusNotReady
		}
	}
	c.last, c.at = rep, c.now()
	return rep
}

// run runs one check within the timeout; a check that overruns it fails,
// and its goroutine is left to end on its context.
func (c *Checker) run(ctx context.Context, ch Check) Result {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ch.Run(ctx) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = timeoutError{c.timeout}
	}
	if err != nil {
		return Result{Name: ch.Name, Reason: err.Error()}
	}
	return Result{Name: ch.Name, OK: true}
}

type timeoutError struct{ d time.Duration }

func (e timeoutError) Error() string { return "no answer within " + e.d.String() }

func (c *Checker) shuttingDown() bool {
	select {
	case <-c.stopping:
		return true
	default:
		return false
	}
}

func (c *Checker) stoppingReport() Report {
	results := make([]Result, len(c.checks))
	for i, ch := range c.checks {
		results[i] = Result{Name: ch.Name, Reason: statusStopping}
	}
	return Report{Status: statusStopping, Checks: results}
}

// ServeReady answers /readyz: 200 with the report when every check passed,
// else 503.
func (c *Checker) ServeReady(w http.ResponseWriter, r *http.Request) {
	if !allowed(w, r) {
		return
	}
	rep := c.Report(r.Context())
	body, _ := json.Marshal(rep)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if rep.Ready() {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if r.Method != http.MethodHead {
		w.Write(append(body, '\n'))
	}
}

// ServeAlive answers /healthz: 200 whenever the process serves.
func ServeAlive(w http.ResponseWriter, r *http.Request) {
	if !allowed(w, r) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodHead {
		w.Write([]byte("ok\n"))
	}
}

func allowed(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, r.Method+" is not supported on "+r.URL.Path+": use GET or HEAD", http.StatusMethodNotAllowed)
	return false
}

// Handler serves /healthz and /readyz with c and passes every other request
// to next. Probes are answered before next, so they are neither logged nor
// counted by next.
func (c *Checker) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case AlivePath:
			ServeAlive(w, r)
		case ReadyPath:
			c.ServeReady(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}
