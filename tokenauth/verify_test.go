package tokenauth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/signet-oss/signet/tokenauth"
)

func TestVerifyRejectsAttacks(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const rsaKID = "rsa-key"
	rsaJWK := jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: rsaKID, Algorithm: string(jose.RS256), Use: "sig"}
	f := newFixture(t, rsaJWK)
	kid := f.key.KeyID()

	untrusted, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&f.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pubJWK, err := json.Marshal(f.key.PublicJWK())
	if err != nil {
		t.Fatal(err)
	}

	with := func(change func(c map[string]any)) map[string]any {
		c := validClaims()
		change(c)
		return c
	}
	es256 := func(headers map[string]any, claims map[string]any) string {
		return sign(t, jose.ES256, f.priv, headers, claims)
	}
	kidOnly := map[string]any{"kid": kid, "typ": "JWT"}
	valid := es256(kidOnly, validClaims())
	parts := strings.Split(valid, ".")

	reencoded := func() string {
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatal(err)
		}
		c["access"] = []tokenauth.Access{{Type: "repository", Name: "acme/app", Actions: []string{"*"}}}
		p, _ := json.Marshal(c)
		return parts[0] + "." + b64(p) + "." + parts[2]
	}()

	bigAccess := make([]tokenauth.Access, 200)
	for i := range bigAccess {
		bigAccess[i] = tokenauth.Access{Type: "repository", Name: "acme/app-with-a-long-name", Actions: []string{"pull"}}
	}

	tests := []struct {
		name  string
		token string
		why   string // a fragment of the error
	}{
		{"an alg none token is rejected", unsigned(t, kid, validClaims()), "none"},
		{"an HS256 token keyed with the public key PEM is rejected",
			sign(t, jose.HS256, pubPEM, kidOnly, validClaims()), "HS256"},
		{"an HS256 token keyed with the public JWK is rejected",
			sign(t, jose.HS256, pubJWK, kidOnly, validClaims()), "HS256"},
		{"an ES256 token from an untrusted key with the trusted kid is rejected",
			sign(t, jose.ES256, untrusted, kidOnly, validClaims()), "signature"},
		{"an ES256 token with a kid not in the set is rejected",
			sign(t, jose.ES256, untrusted, map[string]any{"kid": "attacker"}, validClaims()), "unknown key"},
		{"a token without a kid is rejected",
			es256(map[string]any{"typ": "JWT"}, validClaims()), "kid"},
		{"a token embedding the attacker's key as jwk is rejected",
			sign(t, jose.ES256, untrusted, map[string]any{"kid": kid, "jwk": jose.JSONWebKey{Key: &untrusted.PublicKey}}, validClaims()), "jwk"},
		{"a token embedding even the trusted key as jwk is rejected",
			es256(map[string]any{"kid": kid, "jwk": f.key.PublicJWK()}, validClaims()), "jwk"},
		{"a token with a jku header is rejected",
			es256(map[string]any{"kid": kid, "jku": "https://attacker.example/jwks.json"}, validClaims()), "jku"},
		{"a token with an x5u header is rejected",
			es256(map[string]any{"kid": kid, "x5u": "https://attacker.example/cert.pem"}, validClaims()), "x5u"},
		{"a token with a crit header is rejected",
			es256(map[string]any{"kid": kid, "crit": []string{"exp"}}, validClaims()), "crit"},
		{"a token typed other than JWT is rejected",
			es256(map[string]any{"kid": kid, "typ": "at+jwt+other"}, validClaims()), "typ"},
		{"a token for another audience is rejected",
			es256(kidOnly, with(func(c map[string]any) { c["aud"] = "trustd" })), "audience"},
		{"a token without an audience is rejected",
			es256(kidOnly, with(func(c map[string]any) { delete(c, "aud") })), "audience"},
		{"a token from another issuer is rejected",
			es256(kidOnly, with(func(c map[string]any) { c["iss"] = "evil" })), "issuer"},
		{"an expired token is rejected",
			es256(kidOnly, with(func(c map[string]any) { c["exp"] = t0.Add(-31 * time.Second).Unix() })), "expired"},
		{"a token without exp is rejected",
			es256(kidOnly, with(func(c map[string]any) { delete(c, "exp") })), "exp"},
		{"a token whose nbf is in the future is rejected",
			es256(kidOnly, with(func(c map[string]any) { c["nbf"] = t0.Add(time.Minute).Unix() })), "not valid before"},
		{"a token issued in the future is rejected",
			es256(kidOnly, with(func(c map[string]any) { c["iat"] = t0.Add(time.Hour).Unix() })), "future"},
		{"a token with a non-numeric exp is rejected",
			es256(kidOnly, with(func(c map[string]any) { c["exp"] = "tomorrow" })), "claims"},
		{"a token with many dots is rejected", valid + ".." + parts[2], "3 dot-separated parts"},
		{"a token with one dot is rejected", parts[0] + "." + parts[1], "3 dot-separated parts"},
		{"an empty token is rejected", "", "3 dot-separated parts"},
		{"an oversized token is rejected",
			es256(kidOnly, with(func(c map[string]any) { c["access"] = bigAccess })), "longer than"},
		{"a JSON-serialised JWS is rejected", `{"payload":"a.b","signatures":[{"protected":"c.d"}]}`, "base64url"},
		{"a token with padding is rejected", parts[0] + "=." + parts[1] + "." + parts[2], "base64url"},
		{"a token with a truncated signature is rejected", valid[:len(valid)-8], "signature"},
		{"a token without a signature is rejected", parts[0] + "." + parts[1] + ".", "signature"},
		{"a valid token whose payload was re-encoded is rejected", reencoded, "signature"},
		{"an RS256 token from an RS256 key in the set is rejected (alg pinning)",
			sign(t, jose.RS256, rsaKey, map[string]any{"kid": rsaKID}, validClaims()), "RS256"},
		{"a PS256 token from an RSA key in the set is rejected (alg pinning)",
			sign(t, jose.PS256, rsaKey, map[string]any{"kid": rsaKID}, validClaims()), "PS256"},
		{"an ES256 token naming the RSA key is rejected",
			es256(map[string]any{"kid": rsaKID}, validClaims()), "not ES256"},
		{"an ES384 token is rejected",
			sign(t, jose.ES384, mustP384(t), kidOnly, validClaims()), "ES384"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.token) > tokenauth.MaxTokenBytes && tt.why != "longer than" {
				t.Fatalf("test token is %d bytes, over the limit", len(tt.token))
			}
			claims, err := f.verifier.Verify(context.Background(), tt.token)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", claims)
			}
			t.Log(err)
			if !errors.Is(err, tokenauth.ErrInvalidToken) {
				t.Errorf("error %q does not wrap ErrInvalidToken", err)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("error %q does not say %q", err, tt.why)
			}
			if len(tt.token) > 40 && strings.Contains(err.Error(), tt.token[len(tt.token)-40:]) {
				t.Errorf("error %q echoes the token", err)
			}
		})
	}
	// The untouched token passes, so every rejection above is for its own reason.
	if _, err := f.verifier.Verify(context.Background(), valid); err != nil {
		t.Fatalf("the valid hand-made token is rejected: %v", err)
	}
}

