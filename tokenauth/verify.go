package tokenauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ErrInvalidToken is wrapped by every error Verify returns.
var ErrInvalidToken = errors.New("invalid token")

// Limits of Verify.
const (
	// MaxTokenBytes is the longest token Verify parses.
	MaxTokenBytes = 8 << 10
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway = 30 * time.Second
	// DefaultCacheEntries bounds the verified-token cache of a Verifier.
	DefaultCacheEntries = 100_000

	leewaySeconds = int64(Leeway / time.Second)
)

// acceptedAlgs is the only algorithm a token may be signed with; go-jose rejects any
// other "alg" (none, HS256, RS256, ...) while parsing.
var acceptedAlgs = []jose.SignatureAlgorithm{jose.ES256}

// Verifier checks access tokens offline against a KeySet. It is safe for concurrent
// use.
type Verifier struct {
	// Now is the clock (default time.Now). Set it, if at all, before the first Verify.
	Now func() time.Time

	issuer   string
	audience string
	keys     KeySet
	cache    *tokenCache
}

// NewVerifier checks tokens: compact JWS only, alg pinned to ES256 (and the key's own
// alg), kid must name a key of the set (never trust jwk/jku/x5u/x5c headers), iss ==
// issuer, audience contains audience, exp/nbf with leeway 30s, at most 8 KiB, exactly
// 2 dots. Verified tokens are cached by sha256(token) until their exp (at most
// DefaultCacheEntries of them), so a repeat costs a hash and a map lookup.
func NewVerifier(issuer, audience string, keys KeySet) *Verifier {
	return &Verifier{
		Now:      time.Now,
		issuer:   issuer,
		audience: audience,
		keys:     keys,
		cache:    newTokenCache(DefaultCacheEntries),
	}
}

// Verify returns the claims of a valid token, or an error wrapping ErrInvalidToken
// that says why it is not (and never repeats the token). The claims returned may be
// shared with other callers of Verify: treat them as read-only.
//
// A cache hit checks exp again but not the key set: a token stays valid until its
// exp (at most one token lifetime) even if its key leaves the set meanwhile.
// Rejections are not cached.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, MaxTokenBytes)
	}
	if strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: not a compact JWS (want 3 dot-separated parts)", ErrInvalidToken)
	}
	if !isCompactJWSAlphabet(token) {
		return nil, fmt.Errorf("%w: not a compact JWS (characters outside base64url)", ErrInvalidToken)
	}
	now := v.now()
	key := sha256.Sum256([]byte(token))
	if claims := v.cache.get(&key); claims != nil {
		if err := checkExpiry(claims, now); err != nil {
			v.cache.remove(&key)
			return nil, err
		}
		return claims, nil
	}
	claims, err := v.verify(ctx, token, now)
	if err != nil {
		return nil, err
	}
	v.cache.put(&key, claims, now)
	return claims, nil
}

func (v *Verifier) now() int64 {
	if v.Now == nil {
		return time.Now().Unix()
	}
	return v.Now().Unix()
}

// verify is Verify without the cache.
func (v *Verifier) verify(ctx context.Context, token string, now int64) (*Claims, error) {
	tok, err := jwt.ParseSigned(token, acceptedAlgs)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidToken, clip(err.Error(), 160))
	}
	if len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: %d signatures, want 1", ErrInvalidToken, len(tok.Headers))
	}
	h := tok.Headers[0]
	if err := checkHeader(h); err != nil {
		return nil, err
	}
	jwk, err := v.keys.Key(ctx, h.KeyID)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	pub, err := es256Key(jwk)
	if err != nil {
		return nil, err
	}
	claims := new(Claims)
	if err := tok.Claims(pub, claims); err != nil {
		if errors.Is(err, jose.ErrCryptoFailure) {
			return nil, fmt.Errorf("%w: the signature does not verify with key %q", ErrInvalidToken, clip(h.KeyID, 64))
		}
		return nil, fmt.Errorf("%w: claims: %s", ErrInvalidToken, clip(err.Error(), 160))
	}
	if claims.Issuer != v.issuer {
		return nil, fmt.Errorf("%w: issuer %q, want %q", ErrInvalidToken, clip(claims.Issuer, 64), v.issuer)
	}
	if !claims.Audience.Contains(v.audience) {
		return nil, fmt.Errorf("%w: audience is not %q", ErrInvalidToken, v.audience)
	}
	if err := checkExpiry(claims, now); err != nil {
		return nil, err
	}
	if claims.NotBefore > now+leewaySeconds {
		return nil, fmt.Errorf("%w: not valid before %s", ErrInvalidToken, unix(claims.NotBefore))
	}
	if claims.IssuedAt > now+leewaySeconds {
		return nil, fmt.Errorf("%w: issued in the future, at %s", ErrInvalidToken, unix(claims.IssuedAt))
	}
	return claims, nil
}

