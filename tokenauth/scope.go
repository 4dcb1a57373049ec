package tokenauth

import (
	"errors"
	"fmt"
	"strings"

	"github.com/signet-oss/signet/reference"
)

// ErrInvalidScope is wrapped by every error ParseScopes returns.
var ErrInvalidScope = errors.New("invalid scope")

// Resource types and actions of the scope grammar.
const (
	TypeRepository = "repository"
	TypeRegistry   = "registry"

	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
	ActionAll    = "*"
	// ActionRead is the only action on registry:audit.
	ActionRead = "read"

	// CatalogName and AuditName are the resource names of type "registry":
	// the catalog (action "*") and the registry's audit log (action "read").
	CatalogName = "catalog"
	AuditName   = "audit"
)

// Access is one entry of a token's "access" claim (distribution docs/spec/auth/jwt.md).
type Access struct {
	Type    string   `json:"type"`    // "repository" or "registry"
	Name    string   `json:"name"`    // a repository name, "catalog" or "audit"
	Actions []string `json:"actions"` // "pull", "push", "delete", "*" (registry:catalog:*) or "read" (registry:audit:read)
	// Patterns, only on the registry:catalog entry: the repository patterns the
	// subject may pull, so the registry can filter the catalog offline
	// (reference.MatchPattern's grammar).
	Patterns []string `json:"patterns,omitempty"`
}

// Scope returns the entry in the scope grammar, e.g. "repository:acme/app:pull,push".
// Patterns are not part of a scope.
func (a Access) Scope() string {
	return a.Type + ":" + a.Name + ":" + strings.Join(a.Actions, ",")
}

// maxScopeEcho bounds how much of a bad scope an error message repeats.
const maxScopeEcho = 128

// ParseScopes parses the values of the scope parameter (repeated, and each value may
// hold several space-separated scopes), merging the actions of one resource
// (order-preserving, deduplicated). Grammar: distribution's scope.md:
//
//	scope := type [ "(" class ")" ] ":" name ":" action [ "," action ]*
//
// Accepted types: "repository" (name validated with reference.ValidateName: rejects
// upper case, "..", "%2F", more than 255 characters, etc.; actions pull, push,
// delete or *), "registry" (name "catalog", action "*"; or name "audit", action
// "read"). A class ([a-z0-9]+) is accepted and dropped. Anything else is an error wrapping ErrInvalidScope that names
// the bad scope. No scopes at all gives an empty result and no error.
func ParseScopes(values []string) ([]Access, error) {
	var out []Access
	index := map[[2]string]int{} // (type, name) -> position in out
	for _, value := range values {
		for _, s := range strings.Fields(value) {
			typ, name, actions, err := parseScope(s)
			if err != nil {
				return nil, fmt.Errorf("%w %q: %s", ErrInvalidScope, clip(s, maxScopeEcho), err)
			}
			key := [2]string{typ, name}
			i, ok := index[key]
			if !ok {
				i = len(out)
				index[key] = i
				out = append(out, Access{Type: typ, Name: name})
			}
			for _, a := range actions {
				if !contains(out[i].Actions, a) {
					out[i].Actions = append(out[i].Actions, a)
				}
			}
		}
	}
	return out, nil
}

// parseScope parses one scope; its error says why, without repeating the scope.
func parseScope(s string) (typ, name string, actions []string, err error) {
	first := strings.IndexByte(s, ':')
	last := strings.LastIndexByte(s, ':')
	if first < 0 || first == last {
		return "", "", nil, errors.New(`want type:name:actions`)
	}
	typ, name, list := s[:first], s[first+1:last], s[last+1:]
	if open := strings.IndexByte(typ, '('); open >= 0 {
		class := typ[open+1:]
		if !strings.HasSuffix(class, ")") || !isLowerAlnum(class[:len(class)-1]) {
			return "", "", nil, errors.New(`the resource class must be "(" [a-z0-9]+ ")"`)
		}
		typ = typ[:open]
	}
	if list == "" {
		return "", "", nil, errors.New("no action")
	}
	actions = strings.Split(list, ",")
	switch typ {
	case TypeRepository:
		if err := reference.ValidateName(name); err != nil {
			return "", "", nil, errors.New("the repository name is invalid")
		}
		for _, a := range actions {
			switch a {
			case ActionPull, ActionPush, ActionDelete, ActionAll:
			case "":
				return "", "", nil, errors.New("empty action")
			default:
				return "", "", nil, fmt.Errorf("unknown action %q for a repository", clip(a, 32))
			}
		}
	case TypeRegistry:
		var only string
		switch name {
		case CatalogName:
			only = ActionAll
		case AuditName:
			only = ActionRead
		default:
			return "", "", nil, errors.New(`the registry resources are "catalog" and "audit"`)
		}
		for _, a := range actions {
			if a != only {
				return "", "", nil, fmt.Errorf("the only action on registry:%s is %q", name, only)
			}
		}
	default:
		return "", "", nil, fmt.Errorf("unknown resource type %q", clip(typ, 32))
	}
	return typ, name, actions, nil
}

func isLowerAlnum(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
