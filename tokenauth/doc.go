// Package tokenauth is the token format shared by the token service (trustd), which
// issues tokens, and the registry, which verifies them offline: the Docker registry
// token specification (distribution's docs/spec/auth token.md, jwt.md, scope.md) as
// JWTs signed with ES256 through go-jose.
//
// It holds the scope grammar (ParseScopes, Access), the claims of an
// access token (Claims), signing keys and their public JWK sets (SigningKey, JWKS),
// issuing (Issuer), the key sets a verifier trusts (StaticKeySet, FileKeySet,
// RemoteKeySet) and verification (Verifier), and the proxy secret that
// authenticates the registry's /token hop to the token service
// (ProxySecretHeader). It knows nothing of HTTP routing.
//
// Invariants a change must keep:
//   - A token is accepted only if it is a compact JWS of at most 8 KiB, signed ES256
//     (the algorithm is pinned when parsing, and the key's own "alg", if set, must
//     agree) by the key its "kid" names in the verifier's KeySet. Key material in the
//     token itself ("jwk", "jku", "x5u", "x5c", ...) is never used: such a token is
//     rejected.
//   - "iss" must equal the verifier's issuer, "aud" must contain its audience, and
//     "exp", "nbf" and "iat" must hold with a leeway of 30 seconds, also when the
//     verification comes from the cache.
//   - Every rejection wraps ErrInvalidToken (ErrInvalidScope for scopes) and says why,
//     without echoing the token.
//   - The package holds no mutable state of its own: caches live in the values that
//     own them (a Verifier, a KeySet), and each is safe for concurrent use.
package tokenauth