// checkExpiry rejects claims without exp or past it (beyond the leeway).
func checkExpiry(c *Claims, now int64) error {
	if c.Expiry == 0 {
		return fmt.Errorf("%w: no exp claim", ErrInvalidToken)
	}
	if now-leewaySeconds > c.Expiry {
		return fmt.Errorf("%w: expired at %s", ErrInvalidToken, unix(c.Expiry))
	}
	return nil
}

func unix(sec int64) string { return time.Unix(sec, 0).UTC().Format(time.RFC3339) }

// checkHeader accepts only the header parameters Issuer writes: alg (already pinned
// by the parser), kid and typ. Anything that could carry or point at a key (jwk, jku,
// x5u, x5c, x5t) or change how the token is read (crit, b64, zip) is refused.
func checkHeader(h jose.Header) error {
	if h.Algorithm != string(jose.ES256) {
		return fmt.Errorf("%w: alg %q, want ES256", ErrInvalidToken, clip(h.Algorithm, 16))
	}
	if h.JSONWebKey != nil {
		return fmt.Errorf("%w: the header embeds a key (jwk); keys come only from the key set", ErrInvalidToken)
	}
	if _, err := h.Certificates(x509.VerifyOptions{}); !errors.Is(err, jose.ErrMissingX5cHeader) {
		return fmt.Errorf("%w: the header carries certificates (x5c); keys come only from the key set", ErrInvalidToken)
	}
	if h.Nonce != "" {
		return fmt.Errorf("%w: unexpected header parameter \"nonce\"", ErrInvalidToken)
	}
	for name, value := range h.ExtraHeaders {
		if name != jose.HeaderType {
			return fmt.Errorf("%w: unexpected header parameter %q", ErrInvalidToken, clip(string(name), 16))
		}
		if typ, ok := value.(string); !ok || !strings.EqualFold(typ, "JWT") {
			return fmt.Errorf("%w: typ is not JWT", ErrInvalidToken)
		}
	}
	if h.KeyID == "" {
		return fmt.Errorf("%w: no kid in the header", ErrInvalidToken)
	}
	return nil
}

// es256Key returns the P-256 public key of a key-set entry whose own alg, if set, is
// ES256.
func es256Key(k *jose.JSONWebKey) (*ecdsa.PublicKey, error) {
	if k.Algorithm != "" && k.Algorithm != string(jose.ES256) {
		return nil, fmt.Errorf("%w: key %q is for %q, not ES256", ErrInvalidToken, clip(k.KeyID, 64), clip(k.Algorithm, 16))
	}
	if k.Use != "" && k.Use != "sig" {
		return nil, fmt.Errorf("%w: key %q is not a signing key", ErrInvalidToken, clip(k.KeyID, 64))
	}
	var pub *ecdsa.PublicKey
	switch key := k.Key.(type) {
	case *ecdsa.PublicKey:
		pub = key
	case *ecdsa.PrivateKey:
		pub = &key.PublicKey
	}
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: key %q is not a P-256 key", ErrInvalidToken, clip(k.KeyID, 64))
	}
	return pub, nil
}

// isCompactJWSAlphabet reports whether s holds only base64url characters and dots,
// so that JSON serialisations, whitespace and padding never reach the parser.
func isCompactJWSAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
