package registry

import "testing"

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-99", "bytes 5-9/*", "bytes 0-0/10", "-1-5", "9-3", "a-b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		start, end, err := parseContentRange(v)
		if err == nil && (start < 0 || end < start) {
			t.Fatalf("parseContentRange(%q) = %d, %d: not a range", v, start, end)
		}
	})
}