func mustP384(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyRejectsAKeyWhoseOwnAlgIsNotES256(t *testing.T) {
	key, err := tokenauth.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	jwk := key.PublicJWK()
	jwk.Algorithm = string(jose.ES384)
	v := tokenauth.NewVerifier(testIssuer, testAudience, tokenauth.StaticKeySet(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}}))
	v.Now = func() time.Time { return t0 }
	tok, _, err := (&tokenauth.Issuer{Name: testIssuer, Key: key, Now: v.Now}).Issue("alice", testAudience, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, tokenauth.ErrInvalidToken) || !strings.Contains(err.Error(), "not ES256") {
		t.Fatalf("Verify = %v, want a rejection for the key's alg", err)
	}
}

func TestVerifyAcceptsAndCaches(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		advance time.Duration // clock moves between issuing and the second Verify
		wantErr string
	}{
		{"a cached token verifies again", time.Second, ""},
		{"a cached token within the leeway after exp still verifies", 5*time.Minute + 29*time.Second, ""},
		{"a cached token past exp is rejected", 5*time.Minute + 31*time.Second, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tok, issued, err := f.issuer.Issue("alice", testAudience, pullAccess("acme/app"))
			if err != nil {
				t.Fatal(err)
			}
			first, err := f.verifier.Verify(ctx, tok)
			if err != nil {
				t.Fatalf("a fresh token is rejected: %v", err)
			}
			if first.Subject != "alice" || first.ID != issued.ID || !first.Allows("repository", "acme/app", "pull") {
				t.Fatalf("claims = %+v, want those issued (%+v)", first, issued)
			}
			f.now = f.now.Add(tt.advance)
			second, err := f.verifier.Verify(ctx, tok)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("second Verify: %v", err)
				}
				if second != first {
					t.Errorf("second Verify did not come from the cache")
				}
				return
			}
			if !errors.Is(err, tokenauth.ErrInvalidToken) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("second Verify = %v, want %q", err, tt.wantErr)
			}
			// And still after the cache dropped it.
			if _, err := f.verifier.Verify(ctx, tok); err == nil {
				t.Fatal("third Verify accepted an expired token")
			}
		})
	}
}

