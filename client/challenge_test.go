package client

import (
	"maps"
	"testing"
)

func TestParseChallenge(t *testing.T) {
	cases := []struct {
		name   string
		header string
		scheme string
		params map[string]string
	}{
		{"a registry's bearer challenge with a scope",
			`Bearer realm="http://127.0.0.1:5000/token",service="signet-registry",scope="repository:acme/app:pull,push"`,
			"bearer", map[string]string{"realm": "http://127.0.0.1:5000/token", "service": "signet-registry", "scope": "repository:acme/app:pull,push"}},
		{"spaces after commas and unquoted values",
			`Bearer realm="https://r.example/token", service=reg, error="invalid_token"`,
			"bearer", map[string]string{"realm": "https://r.example/token", "service": "reg", "error": "invalid_token"}},
		{"escaped quotes inside a quoted value",
			`Basic realm="say \"hi\""`,
			"basic", map[string]string{"realm": `say "hi"`}},
		{"upper-case parameter names are folded",
			`BEARER Realm="x",SERVICE="y"`,
			"bearer", map[string]string{"realm": "x", "service": "y"}},
		{"a scheme alone", `Bearer`, "bearer", map[string]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch, err := ParseChallenge(c.header)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Scheme != c.scheme || !maps.Equal(ch.Params, c.params) {
				t.Fatalf("got %s %v, want %s %v", ch.Scheme, ch.Params, c.scheme, c.params)
			}
		})
	}
}

func TestParseChallengeRejects(t *testing.T) {
	for _, h := range []string{``, `realm="x"`, `Bearer realm="unterminated`, `Bearer realm="x" service="y"`, `Bearer realm`} {
		if ch, err := ParseChallenge(h); err == nil {
			t.Errorf("ParseChallenge(%q) = %+v, want an error", h, ch)
		}
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer realm="http://127.0.0.1:5000/token",service="signet-registry",scope="repository:a/b:pull"`)
	f.Add(`Basic realm="x\"y"`)
	f.Fuzz(func(t *testing.T, h string) {
		ch, err := ParseChallenge(h)
		if err == nil && ch.Scheme == "" {
			t.Fatalf("no error and no scheme for %q", h)
		}
	})
}
