package reference

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestValidateEnforcedName(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		valid bool
		why   string // in the error message
	}{
		{"an org's repository is accepted", "acme/app", true, ""},
		{"four components are accepted", "acme/a/b/c", true, ""},
		{"an org name with single separators is accepted", "acme-corp.eu/app", true, ""},
		{"five components are refused, saying how many are allowed", "acme/a/b/c/d", false, "acme/a/b/c/d has 5 components; enforced repositories have at most 4"},
		{"one component is refused: no org delegates it", "app", false, "app has 1 component; enforced repositories have at least 2"},
		{"a first component with a double dash is never an org", "acme--corp/app", false, `its first component "acme--corp" can never be an organisation's name`},
		{"a first component with a double underscore is never an org", "acme__corp/app", false, "can never be an organisation's name"},
		{"a first component longer than an org name is never an org", strings.Repeat("a", MaxOrgNameLength+1) + "/app", false, "can never be an organisation's name"},
		{"later components may use the whole name grammar", "acme/a__b/c--d", true, ""},
		{"an invalid name is refused as before", "Acme/app", false, "invalid repository name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ValidateEnforcedName(c.in)
			if (err == nil) != c.valid {
				t.Fatalf("ValidateEnforcedName(%q) = %v, want valid=%v", c.in, err, c.valid)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, ErrNameInvalid) {
				t.Errorf("error %v is not ErrNameInvalid", err)
			}
			if !strings.Contains(err.Error(), c.why) {
				t.Errorf("error %q does not say %q", err, c.why)
			}
		})
	}
}

func TestValidateOrgName(t *testing.T) {
	for org, valid := range map[string]bool{
		"acme": true, "acme-corp": true, "a.b_c-d": true, "a1": true,
		"": false, "Acme": false, "a--b": false, "a__b": false, "-a": false, "a/b": false, "a+b": false,
		strings.Repeat("a", MaxOrgNameLength): true, strings.Repeat("a", MaxOrgNameLength+1): false,
	} {
		err := ValidateOrgName(org)
		if (err == nil) != valid {
			t.Errorf("ValidateOrgName(%q) = %v, want valid=%v", org, err, valid)
		}
		if err != nil && !errors.Is(err, ErrOrgNameInvalid) {
			t.Errorf("ValidateOrgName(%q): %v is not ErrOrgNameInvalid", org, err)
		}
	}
}

// Every name an org's delegation patterns can match passes ValidateEnforcedName,
// and the patterns stop at the depth where it starts refusing.
func TestOrgPathPatternsCoverExactlyTheEnforcedDepths(t *testing.T) {
	want := []string{"acme/*", "acme/*/*", "acme/*/*/*"}
	if got := OrgPathPatterns("acme"); !slices.Equal(got, want) {
		t.Fatalf("OrgPathPatterns(acme) = %q, want %q", got, want)
	}
	for depth := 1; depth <= MaxRepoDepth+1; depth++ {
		name := "acme" + strings.Repeat("/x", depth-1)
		covered := slices.ContainsFunc(OrgPathPatterns("acme"), func(p string) bool {
			return strings.Count(p, "/") == strings.Count(name, "/")
		})
		if valid := ValidateEnforcedName(name) == nil; valid != covered {
			t.Errorf("%s: delegable by the patterns %v, accepted %v", name, covered, valid)
		}
	}
}
