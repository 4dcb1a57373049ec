package client

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
			base, host, err := BaseURL(hostport, false)
			if err != nil || base != c.want+hostport || host != hostport {
				t.Fatalf("BaseURL(%q) = %q %q %v, want %q", hostport, base, host, err, c.want+hostport)
			}
		})
	}
	if base, _, _ := BaseURL(strings.TrimPrefix(secure.URL, "https://"), true); !strings.HasPrefix(base, "http://") {
		t.Fatalf("plainHTTP must force http, got %s", base)
	}
}
