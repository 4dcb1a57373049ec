package ui

import "testing"

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

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", -1: "?"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
