package tokenauth_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/signet-oss/signet/tokenauth"
)

// FuzzParseScopes checks that ParseScopes never panics, fails only with
// ErrInvalidScope, and that what it accepts reads back the same from its Scope form.
func FuzzParseScopes(f *testing.F) {
	for _, s := range []string{
		"repository:acme/app:pull,push",
		"repository(plugin):acme/app:pull repository:acme/app:push",
		"registry:catalog:*",
		"repository:acme/../x:pull",
		"repository:acme/app:",
		":::",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		got, err := tokenauth.ParseScopes([]string{value})
		if err != nil {
			if !errors.Is(err, tokenauth.ErrInvalidScope) {
				t.Fatalf("error %q does not wrap ErrInvalidScope", err)
			}
			return
		}
		scopes := make([]string, len(got))
		for i, a := range got {
			if len(a.Actions) == 0 {
				t.Fatalf("%q gave an entry without actions: %+v", value, a)
			}
			scopes[i] = a.Scope()
		}
		again, err := tokenauth.ParseScopes([]string{strings.Join(scopes, " ")})
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("%q: %+v reads back as %+v, %v", value, got, again, err)
		}
	})
}

// FuzzVerify checks that Verify never panics and rejects anything but tokens the
// trusted key signed, with ErrInvalidToken.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	valid := fx.issue(f)
	parts := strings.Split(valid, ".")
	for _, s := range []string{
		valid,
		unsigned(f, fx.key.KeyID(), validClaims()),
		parts[0] + "." + parts[1] + ".",
		parts[0] + ".." + parts[2],
		"..",
		"a.b.c",
		"eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
	} {
		f.Add(s)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := fx.verifier.Verify(ctx, token)
		if err != nil {
			if !errors.Is(err, tokenauth.ErrInvalidToken) {
				t.Fatalf("error %q does not wrap ErrInvalidToken", err)
			}
			return
		}
		// Only the token the fixture issued carries its claims; a token that differs
		// and still verifies would be a forgery (or a re-encoding of the same JWS).
		if claims.Subject != "alice" || claims.Issuer != testIssuer {
			t.Fatalf("accepted claims %+v", claims)
		}
	})
}
