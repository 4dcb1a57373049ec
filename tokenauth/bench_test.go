package tokenauth_test

import (
	"context"
	"testing"
)

// BenchmarkVerifyUncached is the registry's cost for a token it has not seen: each
// iteration verifies a different token (issued before the timer starts).
func BenchmarkVerifyUncached(b *testing.B) {
	f := newFixture(b)
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i] = f.issue(b)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.verifier.Verify(ctx, tokens[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCached is the cost of a repeat: hash, lookup, expiry check.
func BenchmarkVerifyCached(b *testing.B) {
	f := newFixture(b)
	tok := f.issue(b)
	ctx := context.Background()
	if _, err := f.verifier.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.verifier.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCachedParallel is the cached path under concurrent requests.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	f := newFixture(b)
	tokens := make([]string, 64)
	ctx := context.Background()
	for i := range tokens {
		tokens[i] = f.issue(b)
		if _, err := f.verifier.Verify(ctx, tokens[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := f.verifier.Verify(ctx, tokens[i%len(tokens)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkIssue is the signing cost of one access token.
func BenchmarkIssue(b *testing.B) {
	f := newFixture(b)
	access := pullAccess("acme/app")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := f.issuer.Issue("alice", testAudience, access); err != nil {
			b.Fatal(err)
		}
	}
}