func TestIssueWritesTheHeaderAndClaimsTheSpecAsks(t *testing.T) {
	f := newFixture(t)
	f.issuer.TTL = 2 * time.Minute
	tok, claims, err := f.issuer.Issue("acme+ci-bot", testAudience, pullAccess("acme/app"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	var header, payload map[string]any
	decode := func(s string, into *map[string]any) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatal(err)
		}
	}
	decode(parts[0], &header)
	decode(parts[1], &payload)
	wantHeader := map[string]any{"alg": "ES256", "typ": "JWT", "kid": f.key.KeyID()}
	if len(header) != len(wantHeader) {
		t.Errorf("header = %v, want %v", header, wantHeader)
	}
	for k, v := range wantHeader {
		if header[k] != v {
			t.Errorf("header[%s] = %v, want %v", k, header[k], v)
		}
	}
	if payload["aud"] != testAudience {
		t.Errorf("aud = %v, want the single audience as a string", payload["aud"])
	}
	if claims.IssuedAt != t0.Unix() || claims.NotBefore != claims.IssuedAt || claims.Expiry != t0.Add(2*time.Minute).Unix() {
		t.Errorf("iat/nbf/exp = %d/%d/%d, want %d/%d/%d", claims.IssuedAt, claims.NotBefore, claims.Expiry, t0.Unix(), t0.Unix(), t0.Add(2*time.Minute).Unix())
	}
	if jti, err := base64.RawURLEncoding.DecodeString(claims.ID); err != nil || len(jti) != 16 {
		t.Errorf("jti %q is not 128 bits in base64url", claims.ID)
	}
	if _, other, _ := f.issuer.Issue("acme+ci-bot", testAudience, nil); other.ID == claims.ID {
		t.Error("two tokens share a jti")
	}
	access, ok := payload["access"].([]any)
	if !ok || len(access) != 1 {
		t.Fatalf("access = %v", payload["access"])
	}
	if _, empty, _ := f.issuer.Issue("anon", testAudience, nil); empty.Access == nil {
		t.Error("no access is not an empty list")
	}
}

func TestSigningKeyRoundTripsThroughPEMAndKeepsItsKeyID(t *testing.T) {
	key, err := tokenauth.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := key.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(pemBytes), "-----BEGIN PRIVATE KEY-----") {
		t.Errorf("MarshalPEM wrote %q, want a PKCS#8 block", strings.SplitN(string(pemBytes), "\n", 2)[0])
	}
	again, err := tokenauth.ParseSigningKeyPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if again.KeyID() != key.KeyID() {
		t.Errorf("KeyID changed from %s to %s", key.KeyID(), again.KeyID())
	}
	jwk := key.PublicJWK()
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(tp); got != key.KeyID() {
		t.Errorf("KeyID %s is not the RFC 7638 thumbprint %s", key.KeyID(), got)
	}
	if jwk.Algorithm != "ES256" || jwk.Use != "sig" || jwk.KeyID != key.KeyID() || !jwk.IsPublic() {
		t.Errorf("PublicJWK = %+v", jwk)
	}
	set, err := json.Marshal(tokenauth.JWKS(key, again))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(set), `"d"`) {
		t.Errorf("JWKS leaks the private key: %s", set)
	}

	for _, bad := range []struct{ name, pem string }{
		{"no PEM at all is rejected", "hello"},
		{"an RSA key is rejected", string(rsaPEM(t))},
		{"a public key block is rejected", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			if _, err := tokenauth.ParseSigningKeyPEM([]byte(bad.pem)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func rsaPEM(t *testing.T) []byte {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
