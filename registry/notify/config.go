package notify

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Config is the notifications section of the registry's configuration
// (notifications.*). Without endpoints nothing is queued or sent.
type Config struct {
	// Source is the CloudEvents source of every event: this registry's name or
	// URL (notifications.source, default DefaultSource: the URL the registry
	// serves at).
	Source string `yaml:"source"`
	// Endpoints receive the webhooks (notifications.endpoints).
	Endpoints []Endpoint `yaml:"endpoints"`
	// PullBatch collects pulls into one request per endpoint
	// (notifications.pullBatch.*).
	PullBatch PullBatchConfig `yaml:"pullBatch"`
	// Heartbeat is how often a registry process marks itself alive on the
	// storage, so that other replicas leave its queued records to it
	// (notifications.heartbeat, default 10s).
	Heartbeat time.Duration `yaml:"heartbeat"`
	// TakeoverAfter is how old a process's heartbeat must be before another
	// process (or the same one restarted) delivers the records it left
	// (notifications.takeoverAfter, default 1m). It must exceed Heartbeat.
	TakeoverAfter time.Duration `yaml:"takeoverAfter"`
}

// PullBatchConfig sets how pulls are batched.
type PullBatchConfig struct {
	// Window is how long pulls are collected before they are queued as one
	// batch (notifications.pullBatch.window, default 1s).
	Window time.Duration `yaml:"window"`
	// MaxEvents queues the batch as soon as it holds this many pulls
	// (notifications.pullBatch.maxEvents, default 100).
	MaxEvents int `yaml:"maxEvents"`
}

// Endpoint is one webhook receiver.
type Endpoint struct {
	// Name identifies the endpoint in logs and in the queue's paths; letters,
	// digits, "-", "_" and "." (required).
	Name string `yaml:"name"`
	// URL receives the POSTs, http or https (required).
	URL string `yaml:"url"`
	// Secret is the HMAC-SHA256 key of the Signet-Signature header; set it or
	// SecretFile, not both.
	Secret Secret `yaml:"secret"`
	// SecretFile is a file holding the secret (a trailing newline is dropped).
	SecretFile string `yaml:"secretFile"`
	// Events are the kinds sent: push, pull, delete, admission-denied,
	// signature, policy-denied, policy-warning (default all of them).
	Events []string `yaml:"events"`
	// Repositories are the patterns of the repositories whose events are sent
	// ("*" one component, "**" any; default every repository).
	Repositories []string `yaml:"repositories"`
	// Timeout bounds one delivery attempt (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// Backoff is the wait after the first failed attempt; it doubles after each
	// further failure, with jitter (default 1s).
	Backoff time.Duration `yaml:"backoff"`
	// MaxBackoff caps the wait between attempts (default 5m).
	MaxBackoff time.Duration `yaml:"maxBackoff"`
	// MaxAge is how long a record is retried before it is moved to the
	// dead-letter area (default 24h).
	MaxAge time.Duration `yaml:"maxAge"`
	// Headers are added to every request (Authorization, say). Content-Type and
	// Signet-Signature cannot be set.
	Headers map[string]string `yaml:"headers"`
}

// Secret is a webhook secret: it prints as [redacted], so it never reaches a log.
type Secret string

func (Secret) String() string { return "[redacted]" }

// GoString keeps %#v from printing the secret too.
func (Secret) GoString() string { return "[redacted]" }

// Kinds returns the event kinds an endpoint may subscribe to, in a slice of
// the caller's own.
func Kinds() []string {
	return []string{KindPush, KindPull, KindDelete, KindAdmissionDenied, KindSignature, KindPolicyDenied, KindPolicyWarning}
}

// isKind reports whether k is one of Kinds.
func isKind(k string) bool {
	switch k {
	case KindPush, KindPull, KindDelete, KindAdmissionDenied, KindSignature, KindPolicyDenied, KindPolicyWarning:
		return true
	}
	return false
}

// Defaults returns the section with its defaults and no endpoint.
func Defaults() Config {
	return Config{
		PullBatch:     PullBatchConfig{Window: time.Second, MaxEvents: 100},
		Heartbeat:     10 * time.Second,
		TakeoverAfter: time.Minute,
	}
}

// withDefaults fills the fields left out of an endpoint.
func (e Endpoint) withDefaults() Endpoint {
	if len(e.Events) == 0 {
		e.Events = Kinds()
	}
	if len(e.Repositories) == 0 {
		e.Repositories = []string{"**"}
	}
	if e.Timeout == 0 {
		e.Timeout = 10 * time.Second
	}
	if e.Backoff == 0 {
		e.Backoff = time.Second
	}
	if e.MaxBackoff == 0 {
		e.MaxBackoff = 5 * time.Minute
	}
	if e.MaxAge == 0 {
		e.MaxAge = 24 * time.Hour
	}
	return e
}

