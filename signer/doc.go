// Package signer holds Signet's signing keys and signs TUF metadata with them.
//
// Keys live in a KeyStore: NewFileKeyStore keeps them in a directory (by default
// $SIGNET_HOME/keys), each private key encrypted at rest in sigstore's encrypted PEM
// format, so cosign reads the same file with the same passphrase. A key's TUF key ID
// is go-tuf's (metadata.KeyFromPublicKey(pub).ID()), and SignMetadata signs with the
// scheme TUF names for the key: ECDSA P-256 with SHA-256 ("ecdsa-sha2-nistp256").
//
// The invariant: a private key never touches the disk unencrypted, and a key file,
// once written, is never replaced (Generate refuses a name that exists).
//
// The role-name and path helpers (RoleNameForOrg, OrgPaths, TargetPath, ...) build
// the names DESIGN.md §2 fixes, so trustd, verify and trustctl agree on them.
//
// This package knows nothing of HTTP.
package signer
