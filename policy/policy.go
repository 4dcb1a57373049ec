// Package policy holds pull policies: what an organisation requires to
// accompany an image before any client may pull it (attestations of a
// predicate type whose predicate matches, a number of distinct delegated
// signers), their document, its place in the trust graph, and their
// evaluation against what a registry or a client verified.
//
// The documents live in the trust graph as the target "<org>/.policy" of the
// org role, signed by the org's keys: trustd accepts that target only there
// (trustd/tuf), the registry's index and trustctl read it only from there
// (verify), and both evaluate it here, so they say the same thing in the same
// words. A pattern starts with its org's name, so no org's policy can reach
// another's repositories.
//
// This package is a leaf: it imports reference and the standard library only,
// so trustd can validate what the registry and the client enforce.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/signet-oss/signet/reference"
)

// TargetName is the name, inside an org's namespace, of the target that holds
// its policies: "<org>/.policy". No repository can have it (a repository's
// targets are "<repo>:<tag>" and "<repo>@<digest>", and no name component
// starts with '.'), and the org's delegation patterns ("<org>/*") cover it,
// so a TUF client walking to it reaches the org role.
const TargetName = ".policy"

// Target is the target path of org's policies.
func Target(org string) string { return org + "/" + TargetName }

// Mode says what a registry does with an image whose policy is not met.
type Mode string

const (
	// Enforce: the image is not served (403 DENIED, naming what is missing);
	// trustctl verify and pull fail. The default.
	Enforce Mode = "enforce"
	// Warn: the image is served, and every pull of it is logged and emits an
	// event saying what is missing; trustctl warns.
	Warn Mode = "warn"
)

// Bounds of a document, so a policy costs little to read and to evaluate.
const (
	MaxDocuments    = 64
	MaxRequirements = 16
	MaxMatches      = 16
	MaxSigners      = 32
	maxPattern      = 256
	maxString       = 1024
	maxPathSegments = 16
)

// Set is every policy of one org: the content of its policy target.
type Set struct {
	Policies []Document `json:"policies"`
}

// Document is the policy of the repositories its pattern matches.
type Document struct {
	// Repositories is a pattern of reference.MatchPattern whose first
	// segment is the org's name: "acme/app", "acme/*" (one more component),
	// "acme/**" (every repository of acme).
	Repositories string `json:"repositories"`
	// Mode is Enforce or Warn; "" means Enforce.
	Mode Mode `json:"mode,omitempty"`
	// Require lists what must hold, all of it.
	Require []Requirement `json:"require"`
}

// Requirement is one thing an image needs. With a PredicateType it asks for
// attestations of that type, by Signers distinct delegated keys, each with a
// predicate every Match holds in; without one, for Signers distinct delegated
// keys that signed the image itself.
type Requirement struct {
	// PredicateType is an in-toto predicate type URI
	// ("https://slsa.dev/provenance/v1", "https://spdx.dev/Document",
	// "https://cyclonedx.org/bom", any URI); "" for the image's signers.
	PredicateType string `json:"predicateType,omitempty"`
	// Match maps a path in the predicate ("runDetails.builder.id") to the
	// value it must have, where '*' stands for any run of characters.
	Match map[string]string `json:"match,omitempty"`
	// Signers is how many distinct delegated keys must have signed (the
	// image, or such an attestation); 0 means 1.
	Signers int `json:"signers,omitempty"`
}

// mode is d's mode with the default filled in.
func (d *Document) mode() Mode {
	if d.Mode == "" {
		return Enforce
	}
	return d.Mode
}

// signers is how many distinct keys q needs.
func (q Requirement) signers() int { return max(q.Signers, 1) }

// ParseDocument reads one document as a user writes it (JSON), checks it is
// a policy of org's repositories (org "" takes the org from the pattern), and
// returns it with its defaults filled in. An unknown field, a field twice or
// trailing data is refused: a typo must not pass for a looser policy.
func ParseDocument(data []byte, org string) (*Document, error) {
	var d Document
	if err := strictDecode(data, &d); err != nil {
		return nil, fmt.Errorf("the policy document: %w", err)
	}
	if org == "" {
		org, _, _ = strings.Cut(d.Repositories, "/")
	}
	if err := d.Validate(org); err != nil {
		return nil, err
	}
	d.Mode = d.mode()
	return &d, nil
}

