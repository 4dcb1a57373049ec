package ui

import (
	"slices"
	"testing"
)

// TestSafeNext: after sign-in the browser goes only to a page of the UI,
// never to another site a crafted link names.
func TestSafeNext(t *testing.T) {
	for next, want := range map[string]string{
		"/ui/r/acme/app":           "/ui/r/acme/app",
		"/ui/repos?q=app":          "/ui/repos?q=app",
		"":                         "/ui/repos",
		"https://evil.example/ui/": "/ui/repos",
		"//evil.example/ui/":       "/ui/repos",
		"/ui/\\evil":               "/ui/repos",
		"/v2/_catalog":             "/ui/repos",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}

// TestPageOf pages a sorted catalog after a name, filtered by a part of the
// name in any case, and says when more follow.
func TestPageOf(t *testing.T) {
	names := []string{"acme/api", "acme/app", "acme/web", "beta/app", "beta/db"}
	for _, c := range []struct {
		q, after string
		want     []string
		more     bool
	}{
		{"", "", []string{"acme/api", "acme/app"}, true},
		{"", "acme/app", []string{"acme/web", "beta/app"}, true},
		{"", "beta/app", []string{"beta/db"}, false},
		{"APP", "", []string{"acme/app", "beta/app"}, false},
		{"app", "acme/app", []string{"beta/app"}, false},
		{"", "acme/b", []string{"acme/web", "beta/app"}, true}, // after a name no longer listed
		{"zzz", "", nil, false},
	} {
		got, more := pageOf(names, c.q, c.after, 2)
		if !slices.Equal(got, c.want) || more != c.more {
			t.Errorf("pageOf(q %q, after %q) = %q, %v; want %q, %v", c.q, c.after, got, more, c.want, c.more)
		}
	}
}
