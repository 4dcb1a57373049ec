// Package e2e holds Signet's end-to-end tests: they build the real registry binary,
// start it on loopback with an OS-chosen port and a fresh data directory, and drive it
// with real clients (the OCI conformance suite, crane, oras, regctl, skopeo, docker)
// and with raw HTTP for concurrency and crash (kill -9) checks.
//
// The tests run against Signet's binary. Setting SIGNET_E2E_REFERENCE=1 runs them
// against the reference registry (CNCF Distribution) instead, which is how the harness
// itself is checked.
package e2e
