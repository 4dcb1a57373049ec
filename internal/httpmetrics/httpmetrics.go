// Package httpmetrics instruments a server's HTTP API for Prometheus: requests
// by route, method and status, latency by route and method, and optionally the
// bytes received and sent. It also serves a registry of metrics on a listener
// of its own (metrics.addr), apart from the API.
//
// Its main invariant: label values are bounded. The route label is the name of
// the gorilla/mux route that matched (a few per server, "other" when none did),
// never the raw path or a repository name; the method label is one of the HTTP
// methods the servers use, or "other". The request path stays cheap: every
// route × method series is resolved when the server starts, and only the
// status counters are looked up (under a read lock) per request.
package httpmetrics

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
)

// OtherRoute labels a request that matched no route.
const OtherRoute = "other"

// methods are the method label values; anything else is "other".
var methods = [...]string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodOptions, "other"}

func methodIndex(m string) int {
	for i, v := range methods[:len(methods)-1] {
		if v == m {
			return i
		}
	}
	return len(methods) - 1
}

// Config describes what to instrument.
type Config struct {
	// Namespace prefixes every metric ("signet_registry").
	Namespace string
	// Router is the API's router; its routes get their labels from RouteLabel.
	Router *mux.Router
	// RouteLabel names a route from its path template (a few names per server).
	// "" means OtherRoute.
	RouteLabel func(template string) string
	// Bytes adds the counters of bytes received and sent.
	Bytes bool
	// InFlight, when set, returns the gauge of the requests of route and method
	// being served (nil for none); it is asked once per combination at start.
	InFlight func(route, method string) prometheus.Gauge
	// Done, when set, is called after each request with its route label, its
	// status and the note a handler left with Note.
	Done func(route string, status int, note string)
}

// Metrics instruments one server's API.
type Metrics struct {
	cfg      Config
	routeOf  map[*mux.Route]int
	labels   []string // labels[0] is OtherRoute
	latency  [][len(methods)]prometheus.Observer
	inFlight [][len(methods)]prometheus.Gauge
	requests *prometheus.CounterVec
	received prometheus.Counter
	sent     prometheus.Counter

	mu       sync.RWMutex
	counters map[counterKey]prometheus.Counter
}

type counterKey struct {
	route  uint16
	method uint8
	status uint16
}

// New registers the request metrics with reg and labels cfg.Router's routes.
// Call it before the server serves: it adds a middleware to the router.
func New(reg prometheus.Registerer, cfg Config) (*Metrics, error) {
	m := &Metrics{cfg: cfg, routeOf: map[*mux.Route]int{}, labels: []string{OtherRoute}, counters: map[counterKey]prometheus.Counter{}}
	index := map[string]int{OtherRoute: 0}
	err := cfg.Router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil || route.GetHandler() == nil {
			return nil // a subrouter's prefix: its routes are walked too
		}
		label := cfg.RouteLabel(tpl)
		if label == "" {
			label = OtherRoute
		}
		i, ok := index[label]
		if !ok {
			i = len(m.labels)
			index[label] = i
			m.labels = append(m.labels, label)
		}
		m.routeOf[route] = i
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: cfg.Namespace, Name: "http_requests_total",
		Help: "HTTP requests served, by route, method and status code.",
	}, []string{"route", "method", "status"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: cfg.Namespace, Name: "http_request_duration_seconds",
		Help:    "Time from a request's arrival to the end of its response, by route and method.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route", "method"})
	cs := []prometheus.Collector{m.requests, latency}
	if cfg.Bytes {
		m.received = prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: cfg.Namespace, Name: "http_received_bytes_total",
			Help: "Bytes of request bodies received.",
		})
		m.sent = prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: cfg.Namespace, Name: "http_sent_bytes_total",
			Help: "Bytes of response bodies sent.",
		})
		cs = append(cs, m.received, m.sent)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.latency = make([][len(methods)]prometheus.Observer, len(m.labels))
	m.inFlight = make([][len(methods)]prometheus.Gauge, len(m.labels))
	for i, route := range m.labels {
		for j, method := range methods {
			m.latency[i][j] = latency.WithLabelValues(route, method)
			if cfg.InFlight != nil {
				m.inFlight[i][j] = cfg.InFlight(route, method)
			}
		}
	}
	cfg.Router.Use(m.routeMiddleware)
	return m, nil
}

// Labels returns the route labels, "other" first.
func (m *Metrics) Labels() []string { return append([]string(nil), m.labels...) }

// Handler instruments next, the API's handler (whose router is cfg.Router).
func (m *Metrics) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		if m.received != nil && r.Body != nil && r.Body != http.NoBody {
			rec.body = countingBody{ReadCloser: r.Body, n: &rec.received}
			r.Body = &rec.body
		}
		next.ServeHTTP(rec, r)
		method := methodIndex(r.Method)
		m.latency[rec.route][method].Observe(time.Since(start).Seconds())
		m.counter(rec.route, method, rec.status).Inc()
		if m.received != nil {
			m.received.Add(float64(rec.received))
			m.sent.Add(float64(rec.sent))
		}
		if m.cfg.Done != nil {
			m.cfg.Done(m.labels[rec.route], rec.status, rec.note)
		}
	})
}

func (m *Metrics) counter(route, method, status int) prometheus.Counter {
	k := counterKey{uint16(route), uint8(method), uint16(status)}
	m.mu.RLock()
	c, ok := m.counters[k]
	m.mu.RUnlock()
	if ok {
		return c
	}
	c = m.requests.WithLabelValues(m.labels[route], methods[method], strconv.Itoa(status))
	m.mu.Lock()
	m.counters[k] = c
	m.mu.Unlock()
	return c
}

// routeMiddleware runs inside the router, once a route matched: it tells the
// request's recorder which, and counts the requests in flight.
func (m *Metrics) routeMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, ok := m.routeOf[mux.CurrentRoute(r)]
		if rec := recorderOf(w); rec != nil && ok {
			rec.route = route
		}
		if g := m.inFlight[route][methodIndex(r.Method)]; g != nil {
			g.Inc()
			defer g.Dec()
		}
		next.ServeHTTP(w, r)
	})
}

// Note leaves a note on the request w answers (a bounded value, such as a
// token request's grant type), for Config.Done. Without metrics it does nothing.
func Note(w http.ResponseWriter, note string) {
	if rec := recorderOf(w); rec != nil {
		rec.note = note
	}
}

// recorderOf finds the recorder under w's wrappers (each with Unwrap).
func recorderOf(w http.ResponseWriter) *recorder {
	for w != nil {
		if rec, ok := w.(*recorder); ok {
			return rec
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// recorder remembers the status, the bytes and the route of one request.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	route       int
	note        string
	sent        int64
	received    int64
	body        countingBody
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader && code >= 200 {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(p)
	r.sent += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n *int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	*b.n += int64(n)
	return n, err
}
