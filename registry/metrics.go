package registry

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/verify"
)

// metricsNamespace prefixes every registry metric.
const metricsNamespace = "signet_registry"

// Admission outcomes, the values of the outcome label.
const (
	outcomeAdmitted    = AdmissionAdmitted
	outcomeOpen        = AdmissionOpen
	outcomeDenied      = "denied"
	outcomeUnavailable = "unavailable"
	outcomeSignature   = "signature"
)

// registryMetrics are the registry's own metrics, beyond requests and storage.
type registryMetrics struct {
	uploadsInFlight prometheus.Gauge
	admission       map[string]prometheus.Counter
	pullPolicy      map[EventKind]prometheus.Counter
	gcRuns          map[bool]prometheus.Counter
	gcDeleted       map[string]prometheus.Counter
	gcFreed         prometheus.Counter
}

func newRegistryMetrics(reg prometheus.Registerer) (*registryMetrics, error) {
	m := &registryMetrics{
		uploadsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "uploads_in_flight",
			Help: "Upload PATCH and PUT requests whose bodies are being written.",
		}),
		gcFreed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "gc_freed_bytes_total",
			Help: "Bytes of blobs that online garbage collection deleted.",
		}),
		admission:  map[string]prometheus.Counter{},
		pullPolicy: map[EventKind]prometheus.Counter{},
		gcRuns:     map[bool]prometheus.Counter{},
		gcDeleted:  map[string]prometheus.Counter{},
	}
	admission := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "admission_decisions_total",
		Help: "Manifest PUTs decided, by outcome: admitted (signed, enforced repository), open (not enforced), denied, unavailable (trust metadata could not be confirmed); signature counts admitted signature artifacts again.",
	}, []string{"outcome"})
	for _, o := range []string{outcomeAdmitted, outcomeOpen, outcomeDenied, outcomeUnavailable, outcomeSignature} {
		m.admission[o] = admission.WithLabelValues(o)
	}
	pullPolicy := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "pull_policy_unmet_total",
		Help: "Manifest GETs of images whose pull policy is not met, by outcome: denied (403, or the policy cannot be read), warned (served, the policy in warn mode).",
	}, []string{"outcome"})
	m.pullPolicy[EventPolicyDenied], m.pullPolicy[EventPolicyWarning] = pullPolicy.WithLabelValues("denied"), pullPolicy.WithLabelValues("warned")
	runs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "gc_runs_total",
		Help: "Online garbage collections, by result (success, failure).",
	}, []string{"result"})
	m.gcRuns[true], m.gcRuns[false] = runs.WithLabelValues("success"), runs.WithLabelValues("failure")
	deleted := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "gc_deleted_total",
		Help: "What online garbage collection deleted, by kind (blob, manifest, blob_link, upload).",
	}, []string{"kind"})
	for _, k := range []string{"blob", "manifest", "blob_link", "upload"} {
		m.gcDeleted[k] = deleted.WithLabelValues(k)
	}
	for _, c := range []prometheus.Collector{m.uploadsInFlight, admission, pullPolicy, runs, deleted, m.gcFreed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// event counts the admission decisions and the unmet pull policies the API
// reports.
func (m *registryMetrics) event(_ context.Context, e Event) {
	switch e.Kind {
	case EventPush:
		if c, ok := m.admission[e.Admission]; ok {
			c.Inc()
		}
	case EventAdmissionDenied:
		m.admission[outcomeDenied].Inc()
	case EventAdmissionUnavailable:
		m.admission[outcomeUnavailable].Inc()
	case EventSignature:
		m.admission[outcomeSignature].Inc()
	case EventPolicyDenied, EventPolicyWarning:
		m.pullPolicy[e.Kind].Inc()
	}
}

// gc records one online collection.
func (m *registryMetrics) gc(rep *storage.GCReport, err error) {
	if errors.Is(err, context.Canceled) {
		return // stopped by the registry's shutdown, not a failure
	}
	m.gcRuns[err == nil].Inc()
	if err != nil || rep == nil {
		return
	}
	m.gcDeleted["blob"].Add(float64(rep.BlobsDeleted))
	m.gcDeleted["manifest"].Add(float64(rep.ManifestsDeleted))
	m.gcDeleted["blob_link"].Add(float64(rep.LinksDeleted))
	m.gcDeleted["upload"].Add(float64(rep.UploadsDeleted))
	m.gcFreed.Add(float64(rep.BytesFreed))
}

var trustAgeDesc = prometheus.NewDesc(metricsNamespace+"_trust_metadata_age_seconds",
	"Seconds since the admission gate last refreshed the trust metadata from trustd (absent until the first success).", nil, nil)

// trustAgeCollector reports the age of the gate's trust metadata at scrape time.
type trustAgeCollector struct {
	index *verify.Index
	desc  *prometheus.Desc
}

func (c trustAgeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c trustAgeCollector) Collect(ch chan<- prometheus.Metric) {
	last := c.index.LastSuccess()
	if last.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, c.index.Now().Sub(last).Seconds())
}
