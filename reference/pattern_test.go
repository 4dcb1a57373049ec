package reference_test

import (
	"strings"
	"testing"

	"github.com/signet-oss/signet/reference"
)

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"acme/app", "acme/app", true},
		{"acme/app", "acme/app2", false},
		{"acme/app", "Acme/app", false},
		{"acme/*", "acme/app", true},
		{"acme/*", "acme/app/web", false},
		{"acme/*", "acme", false},
		{"acme-*", "acme-web", true},
		{"acme-*", "acme", false},
		{"acme-*/app", "acme-x/app", true},
		{"*-web", "acme-web", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"*", "acme", true},
		{"*", "acme/app", false},
		{"acme/**", "acme/x", true},
		{"acme/**", "acme/x/y", true},
		{"acme/**", "acme", false},
		{"acme/**", "acmecorp/x", false},
		{"**", "acme", true},
		{"**", "acme/x/y", true},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/b", "a/x/y/c", false},
		{"**/app", "acme/team/app", true},
		{"**/app", "app", true},
		{"**/**/**/**/**/**/**/**/x", strings.Repeat("a/", 100) + "y", false},
		{"", "acme", false},
		{"acme", "", false},
		{"acme/", "acme", false},
	}
	for _, tt := range tests {
		name := tt.pattern + " matches " + tt.name
		if !tt.want {
			name = tt.pattern + " does not match " + tt.name
		}
		t.Run(name, func(t *testing.T) {
			if got := reference.MatchPattern(tt.pattern, tt.name); got != tt.want {
				t.Errorf("MatchPattern(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
			}
		})
	}
}
