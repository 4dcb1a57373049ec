package driver

import "testing"

func FuzzValidPathAgreesWithPathRegexp(f *testing.F) {
	for _, s := range []string{"/", "/a", "/a/b", "//", "/a/", "/./a", "/a/..", "/a b", "a/b", "/a:b-c.d_e", "/..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		want := p == "/"
		if !want && PathRegexp.MatchString(p) {
			want = true
			for _, c := range splitPath(p) {
				if c == "." || c == ".." {
					want = false
				}
			}
		}
		if got := ValidPath(p); got != want {
			t.Fatalf("ValidPath(%q) = %v, want %v", p, got, want)
		}
	})
}

func splitPath(p string) []string {
	var out []string
	start := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return out
}
