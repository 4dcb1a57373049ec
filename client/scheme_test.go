package client

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBaseURLOfALoopbackRegistryFollowsWhatItSpeaks(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	plain := httptest.NewServer(h)
	defer plain.Close()
	secure := httptest.NewTLSServer(h)
	defer secure.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	for _, c := range []struct {
		name, url, want string
	}{
		{"a plain HTTP registry gets http", plain.URL, "http://"},
		{"a TLS registry gets https", secure.URL, "https://"},
		{"a registry that does not answer keeps http", "http://" + closed, "http://"},
	} {
		t.Run(c.name, func(t *testing.T) {
			hostport := c.url[strings.Index(c.url, "://")+3:]
			base, host, err := BaseURL(context.Background(), hostport, false)
			if err != nil || base != c.want+hostport || host != hostport {
				t.Fatalf("BaseURL(%q) = %q %q %v, want %q", hostport, base, host, err, c.want+hostport)
			}
		})
	}
	if base, _, _ := BaseURL(context.Background(), strings.TrimPrefix(secure.URL, "https://"), true); !strings.HasPrefix(base, "http://") {
		t.Fatalf("plainHTTP must force http, got %s", base)
	}
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func TestBaseURLProbesEachLoopbackHostOncePerSchemeCache(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	start := func(tls bool) (hostport string, dials *atomic.Int32) {
		dials = &atomic.Int32{}
		s := httptest.NewUnstartedServer(h)
		s.Listener = countingListener{s.Listener, dials}
		if tls {
			s.StartTLS()
		} else {
			s.Start()
		}
		t.Cleanup(s.Close)
		return s.Listener.Addr().String(), dials
	}
	secure, secureDials := start(true)
	plain, plainDials := start(false)

	ctx := WithSchemeCache(context.Background())
	for range 3 {
		if base, _, err := BaseURL(ctx, secure, false); err != nil || base != "https://"+secure {
			t.Fatalf("BaseURL(%q) = %q %v, want https", secure, base, err)
		}
		if base, _, err := BaseURL(ctx, plain, false); err != nil || base != "http://"+plain {
			t.Fatalf("BaseURL(%q) = %q %v, want http", plain, base, err)
		}
	}
	if n := secureDials.Load(); n != 1 {
		t.Errorf("the TLS registry was dialled %d times with one SchemeCache, want once", n)
	}
	if n := plainDials.Load(); n != 1 {
		t.Errorf("the plain registry was dialled %d times with one SchemeCache, want once", n)
	}
	// Without a cache every call asks.
	BaseURL(context.Background(), secure, false)
	if n := secureDials.Load(); n != 2 {
		t.Errorf("BaseURL without a SchemeCache dialled %d times in all, want a second dial", n)
	}

	// A host that answered nothing definite is asked again: it may be starting.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var speaksTLS atomic.Bool
	cfg := secureTLSConfig(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if speaksTLS.Load() {
				tc := tls.Server(c, cfg)
				tc.Handshake()
				tc.Close()
			} else {
				c.Close() // a server still starting: no answer
			}
		}
	}()
	starting := ln.Addr().String()
	if base, _, _ := BaseURL(ctx, starting, false); base != "http://"+starting {
		t.Fatalf("a host that closes the connection: %s, want http", base)
	}
	speaksTLS.Store(true)
	if base, _, _ := BaseURL(ctx, starting, false); base != "https://"+starting {
		t.Fatalf("a host that answers TLS after it answered nothing: %s, want https", base)
	}
}

// secureTLSConfig is the server config of an httptest TLS server.
func secureTLSConfig(t *testing.T) *tls.Config {
	t.Helper()
	s := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(s.Close)
	return s.TLS
}

func TestBaseURLStopsWaitingWithTheContext(t *testing.T) {
	// A listener that accepts and never answers the handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			held = append(held, c)
		}
	}()
	ctx, cancel := context.WithTimeout(WithSchemeCache(context.Background()), 100*time.Millisecond)
	defer cancel()
	addr := ln.Addr().String()
	if base, _, err := BaseURL(ctx, addr, false); err != nil || base != "http://"+addr {
		t.Fatalf("a host that never answers the handshake: %q %v, want http", base, err)
	}
	// The same cache, a new deadline: the first answer was not remembered.
	ctx2, cancel2 := context.WithTimeout(context.WithoutCancel(ctx), 100*time.Millisecond)
	defer cancel2()
	if base, _, _ := BaseURL(ctx2, addr, false); base != "http://"+addr || accepted.Load() != 2 {
		t.Fatalf("a host that never answered: %q after %d connections, want it asked again", base, accepted.Load())
	}
}
