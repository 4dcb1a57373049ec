package reference

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	cases := []struct {
		name  string
		valid bool
	}{
		{"acme", true},
		{"acme/app", true},
		{"acme-corp/app.v2/x__y", true},
		{"a/b/c/d/e", true},
		{"Acme/app", false},
		{"acme//app", false},
		{"acme/app/", false},
		{"/acme", false},
		{"acme/../app", false},
		{"acme/_manifests", false},
		{"acme%2Fapp", false},
		{"acme/-app", false},
		{"acme/app-", false},
		{"acme/a..b", false},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), false},
	}
	for _, c := range cases {
		err := ValidateName(c.name)
		if (err == nil) != c.valid {
			t.Errorf("ValidateName(%q) = %v, want valid=%v", c.name, err, c.valid)
		}
		if err != nil && !errors.Is(err, ErrNameInvalid) {
			t.Errorf("ValidateName(%q): error %v is not ErrNameInvalid", c.name, err)
		}
	}
}

func TestParseDigestAcceptsOnlySHA256AndSHA512(t *testing.T) {
	good := []string{
		"sha256:" + strings.Repeat("a", 64),
		"sha512:" + strings.Repeat("b", 128),
	}
	bad := []string{
		"", "sha256:", "sha256:" + strings.Repeat("a", 63), "sha256:" + strings.Repeat("A", 64),
		"sha384:" + strings.Repeat("a", 96), "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256" + strings.Repeat("a", 64),
	}
	for _, s := range good {
		if _, err := ParseDigest(s); err != nil {
			t.Errorf("ParseDigest(%q): %v", s, err)
		}
	}
	for _, s := range bad {
		if _, err := ParseDigest(s); !errors.Is(err, ErrDigestInvalid) {
			t.Errorf("ParseDigest(%q) = %v, want ErrDigestInvalid", s, err)
		}
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"acme/app", "a/b/c", "A", "a//b", "a/../b", "_x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateName(name) != nil {
			return
		}
		// A valid name is always a safe driver path below the repositories root.
		for _, c := range strings.Split(name, "/") {
			if c == "" || c == "." || c == ".." || strings.HasPrefix(c, "_") || strings.ContainsAny(c, "%\\:") {
				t.Fatalf("accepted name %q has an unsafe component %q", name, c)
			}
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{"sha256:" + strings.Repeat("a", 64), "sha512:" + strings.Repeat("0", 128), "sha256:zz", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			return
		}
		if d.String() != s {
			t.Fatalf("ParseDigest(%q) = %q", s, d)
		}
		if strings.ContainsAny(d.Encoded(), "/.") {
			t.Fatalf("digest %q would escape a path", s)
		}
	})
}