// ParseSet reads org's policy target's custom part, as the registry's index
// and trustctl read it from the org role, and trustd before it accepts it.
func ParseSet(data []byte, org string) (*Set, error) {
	var s Set
	if err := strictDecode(data, &s); err != nil {
		return nil, fmt.Errorf("%s's policies: %w", org, err)
	}
	if err := s.Validate(org); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks every document is one of org's, and no two have the same
// pattern.
func (s *Set) Validate(org string) error {
	if len(s.Policies) > MaxDocuments {
		return fmt.Errorf("%s has %d policies (at most %d)", org, len(s.Policies), MaxDocuments)
	}
	seen := map[string]bool{}
	for i := range s.Policies {
		d := &s.Policies[i]
		if err := d.Validate(org); err != nil {
			return err
		}
		if seen[d.Repositories] {
			return fmt.Errorf("%s has two policies for %s", org, d.Repositories)
		}
		seen[d.Repositories] = true
	}
	return nil
}

// Validate checks d is a well-formed policy of org's repositories.
func (d *Document) Validate(org string) error {
	if err := reference.ValidateOrgName(org); err != nil {
		return fmt.Errorf("the policy for %q: %w", d.Repositories, err)
	}
	if err := validPattern(d.Repositories, org); err != nil {
		return fmt.Errorf("the policy's repositories %q: %w", d.Repositories, err)
	}
	what := "the policy for " + d.Repositories
	if d.Mode != "" && d.Mode != Enforce && d.Mode != Warn {
		return fmt.Errorf("%s: mode %q is neither %q nor %q", what, d.Mode, Enforce, Warn)
	}
	if len(d.Require) == 0 || len(d.Require) > MaxRequirements {
		return fmt.Errorf("%s: %d requirements (1 to %d)", what, len(d.Require), MaxRequirements)
	}
	for i, q := range d.Require {
		if err := q.validate(); err != nil {
			return fmt.Errorf("%s: requirement %d: %w", what, i+1, err)
		}
	}
	return nil
}

func (q Requirement) validate() error {
	if q.Signers < 0 || q.Signers > MaxSigners {
		return fmt.Errorf("signers is %d (1 to %d)", q.Signers, MaxSigners)
	}
	if q.PredicateType == "" {
		if len(q.Match) > 0 {
			return errors.New("match needs a predicateType: it matches fields of an attestation's predicate")
		}
		return nil
	}
	if len(q.PredicateType) > maxString || strings.ContainsAny(q.PredicateType, " \t\r\n") {
		return fmt.Errorf("predicateType %.40q is not a URI of at most %d bytes", q.PredicateType, maxString)
	}
	if len(q.Match) > MaxMatches {
		return fmt.Errorf("%d matches (at most %d)", len(q.Match), MaxMatches)
	}
	for p, v := range q.Match {
		if _, err := parsePath(p); err != nil {
			return err
		}
		if len(v) > maxString {
			return fmt.Errorf("match %s: a value of %d bytes (at most %d)", p, len(v), maxString)
		}
	}
	return nil
}

// validPattern checks pattern is a repository pattern within org: its first
// segment is org itself, the others non-empty.
func validPattern(pattern, org string) error {
	if len(pattern) > maxPattern {
		return fmt.Errorf("longer than %d bytes", maxPattern)
	}
	segs := strings.Split(pattern, "/")
	if segs[0] != org {
		return fmt.Errorf("does not start with the organisation's name %q", org+"/")
	}
	if len(segs) < 2 {
		return errors.New("names no repository: use " + org + "/** for every repository of " + org)
	}
	for _, s := range segs[1:] {
		if s == "" {
			return errors.New("has an empty segment")
		}
		if strings.Contains(s, "**") && s != "**" {
			return fmt.Errorf("segment %q: ** stands alone", s)
		}
	}
	return nil
}

// For returns the documents whose pattern matches repo, in the set's order:
// all of them apply.
func (s *Set) For(repo string) []Document {
	if s == nil {
		return nil
	}
	var out []Document
	for _, d := range s.Policies {
		if reference.MatchPattern(d.Repositories, repo) {
			out = append(out, d)
		}
	}
	return out
}

// With returns a copy of s where d replaces the document with its pattern, or
// is added; documents are kept in the order of their patterns.
func (s *Set) With(d Document) *Set {
	out := &Set{}
	if s != nil {
		out.Policies = slices.Clone(s.Policies)
	}
	if i := slices.IndexFunc(out.Policies, func(o Document) bool { return o.Repositories == d.Repositories }); i >= 0 {
		out.Policies[i] = d
	} else {
		out.Policies = append(out.Policies, d)
	}
	slices.SortFunc(out.Policies, func(a, b Document) int { return strings.Compare(a.Repositories, b.Repositories) })
	return out
}

// Without returns a copy of s without the document for pattern, and whether
// there was one.
func (s *Set) Without(pattern string) (*Set, bool) {
	out := &Set{Policies: []Document{}}
	found := false
	if s != nil {
		for _, d := range s.Policies {
			if d.Repositories == pattern {
				found = true
				continue
			}
			out.Policies = append(out.Policies, d)
		}
	}
	return out, found
}

// Encode is the set's one encoding: the target's custom part, whose length and
// SHA-256 are the target's.
func (s *Set) Encode() []byte {
	if s.Policies == nil {
		s = &Set{Policies: []Document{}}
	}
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // strings, ints and maps of strings always marshal
	}
	return b
}

// strictDecode decodes one JSON value into v: no unknown field, no member
// twice (at any depth), nothing after it.
func strictDecode(data []byte, v any) error {
	if err := noDuplicateKeys(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("data after the document")
	}
	return nil
}

// noDuplicateKeys refuses a JSON text where an object has a member twice, or
// two members equal but for case: Go's decoder would take the last, or match
// either to a field, where a reader in another language may take the first.
func noDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func() error
	walk = func() error {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key := strings.ToLower(k.(string))
				if seen[key] {
					return fmt.Errorf("the member %q appears twice", k)
				}
				seen[key] = true
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	return walk()
}
