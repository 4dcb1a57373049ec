package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Evidence is what was verified of one image, with the keys the trust graph
// delegates for its repository now: who signed it, and the attestations
// attached to it. The registry's gate and trustctl gather it the same way
// (verify.PolicyEvidence).
type Evidence struct {
	// Signers are the TUF key IDs of the delegated keys that signed the image
	// itself: the repository role's signatures over its target, and verified
	// signatures attached to it (cosign, Sigstore bundle, notation).
	Signers []string
	// Attestations are the verified attestations attached to the image.
	Attestations []Attestation
}

// Attestation is one verified attestation: the delegated key that signed it,
// and its in-toto statement's predicate type and predicate.
type Attestation struct {
	KeyID         string
	PredicateType string
	Predicate     json.RawMessage
}

// Result is the verdict of every document that applies to an image.
type Result struct {
	Documents []DocumentResult
}

// DocumentResult is one document's verdict.
type DocumentResult struct {
	Repositories string
	Mode         Mode
	Requirements []RequirementResult
}

// RequirementResult is one requirement's verdict: Met, how many distinct
// delegated keys count towards it (Found), and, when not met, Detail says
// what was found instead.
type RequirementResult struct {
	Requirement Requirement
	Met         bool
	Found       int
	Detail      string
}

// Evaluate checks docs (those For an image's repository) against ev.
func Evaluate(docs []Document, ev Evidence) Result {
	var r Result
	for _, d := range docs {
		dr := DocumentResult{Repositories: d.Repositories, Mode: d.mode()}
		for _, q := range d.Require {
			dr.Requirements = append(dr.Requirements, q.evaluate(ev))
		}
		r.Documents = append(r.Documents, dr)
	}
	return r
}

func (q Requirement) evaluate(ev Evidence) RequirementResult {
	if q.PredicateType == "" {
		n := len(distinct(ev.Signers))
		res := RequirementResult{Requirement: q, Found: n, Met: n >= q.signers()}
		if !res.Met {
			res.Detail = fmt.Sprintf("%d signed it", n)
		}
		return res
	}
	var keys, mismatched []string
	var why string
	ofType := 0
	for _, a := range ev.Attestations {
		if a.PredicateType != q.PredicateType {
			continue
		}
		ofType++
		if miss := q.mismatch(a.Predicate); miss != "" {
			mismatched = append(mismatched, a.KeyID)
			if why == "" {
				why = miss
			}
			continue
		}
		keys = append(keys, a.KeyID)
	}
	n := len(distinct(keys))
	res := RequirementResult{Requirement: q, Found: n, Met: n >= q.signers()}
	switch {
	case res.Met:
	case ofType == 0:
		res.Detail = "none is attached"
	case n == 0:
		res.Detail = fmt.Sprintf("%d attached do not match (%s)", ofType, why)
	default:
		res.Detail = fmt.Sprintf("%d distinct signers have one", n)
		if len(mismatched) > 0 {
			res.Detail += fmt.Sprintf("; %d others do not match (%s)", len(mismatched), why)
		}
	}
	return res
}

// mismatch returns "" when every Match holds in predicate, else says which
// does not (the first, by path).
func (q Requirement) mismatch(predicate json.RawMessage) string {
	paths := make([]string, 0, len(q.Match))
	for p := range q.Match {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	var doc any
	if len(paths) > 0 {
		dec := json.NewDecoder(bytes.NewReader(predicate))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return "its predicate is not JSON"
		}
	}
	for _, p := range paths {
		v, ok := lookup(doc, p)
		if !ok {
			return p + " is absent"
		}
		if !Glob(q.Match[p], v) {
			return fmt.Sprintf("%s is %q", p, v)
		}
	}
	return ""
}

// lookup returns the value at path in doc as a string: a string itself, a
// number or boolean as its JSON text; ok is false when the path leads
// nowhere, or to an object, an array or null.
func lookup(doc any, path string) (string, bool) {
	segs, err := parsePath(path)
	if err != nil {
		return "", false
	}
	cur := doc
	for _, s := range segs {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[s]
			if !ok {
				return "", false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(c) {
				return "", false
			}
			cur = c[i]
		default:
			return "", false
		}
	}
	switch v := cur.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// parsePath splits a match path: member names (or array indices, in decimal)
// joined by '.'.
func parsePath(p string) ([]string, error) {
	if p == "" || len(p) > maxString {
		return nil, fmt.Errorf("match path %.40q: 1 to %d bytes", p, maxString)
	}
	segs := strings.Split(p, ".")
	if len(segs) > maxPathSegments {
		return nil, fmt.Errorf("match path %.40q: more than %d segments", p, maxPathSegments)
	}
	for _, s := range segs {
		if s == "" {
			return nil, fmt.Errorf("match path %.40q: an empty segment", p)
		}
	}
	return segs, nil
}

// Glob reports whether s matches pattern, where '*' stands for any run of
// characters ('/' included) and every other character for itself.
func Glob(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

func distinct(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// String describes q as the messages name it.
func (q Requirement) String() string {
	if q.PredicateType == "" {
		return fmt.Sprintf("%d distinct delegated signers of the image", q.signers())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "an attestation of type %s", q.PredicateType)
	paths := make([]string, 0, len(q.Match))
	for p := range q.Match {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for i, p := range paths {
		sep := " where "
		if i > 0 {
			sep = " and "
		}
		fmt.Fprintf(&b, "%s%s is %q", sep, p, q.Match[p])
	}
	if n := q.signers(); n > 1 {
		fmt.Fprintf(&b, ", by %d distinct delegated signers", n)
	}
	return b.String()
}

// Met reports whether every enforced document is met.
func (r Result) Met() bool { return r.unmet(Enforce) == nil }

// Err is nil when every enforced document is met; else it says, for each,
// which requirements are not and what was found instead.
func (r Result) Err() error {
	if u := r.unmet(Enforce); u != nil {
		return &UnmetError{Unmet: u}
	}
	return nil
}

// Warnings says, for each document in warn mode that is not met, what is
// missing (the words of Err).
func (r Result) Warnings() []string {
	var out []string
	for _, d := range r.unmet(Warn) {
		out = append(out, d.String())
	}
	return out
}

func (r Result) unmet(m Mode) []DocumentResult {
	var out []DocumentResult
	for _, d := range r.Documents {
		if d.Mode == m && !d.Met() {
			out = append(out, d)
		}
	}
	return out
}

// Met reports whether every requirement of d holds.
func (d DocumentResult) Met() bool {
	return !slices.ContainsFunc(d.Requirements, func(q RequirementResult) bool { return !q.Met })
}

// String says what d misses: "the pull policy for acme/* requires an
// attestation of type ...: none is attached".
func (d DocumentResult) String() string {
	var miss []string
	for _, q := range d.Requirements {
		if !q.Met {
			miss = append(miss, q.Requirement.String()+": "+q.Detail)
		}
	}
	return fmt.Sprintf("the pull policy for %s requires %s", d.Repositories, strings.Join(miss, "; and "))
}

// UnmetError is an image's enforced policy not being met.
type UnmetError struct {
	Unmet []DocumentResult
}

func (e *UnmetError) Error() string {
	parts := make([]string, len(e.Unmet))
	for i, d := range e.Unmet {
		parts[i] = d.String()
	}
	return strings.Join(parts, "; ")
}
