// Package signed is trustctl's signed transfers: push (an OCI layout or an
// archive) and copy (an image of any registry) into an enforced repository,
// in the order the registry's gate admits — blobs, then the signed target,
// then the manifests, then the cosign signature artifact — and verify and pull
// through the trust graph with the pinned root: the target exists and is fresh,
// the manifest is that digest and length, every child of an index is in the
// target's closure, and every blob is its digest as it streams.
//
// Invariant: the registry is never trusted. What is verified is what the
// trust graph says; the registry only carries bytes, each checked as it is read.
package signed
