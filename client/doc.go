// Package client is trustctl's logic, kept out of its cobra wiring: the login
// state in $SIGNET_HOME, docker's config.json and its credential helpers, the
// Docker token-endpoint client (challenge discovery, password and refresh-token
// grants), and the client of trustd's management API.
//
// Invariant: credentials only ever leave this package towards the server that
// issued them or the credential store the user configured; files holding them are
// written 0600 in directories created 0700, and nothing here logs them.
package client
