package tokenauth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DefaultTTL is how long an access token lives when Issuer.TTL is zero.
const DefaultTTL = 5 * time.Minute

// Issuer signs access tokens. Its fields are read on every Issue; set them before use.
type Issuer struct {
	Name string           // the "iss" claim
	Key  *SigningKey      // signs every token; its KeyID is the "kid" header
	TTL  time.Duration    // default 5 minutes
	Now  func() time.Time // default time.Now
}

// Issue signs a token for subject and audience with the given access: ES256, header
// kid and typ JWT; iat = nbf = now, exp = now + TTL, jti 128 random bits. The claims
// returned are those signed. An empty subject is allowed (anonymous).
func (i *Issuer) Issue(subject, audience string, access []Access) (token string, claims *Claims, err error) {
	if i.Key == nil {
		return "", nil, errors.New("issue token: no signing key")
	}
	if i.Name == "" || audience == "" {
		return "", nil, errors.New("issue token: issuer name and audience are required")
	}
	now := time.Now
	if i.Now != nil {
		now = i.Now
	}
	ttl := i.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", nil, fmt.Errorf("issue token: %w", err)
	}
	iat := now().Unix()
	claims = &Claims{
		Issuer:    i.Name,
		Subject:   subject,
		Audience:  jwt.Audience{audience},
		IssuedAt:  iat,
		NotBefore: iat,
		Expiry:    iat + int64(ttl/time.Second),
		ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
		Access:    copyAccess(access),
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: i.Key.priv, KeyID: i.Key.kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return "", nil, fmt.Errorf("issue token: %w", err)
	}
	token, err = jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", nil, fmt.Errorf("issue token: %w", err)
	}
	return token, claims, nil
}

// copyAccess copies access so the claims do not alias the caller's slices, and makes
// empty lists serialise as [] rather than null.
func copyAccess(access []Access) []Access {
	out := make([]Access, len(access))
	for i, a := range access {
		out[i] = Access{Type: a.Type, Name: a.Name, Actions: append([]string{}, a.Actions...)}
		if a.Patterns != nil {
			out[i].Patterns = append([]string{}, a.Patterns...)
		}
	}
	return out
}
