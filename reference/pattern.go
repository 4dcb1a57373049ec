package reference

import "strings"

// MatchPattern reports whether a repository name matches a pattern: the patterns
// of trustd's grants, of the catalog's and the audit log's filters, of
// notification endpoints and of the registry's open namespaces. A pattern is a
// "/"-separated list of segments, matched case-sensitively against the name's
// components:
//   - a segment "**" matches any number (>= 0) of whole components, except at the end
//     of the pattern, where it matches one or more: "acme/**" matches "acme/x" and
//     "acme/x/y" but not "acme" itself, "**" matches every name, "a/**/b" matches
//     "a/b" and "a/x/y/b";
//   - in any other segment "*" matches any run of characters within one component
//     ("acme-*" matches "acme-web", "*" matches one whole component);
//   - every other character matches itself.
func MatchPattern(pattern, name string) bool {
	if pattern == "" || name == "" {
		return false
	}
	p := strings.Split(pattern, "/")
	n := strings.Split(name, "/")
	// next[j] (for pattern segment i+1) and cur[j] (for segment i) say whether
	// p[i:] matches n[j:]; a table keeps "**" linear instead of exponential.
	next := make([]bool, len(n)+1)
	cur := make([]bool, len(n)+1)
	next[len(n)] = true
	for i := len(p) - 1; i >= 0; i-- {
		switch {
		case p[i] == "**" && i == len(p)-1:
			for j := range cur {
				cur[j] = j < len(n)
			}
		case p[i] == "**":
			cur[len(n)] = next[len(n)]
			for j := len(n) - 1; j >= 0; j-- {
				cur[j] = next[j] || cur[j+1]
			}
		default:
			cur[len(n)] = false
			for j := len(n) - 1; j >= 0; j-- {
				cur[j] = next[j+1] && matchSegment(p[i], n[j])
			}
		}
		cur, next = next, cur
	}
	return next[0]
}

// matchSegment matches one component against a segment in which "*" matches any run
// of characters, backtracking only to the last star (linear in practice).
func matchSegment(pat, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pat) && pat[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(pat) && pat[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}
