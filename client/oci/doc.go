// Package oci is trustctl's OCI registry client, on plain net/http: it reads
// images from an OCI image layout or a tarball (an OCI archive or `docker save`
// output), pushes them (blobs in parallel, skipping those the registry has,
// mounting across repositories of the same registry, resuming broken uploads;
// then manifests, children before the index that lists them), and pulls them
// into an OCI image layout.
//
// Invariant: nothing read from a registry is trusted. Every manifest and blob is
// hashed and counted as it streams, and a reader returns ErrContentMismatch
// instead of EOF when the bytes are not the digest and length asked for; a pull
// writes a blob under its digest only once it has checked it, and writes the
// layout's index.json last, so a failed pull never leaves a layout that names
// unchecked content.
package oci
