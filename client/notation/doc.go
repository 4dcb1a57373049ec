// Package notation is trustctl's side of notation (the Notary Project CLI): a
// code-signing certificate per Signet key, the notation plugin protocol
// answered with Signet's key store (cmd/notation-signet), and the notation
// trust store and trust policy written from the trust graph.
//
// Notation trusts X.509 certificates; the trust graph delegates raw public
// keys. The bridge is one self-signed certificate per key, which carries the
// key and nothing the gate relies on: the registry takes the leaf certificate
// from a notation envelope, requires its public key's TUF key ID to be
// delegated for the repository, and ignores issuer and subject. For `notation
// verify` on its own, WriteTrustPolicy puts in a repository's trust store the
// certificates of exactly the keys delegated for it now.
//
// Invariants:
//   - a private key is used only inside this process, loaded from the key store
//     (its passphrase from SIGNET_PASSPHRASE, a file, or the terminal), and never
//     written anywhere;
//   - a certificate is trusted for a repository only when its public key's TUF
//     key ID is one the verified trust graph delegates the repository to, wherever
//     the certificate was read from (the key store, or another signer's
//     signature in the registry).
//
// Files, besides the key store's own (package signer):
//
//	$SIGNET_HOME/keys/<name>.crt   the key's certificate (PEM), made once with the
//	                               key and kept, so notation sees the same one
//	                               every time
//	$NOTATION_CONFIG/              notation's configuration directory
//	├── trustpolicy.json           one statement per repository written, named
//	│                              "signet:<host>/<repo>"; others are kept
//	└── truststore/x509/ca/<store>/<TUF key ID>.crt
//	                               one store per repository (StoreName)
package notation
