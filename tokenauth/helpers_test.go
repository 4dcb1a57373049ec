package tokenauth_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/signet-oss/signet/tokenauth"
)

const (
	testIssuer   = "signet-trustd"
	testAudience = "signet-registry"
)

// t0 is the fixed "now" of the tests.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture is a trusted key, an issuer signing with it and a verifier trusting it, on a
// clock the test moves.
type fixture struct {
	key      *tokenauth.SigningKey
	priv     *ecdsa.PrivateKey // key's private half, for hand-made tokens
	issuer   *tokenauth.Issuer
	verifier *tokenauth.Verifier
	now      time.Time
}

func newFixture(t testing.TB, extra ...jose.JSONWebKey) *fixture {
	t.Helper()
	key, err := tokenauth.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{key: key, priv: privateKey(t, key), now: t0}
	clock := func() time.Time { return f.now }
	f.issuer = &tokenauth.Issuer{Name: testIssuer, Key: key, Now: clock}
	set := tokenauth.JWKS(key)
	set.Keys = append(set.Keys, extra...)
	f.verifier = tokenauth.NewVerifier(testIssuer, testAudience, tokenauth.StaticKeySet(set))
	f.verifier.Now = clock
	return f
}

func privateKey(t testing.TB, k *tokenauth.SigningKey) *ecdsa.PrivateKey {
	t.Helper()
	pemBytes, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return priv.(*ecdsa.PrivateKey)
}

func pullAccess(name string) []tokenauth.Access {
	return []tokenauth.Access{{Type: "repository", Name: name, Actions: []string{"pull"}}}
}

// issue returns a token the fixture's issuer signs for the test audience.
func (f *fixture) issue(t testing.TB) string {
	t.Helper()
	tok, _, err := f.issuer.Issue("alice", testAudience, pullAccess("acme/app"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// validClaims are claims the verifier accepts at t0.
func validClaims() map[string]any {
	return map[string]any{
		"iss":    testIssuer,
		"sub":    "alice",
		"aud":    testAudience,
		"iat":    t0.Unix(),
		"nbf":    t0.Unix(),
		"exp":    t0.Add(5 * time.Minute).Unix(),
		"jti":    "test",
		"access": pullAccess("acme/app"),
	}
}

// sign signs claims with key under alg, with the given protected header parameters
// (kid among them, if wanted).
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, headers map[string]any, claims any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	for k, v := range headers {
		opts.WithHeader(jose.HeaderKey(k), v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsigned returns an "alg: none" token.
func unsigned(t testing.TB, kid string, claims any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": kid})
	p, _ := json.Marshal(claims)
	return b64(h) + "." + b64(p) + "."
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
