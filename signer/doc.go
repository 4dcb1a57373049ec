// Package signer holds Signet's signing keys and signs with them: TUF metadata for
// the trust graph, and cosign-compatible signature artifacts for images.
//
// Keys live in a KeyStore: NewFileKeyStore keeps them in a directory (by default
// $SIGNET_HOME/keys), each private key encrypted at rest in sigstore's encrypted PEM
// format, so cosign reads the same file with the same passphrase. Keys are ECDSA
// P-256 (the default), Ed25519 or RSA 3072; a key cosign generated is brought in
// with ParseCosignPrivateKey and KeyStore.Import. A key's TUF key ID is go-tuf's
// (metadata.KeyFromPublicKey(pub).ID()), and a key signs with exactly one scheme,
// the one TUF names for it: "ecdsa-sha2-nistp256", "ed25519" (pure, not
// Ed25519ph), "rsassa-pss-sha256".
//
// SignCosign writes the signature manifest cosign itself writes (cosign.go
// describes the layout and declares its format: media types, the signature
// annotation, the payload, the derived config, the signature tag). Checking one
// is the verify package's (verify.CosignArtifact), which reads the format from
// here and the signature scheme of each key type from SchemeVerifier, so what is
// written and what is accepted cannot drift apart.
//
// The invariant: a private key never touches the disk unencrypted, and a key file,
// once written, is never replaced (Generate refuses a name that exists).
//
// It signs the metadata it is given and names no role itself: the names of the
// trust graph (role names, delegation paths, target paths) are the trustnames
// package's, which trustd, verify and trustctl all use.
//
// This package knows nothing of HTTP.
package signer
