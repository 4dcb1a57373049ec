// Package verify is Signet's TUF client: it verifies the trust graph that trustd
// serves, from a pinned root.json down through the targets, organisation and
// repository roles, with go-tuf's updater, and answers what a tag or a digest of a
// repository is signed as.
//
// It is shared by trustctl (Client) and the registry's admission gate (Index).
//
// Invariants: every answer comes from metadata verified in this call, against the
// pinned root or a newer root reached from it through the root chain; the local
// cache only ever holds metadata that go-tuf verified, and it protects against
// rollback (a client that has seen version N refuses N-1); errors are one of
// ErrNotSigned, ErrExpired, ErrUnreachable or ErrInvalidMetadata (errors.Is),
// wrapping the cause.
//
// It also checks signed referrers (CheckReferrer, referrer.go), the artifacts
// signers attach to an image, more strictly than their own clients do: cosign
// signatures (cosign.go, cosignshape.go) and attestations (attestation.go),
// Sigstore bundles (bundle.go) and notation signatures (notation.go), each in
// the exact shape its signer writes, each signature by a key the trust graph
// delegates for the repository, over the subject's digest (and the
// repository's name where the format carries one); and the unsigned
// referrers-tag index clients keep beside them (referrersindex.go). Their
// errors say what is wrong with the artifact, for the gate's denials. Keys are
// passed as Keys, so go-tuf's key records stay inside this package.
package verify
