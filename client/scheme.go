package client

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"time"
)

// loopbackScheme is the scheme of a registry on the local machine named without
// one: https when it answers a TLS handshake (a stack started with
// `trustctl up --tls`), else http, as docker and crane try https first on the
// hosts they treat as insecure. A host that does not answer at all keeps http,
// so errors name the URL they did before.
func loopbackScheme(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.Trim(hostport, "[]"), "443"
	}
	d := &net.Dialer{Timeout: 2 * time.Second}
	// Only the scheme is decided here; every request afterwards verifies the
	// certificate in full. Nothing is sent over this connection.
	conn, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort(host, port), &tls.Config{InsecureSkipVerify: true, ServerName: host})
	if err == nil {
		conn.Close()
		return "https"
	}
	var alert tls.AlertError
	if errors.As(err, &alert) { // a TLS server that refused the handshake
		return "https"
	}
	return "http"
}
