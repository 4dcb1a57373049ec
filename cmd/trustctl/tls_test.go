package main

import (
	"slices"
	"testing"
)

func TestDevCertHostsNameTheListenHosts(t *testing.T) {
	base := []string{"localhost", "127.0.0.1", "::1"}
	for _, c := range []struct {
		name     string
		hostname string
		addrs    []string
		want     []string
	}{
		{"loopback addresses add nothing", "localhost", []string{"127.0.0.1:5000", "[::1]:5001", "localhost:0"}, base},
		{"the machine's name is added", "build7", nil, append(base, "build7")},
		{"a listen IP is added", "", []string{"192.0.2.7:5000", "127.0.0.1:5001"}, append(base, "192.0.2.7")},
		{"a listen name is added once", "", []string{"registry.test:5000", "registry.test:5001"}, append(base, "registry.test")},
		{"an IPv6 listen address is added", "", []string{"[2001:db8::1]:443"}, append(base, "2001:db8::1")},
		{"unspecified addresses are not names", "", []string{"0.0.0.0:5000", "[::]:5001", ":5002"}, base},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := devCertHosts(c.hostname, c.addrs...); !slices.Equal(got, c.want) {
				t.Fatalf("devCertHosts(%q, %q) = %q, want %q", c.hostname, c.addrs, got, c.want)
			}
		})
	}
}
