package tokenauth_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/signet-oss/signet/tokenauth"
)

func TestParseScopes(t *testing.T) {
	repo := func(name string, actions ...string) tokenauth.Access {
		return tokenauth.Access{Type: "repository", Name: name, Actions: actions}
	}
	catalog := tokenauth.Access{Type: "registry", Name: "catalog", Actions: []string{"*"}}
	tests := []struct {
		name   string
		values []string
		want   []tokenauth.Access
	}{
		{"no scope gives no access", nil, nil},
		{"an empty value gives no access", []string{""}, nil},
		{"one scope parses", []string{"repository:acme/app:pull"}, []tokenauth.Access{repo("acme/app", "pull")}},
		{"repeated values are all read", []string{"repository:acme/app:pull", "repository:acme/db:push"},
			[]tokenauth.Access{repo("acme/app", "pull"), repo("acme/db", "push")}},
		{"space-joined values are split", []string{"repository:acme/app:pull repository:acme/db:pull,push"},
			[]tokenauth.Access{repo("acme/app", "pull"), repo("acme/db", "pull", "push")}},
		{"actions on one resource are merged in order without repeats",
			[]string{"repository:acme/app:push", "repository:acme/db:pull repository:acme/app:pull,push,pull"},
			[]tokenauth.Access{repo("acme/app", "push", "pull"), repo("acme/db", "pull")}},
		{"the wildcard and delete actions are accepted", []string{"repository:acme/app:*,delete"},
			[]tokenauth.Access{repo("acme/app", "*", "delete")}},
		{"registry:catalog:* is accepted", []string{"registry:catalog:*"}, []tokenauth.Access{catalog}},
		{"registry:audit:read is accepted", []string{"registry:audit:read"},
			[]tokenauth.Access{{Type: "registry", Name: "audit", Actions: []string{"read"}}}},
		{"a resource class is accepted and dropped", []string{"repository(plugin):acme/app:pull"},
			[]tokenauth.Access{repo("acme/app", "pull")}},
		{"a class-qualified scope merges with the plain one", []string{"repository(plugin):acme/app:pull repository:acme/app:push"},
			[]tokenauth.Access{repo("acme/app", "pull", "push")}},
		{"a mount asks for pull on the source and push on the target",
			[]string{"repository:acme/app:pull,push repository:other/base:pull"},
			[]tokenauth.Access{repo("acme/app", "pull", "push"), repo("other/base", "pull")}},
		{"a name of 255 characters is accepted", []string{"repository:" + strings.Repeat("a/", 127) + "b:pull"},
			[]tokenauth.Access{repo(strings.Repeat("a/", 127)+"b", "pull")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tokenauth.ParseScopes(tt.values)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseScopes(%q) = %+v, want %+v", tt.values, got, tt.want)
			}
		})
	}
}

func TestParseScopesRejects(t *testing.T) {
	long := strings.Repeat("a", 300)
	tests := []struct {
		name  string
		value string
		bad   string // the scope the error must name
	}{
		{"an upper-case name is rejected", "repository:acme/App:pull", "repository:acme/App:pull"},
		{"a name with .. is rejected", "repository:acme/../admin:pull", "repository:acme/../admin:pull"},
		{"a name with %2F is rejected", "repository:acme%2Fapp:pull", "repository:acme%2Fapp:pull"},
		{"a name with a 300-character component is rejected", "repository:acme/" + long + ":pull", "repository:acme/aaaa"},
		{"a name with a leading slash is rejected", "repository:/acme/app:pull", "repository:/acme/app:pull"},
		{"an empty name is rejected", "repository::pull", "repository::pull"},
		{"an empty action is rejected", "repository:acme/app:", "repository:acme/app:"},
		{"an empty action in a list is rejected", "repository:acme/app:pull,,push", "repository:acme/app:pull,,push"},
		{"an unknown type is rejected", "registries:catalog:*", "registries:catalog:*"},
		{"an unknown action is rejected", "repository:acme/app:admin", "repository:acme/app:admin"},
		{"an upper-case action is rejected", "repository:acme/app:PULL", "repository:acme/app:PULL"},
		{"a registry resource other than catalog is rejected", "registry:everything:*", "registry:everything:*"},
		{"pull on the catalog is rejected", "registry:catalog:pull", "registry:catalog:pull"},
		{"anything but read on the audit log is rejected", "registry:audit:*", "registry:audit:*"},
		{"read on the catalog is rejected", "registry:catalog:read", "registry:catalog:read"},
		{"a scope without actions is rejected", "repository:acme/app", "repository:acme/app"},
		{"a bare type is rejected", "repository", "repository"},
		{"an unclosed class is rejected", "repository(plugin:acme/app:pull", "repository(plugin:acme/app:pull"},
		{"an empty class is rejected", "repository():acme/app:pull", "repository():acme/app:pull"},
		{"a host-qualified name is rejected", "repository:localhost:5000/acme/app:pull", "repository:localhost:5000/acme/app:pull"},
		{"one bad scope among good ones fails the lot", "repository:acme/app:pull repository:Acme/app:pull", "repository:Acme/app:pull"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tokenauth.ParseScopes([]string{tt.value})
			if err == nil {
				t.Fatalf("ParseScopes(%q) = %+v, want an error", tt.value, got)
			}
			if !errors.Is(err, tokenauth.ErrInvalidScope) {
				t.Errorf("error %q does not wrap ErrInvalidScope", err)
			}
			if !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("error %q does not name the scope %q", err, tt.bad)
			}
		})
	}
}

func TestAccessScopeRoundTrips(t *testing.T) {
	a := tokenauth.Access{Type: "repository", Name: "acme/app", Actions: []string{"pull", "push"}, Patterns: []string{"x"}}
	if got := a.Scope(); got != "repository:acme/app:pull,push" {
		t.Fatalf("Scope() = %q", got)
	}
}

func TestClaimsAllows(t *testing.T) {
	c := &tokenauth.Claims{Access: []tokenauth.Access{
		{Type: "repository", Name: "acme/app", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "acme/db", Actions: []string{"*"}},
		{Type: "registry", Name: "catalog", Actions: []string{"*"}},
	}}
	tests := []struct {
		name              string
		typ, repo, action string
		want              bool
	}{
		{"a granted action is allowed", "repository", "acme/app", "push", true},
		{"an action not granted is denied", "repository", "acme/app", "delete", false},
		{"the wildcard grants delete", "repository", "acme/db", "delete", true},
		{"another repository is denied", "repository", "acme/web", "pull", false},
		{"the catalog is allowed", "registry", "catalog", "*", true},
		{"the type must match", "registry", "acme/app", "pull", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Allows(tt.typ, tt.repo, tt.action); got != tt.want {
				t.Errorf("Allows(%q, %q, %q) = %v", tt.typ, tt.repo, tt.action, got)
			}
		})
	}
}
