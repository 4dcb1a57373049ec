package requestid

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFromRequest(t *testing.T) {
	tests := []struct {
		name, header string
		kept         bool
	}{
		{"a caller's printable ID is kept", "build-42/step-3", true},
		{"an empty header gets a new ID", "", false},
		{"an ID with a newline is replaced", "abc\ninjected=1", false},
		{"an ID with a quote is replaced", `a"b`, false},
		{"an overlong ID is replaced", strings.Repeat("x", maxLen+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.header != "" {
				r.Header.Set(Header, tt.header)
			}
			got := NewSource().FromRequest(r)
			if tt.kept != (got == tt.header) {
				t.Fatalf("FromRequest = %q with header %q, kept want %v", got, tt.header, tt.kept)
			}
			if !valid(got) {
				t.Fatalf("FromRequest returned an invalid ID %q", got)
			}
		})
	}
}

func TestContextRoundTrip(t *testing.T) {
	ctx := NewContext(context.Background(), "r1")
	if FromContext(ctx) != "r1" || FromContext(context.Background()) != "" {
		t.Fatal("the ID does not travel in the context")
	}
	req := httptest.NewRequest("GET", "/", nil)
	Set(ctx, req)
	if req.Header.Get(Header) != "r1" {
		t.Fatalf("Set put %q", req.Header.Get(Header))
	}
}

func TestNewIsUnique(t *testing.T) {
	seen := map[string]bool{}
	a, b := NewSource(), NewSource()
	for range 5000 {
		for _, id := range []string{a.New(), b.New()} {
			if seen[id] || !valid(id) {
				t.Fatalf("New returned %q twice or invalid", id)
			}
			seen[id] = true
		}
	}
}

func BenchmarkNew(b *testing.B) {
	s := NewSource()
	for b.Loop() {
		s.New()
	}
}
