package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"time"
)

// schemeProbeTimeout bounds the TLS handshake that decides a loopback host's
// scheme.
const schemeProbeTimeout = 2 * time.Second

// SchemeCache remembers the scheme each loopback host:port was found to speak,
// so a process asks each one once. A context carries it (WithSchemeCache); the
// zero value is ready to use.
type SchemeCache struct {
	mu      sync.Mutex
	schemes map[string]string
}

type schemeCacheKey struct{}

// WithSchemeCache returns ctx carrying a new SchemeCache: BaseURL called with
// ctx, or a context derived from it, probes each loopback host:port once.
// trustctl installs one for the whole process.
func WithSchemeCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, schemeCacheKey{}, &SchemeCache{})
}

func schemeCacheFrom(ctx context.Context) *SchemeCache {
	c, _ := ctx.Value(schemeCacheKey{}).(*SchemeCache)
	return c
}

func (c *SchemeCache) get(hostport string) (string, bool) {
	if c == nil {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.schemes[hostport]
	return s, ok
}

func (c *SchemeCache) put(hostport, scheme string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.schemes == nil {
		c.schemes = map[string]string{}
	}
	c.schemes[hostport] = scheme
}

// loopbackScheme is the scheme of a registry on the local machine named without
// one: https when it answers a TLS handshake (a stack started with
// `trustctl up --tls`), else http, as docker and crane try https first on the
// hosts they treat as insecure. A host that does not answer at all keeps http,
// so errors name the URL they did before. Only a definite answer (a handshake,
// a TLS alert, or a reply that is not TLS) is remembered in ctx's SchemeCache:
// a server that is not listening yet is asked again next time.
func loopbackScheme(ctx context.Context, hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.Trim(hostport, "[]"), "443"
	}
	addr := net.JoinHostPort(host, port)
	cache := schemeCacheFrom(ctx)
	if s, ok := cache.get(addr); ok {
		return s
	}
	scheme, definite := probeScheme(ctx, host, addr)
	if definite {
		cache.put(addr, scheme)
	}
	return scheme
}

// probeScheme tries a TLS handshake with addr and reports the scheme it speaks
// and whether the answer was definite.
func probeScheme(ctx context.Context, host, addr string) (scheme string, definite bool) {
	ctx, cancel := context.WithTimeout(ctx, schemeProbeTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "http", false
	}
	defer raw.Close()
	// Only the scheme is decided here; every request afterwards verifies the
	// certificate in full. Nothing is sent over this connection.
	conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: host})
	err = conn.HandshakeContext(ctx)
	var alert tls.AlertError
	var notTLS tls.RecordHeaderError
	switch {
	case err == nil:
		return "https", true
	case errors.As(err, &alert): // a TLS server that refused the handshake
		return "https", true
	case errors.As(err, &notTLS): // a server that answered, but not in TLS
		return "http", true
	}
	return "http", false
}
