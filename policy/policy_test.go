package policy

import (
	"encoding/json"
	"strings"
	"testing"
)

const slsa = "https://slsa.dev/provenance/v1"

func mustDoc(t *testing.T, s string) *Document {
	t.Helper()
	d, err := ParseDocument([]byte(s), "")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestParseDocumentRefusesWhatCouldLoosenAPolicy(t *testing.T) {
	for _, tc := range []struct{ why, doc, org, want string }{
		{"an unknown field (a typo of require)", `{"repositories":"acme/app","requires":[{"signers":2}]}`, "", "unknown field"},
		{"a member twice", `{"repositories":"acme/app","mode":"enforce","mode":"warn","require":[{"signers":2}]}`, "", "twice"},
		{"a member twice in another case", `{"repositories":"acme/app","Repositories":"evil/app","require":[{"signers":2}]}`, "", "twice"},
		{"trailing data", `{"repositories":"acme/app","require":[{"signers":2}]} {}`, "", "after the document"},
		{"no requirement", `{"repositories":"acme/app","require":[]}`, "", "requirements"},
		{"an unknown mode", `{"repositories":"acme/app","mode":"audit","require":[{"signers":2}]}`, "", "mode"},
		{"another org's pattern", `{"repositories":"acme-corp/app","require":[{"signers":2}]}`, "acme", "does not start with"},
		{"a wildcard org", `{"repositories":"*/app","require":[{"signers":2}]}`, "", "organisation"},
		{"the org alone", `{"repositories":"acme","require":[{"signers":2}]}`, "", "names no repository"},
		{"a match without a predicate type", `{"repositories":"acme/app","require":[{"match":{"a":"b"}}]}`, "", "needs a predicateType"},
		{"an empty path segment", `{"repositories":"acme/app","require":[{"predicateType":"x","match":{"a..b":"c"}}]}`, "", "empty segment"},
		{"too many signers", `{"repositories":"acme/app","require":[{"signers":33}]}`, "", "signers"},
		{"negative signers", `{"repositories":"acme/app","require":[{"signers":-1}]}`, "", "signers"},
	} {
		t.Run(tc.why, func(t *testing.T) {
			_, err := ParseDocument([]byte(tc.doc), tc.org)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestSetAppliesByPattern(t *testing.T) {
	s := (&Set{}).
		With(*mustDoc(t, `{"repositories":"acme/*","require":[{"signers":2}]}`)).
		With(*mustDoc(t, `{"repositories":"acme/app","mode":"warn","require":[{"predicateType":"x"}]}`)).
		With(*mustDoc(t, `{"repositories":"acme/**","require":[{"predicateType":"y"}]}`))
	got, err := ParseSet(s.Encode(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		repo string
		want []string
	}{
		{"acme/app", []string{"acme/*", "acme/**", "acme/app"}},
		{"acme/web", []string{"acme/*", "acme/**"}},
		{"acme/team/app", []string{"acme/**"}},
		{"acme-corp/app", nil},
		{"acmex/app", nil},
	} {
		var pats []string
		for _, d := range got.For(tc.repo) {
			pats = append(pats, d.Repositories)
		}
		if strings.Join(pats, ",") != strings.Join(tc.want, ",") {
			t.Errorf("For(%s) = %v, want %v", tc.repo, pats, tc.want)
		}
	}
	if _, err := ParseSet(s.Encode(), "acme-corp"); err == nil {
		t.Error("acme's policies were accepted as acme-corp's")
	}
	without, ok := got.Without("acme/app")
	if !ok || len(without.For("acme/app")) != 2 {
		t.Errorf("Without(acme/app) = %v, %v", without, ok)
	}
	dup := `{"policies":[{"repositories":"acme/app","require":[{"signers":2}]},{"repositories":"acme/app","require":[{"signers":1}]}]}`
	if _, err := ParseSet([]byte(dup), "acme"); err == nil {
		t.Error("two policies for one pattern were accepted")
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"https://builder.x/*", "https://builder.x/gh/acme/app@refs/tags/v1", true},
		{"https://builder.x/*", "https://builder.y/gh", false},
		{"https://builder.x", "https://builder.x/", false},
		{"*", "", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a*a", "a", false},
		{"*x*", "yyxyy", true},
	} {
		if got := Glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func provenance(builder string) json.RawMessage {
	return json.RawMessage(`{"buildDefinition":{"buildType":"t","resolvedDependencies":[{"uri":"git+https://x/acme"}]},"runDetails":{"builder":{"id":"` + builder + `"},"metadata":{"invocationId":7,"reproducible":true}}}`)
}

func TestEvaluate(t *testing.T) {
	doc := mustDoc(t, `{"repositories":"acme/app","require":[
		{"predicateType":"`+slsa+`","match":{"runDetails.builder.id":"https://builder.x/*"}},
		{"predicateType":"https://spdx.dev/Document"},
		{"signers":2}]}`)
	x := Attestation{KeyID: "alice", PredicateType: slsa, Predicate: provenance("https://builder.x/run/1")}
	y := Attestation{KeyID: "bob", PredicateType: slsa, Predicate: provenance("https://builder.y/run/1")}
	sbom := Attestation{KeyID: "bob", PredicateType: "https://spdx.dev/Document", Predicate: json.RawMessage(`{}`)}
	for _, tc := range []struct {
		why  string
		ev   Evidence
		want []string // in the error, in order; none when met
	}{
		{"everything", Evidence{Signers: []string{"alice", "bob"}, Attestations: []Attestation{x, sbom}}, nil},
		{"nothing", Evidence{Signers: []string{"alice"}}, []string{
			"the pull policy for acme/app requires an attestation of type " + slsa + ` where runDetails.builder.id is "https://builder.x/*": none is attached`,
			"an attestation of type https://spdx.dev/Document: none is attached",
			"2 distinct delegated signers of the image: 1 signed it"}},
		{"builder Y does not satisfy builder X", Evidence{Signers: []string{"alice", "bob"}, Attestations: []Attestation{y, sbom}}, []string{
			`1 attached do not match (runDetails.builder.id is "https://builder.y/run/1")`}},
		{"one signer twice is one signer", Evidence{Signers: []string{"alice", "alice"}, Attestations: []Attestation{x, sbom}}, []string{"1 signed it"}},
	} {
		t.Run(tc.why, func(t *testing.T) {
			r := Evaluate([]Document{*doc}, tc.ev)
			err := r.Err()
			if len(tc.want) == 0 {
				if err != nil || !r.Met() {
					t.Fatalf("not met: %v", err)
				}
				return
			}
			if err == nil || r.Met() {
				t.Fatal("met, want not met")
			}
			msg := err.Error()
			for _, w := range tc.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Fatalf("%q does not say %q", msg, w)
				}
				msg = msg[i+len(w):]
			}
		})
	}
}

func TestMatchPaths(t *testing.T) {
	pred := provenance("b")
	for _, tc := range []struct {
		path, value string
		met         bool
	}{
		{"runDetails.builder.id", "b", true},
		{"buildDefinition.resolvedDependencies.0.uri", "git+https://x/*", true},
		{"buildDefinition.resolvedDependencies.1.uri", "*", false},
		{"runDetails.metadata.invocationId", "7", true},
		{"runDetails.metadata.reproducible", "true", true},
		{"runDetails.builder", "*", false}, // an object is no value
		{"runDetails.builder.id.x", "*", false},
	} {
		q := Requirement{PredicateType: slsa, Match: map[string]string{tc.path: tc.value}}
		res := q.evaluate(Evidence{Attestations: []Attestation{{KeyID: "k", PredicateType: slsa, Predicate: pred}}})
		if res.Met != tc.met {
			t.Errorf("%s = %q: met %v, want %v (%s)", tc.path, tc.value, res.Met, tc.met, res.Detail)
		}
	}
}

func TestWarnDocumentsWarnAndNeverFail(t *testing.T) {
	doc := mustDoc(t, `{"repositories":"acme/app","mode":"warn","require":[{"predicateType":"x"}]}`)
	r := Evaluate([]Document{*doc}, Evidence{})
	if r.Err() != nil || !r.Met() {
		t.Fatalf("a warn policy failed: %v", r.Err())
	}
	if w := r.Warnings(); len(w) != 1 || !strings.Contains(w[0], "an attestation of type x: none is attached") {
		t.Fatalf("warnings %q", w)
	}
}