// Validate checks every key, naming the one that is wrong.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("notifications."+key+": "+format, args...))
	}
	if c.Source != "" {
		if _, err := url.Parse(c.Source); err != nil {
			bad("source", "not a URI reference: %v", err)
		}
	}
	if c.PullBatch.Window <= 0 {
		bad("pullBatch.window", "must be positive")
	}
	if c.PullBatch.MaxEvents <= 0 {
		bad("pullBatch.maxEvents", "must be positive")
	}
	if c.Heartbeat <= 0 {
		bad("heartbeat", "must be positive")
	}
	if c.TakeoverAfter <= c.Heartbeat {
		bad("takeoverAfter", "must exceed notifications.heartbeat (%s)", c.Heartbeat)
	}
	names := map[string]bool{}
	for i, e := range c.Endpoints {
		key := fmt.Sprintf("endpoints[%d].", i)
		if !validName(e.Name) {
			bad(key+"name", "%q must be letters, digits, '-', '_' or '.' (and not start with '.')", e.Name)
		} else if names[e.Name] {
			bad(key+"name", "%q names two endpoints", e.Name)
		}
		names[e.Name] = true
		e.validate(func(k, format string, args ...any) { bad(key+k, format, args...) })
	}
	return errors.Join(errs...)
}

// validate checks an endpoint's keys but its name (which Config.Validate checks
// against the others), reporting each wrong one to bad.
func (e Endpoint) validate(bad func(key, format string, args ...any)) {
	// The URL itself is not printed: a webhook URL often carries a token.
	if u, err := url.Parse(e.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url", "not an http or https URL with a host")
	}
	switch {
	case e.Secret == "" && e.SecretFile == "":
		bad("secret", "set secret or secretFile: every delivery is signed")
	case e.Secret != "" && e.SecretFile != "":
		bad("secretFile", "set secret or secretFile, not both")
	case e.SecretFile != "":
		if _, err := os.Stat(e.SecretFile); err != nil {
			bad("secretFile", "%v", err)
		}
	}
	for _, k := range e.Events {
		if !isKind(k) {
			bad("events", "%q is not one of %s", k, strings.Join(Kinds(), ", "))
		}
	}
	for _, p := range e.Repositories {
		if p == "" || strings.Contains(p, "***") {
			bad("repositories", "%q is not a repository pattern", p)
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"timeout", e.Timeout}, {"backoff", e.Backoff}, {"maxBackoff", e.MaxBackoff}, {"maxAge", e.MaxAge}} {
		if d.v < 0 {
			bad(d.key, "must not be negative")
		}
	}
	if d := e.withDefaults(); d.MaxBackoff < d.Backoff {
		bad("maxBackoff", "must not be below backoff (%s)", d.Backoff)
	}
	// Values are not printed: they are often credentials.
	for _, h := range slices.Sorted(maps.Keys(e.Headers)) {
		switch {
		case !validHeaderName(h):
			bad("headers", "%q is not a header name", h)
		case !validHeaderValue(e.Headers[h]):
			bad("headers", "the value of %s holds a newline or another control character", h)
		}
		switch http.CanonicalHeaderKey(h) {
		case "Content-Type", "Content-Length", SignatureHeader:
			bad("headers", "%s is set by the registry", h)
		}
	}
}

// validName reports whether s can be an endpoint name: one storage path
// component, readable in logs.
func validName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// validHeaderName reports whether s is an HTTP field name: an RFC 9110 token,
// as golang.org/x/net/http/httpguts.ValidHeaderFieldName checks it.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s can be an HTTP field value: no control
// characters but horizontal tab (no CR or LF, which would end the header), as
// golang.org/x/net/http/httpguts.ValidHeaderFieldValue checks it.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// secret returns the endpoint's key, read from SecretFile when that is set;
// key is the endpoint's config key ("notifications.endpoints[0]").
func (e Endpoint) secret(key string) ([]byte, error) {
	if e.SecretFile == "" {
		return []byte(e.Secret), nil
	}
	b, err := os.ReadFile(e.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("%s.secretFile: %w", key, err)
	}
	b = []byte(strings.TrimRight(string(b), "\r\n"))
	if len(b) == 0 {
		return nil, fmt.Errorf("%s.secretFile: %s is empty", key, e.SecretFile)
	}
	return b, nil
}

// DefaultSource is notifications.source when it is not set: the URL of the
// registry listening at addr, https when it serves TLS. An unspecified host
// (":5000", "[::]:5000") is replaced by hostname, the machine's name; when
// that is "" too, ok is false and the source keeps the address as it is (the
// caller then asks for notifications.source to be set).
func DefaultSource(addr string, tls bool, hostname string) (source string, ok bool) {
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + addr, false
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if hostname == "" {
			return scheme + addr, false
		}
		host = hostname
	}
	return scheme + net.JoinHostPort(host, port), true
}
