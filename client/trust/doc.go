// Package trust is trustctl's side of the trust graph: the ceremony that creates a
// deployment's root (init, and the development root of `trustctl up`), pinning a
// registry's root (trust add), organisations and their delegations, signing
// targets, and key rotation. It builds each new role version from the version the
// TUF client (package verify) has just verified, signs it with keys from a
// signer.KeyStore, and publishes it through trustd's API; trustd validates and
// commits it.
//
// Invariant: nothing is built on unverified metadata. A role that no longer
// verifies (its key was revoked) is never carried over into a new version.
//
// Local state, under $SIGNET_HOME:
//
//	trust/<registry host:port>/
//	├── root.json      the pinned root (trust add, init, up)
//	└── metadata/      the TUF client's cache of verified metadata
//	keys/              the key store (package signer)
package trust
