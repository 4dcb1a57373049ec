package client

import (
	"errors"
	"fmt"
	"strings"
)

// Challenge is a parsed WWW-Authenticate challenge.
type Challenge struct {
	// Scheme is "bearer" or "basic", lower-cased.
	Scheme string
	// Params holds the auth-params with lower-cased keys: realm, service, scope, error.
	Params map[string]string
}

// Realm, Service and Scope return the Bearer parameters of that name.
func (c Challenge) Realm() string   { return c.Params["realm"] }
func (c Challenge) Service() string { return c.Params["service"] }
func (c Challenge) Scope() string   { return c.Params["scope"] }

// ParseChallenge parses one WWW-Authenticate header value (RFC 7235): a scheme,
// then comma-separated auth-params whose values are tokens or quoted strings.
func ParseChallenge(header string) (Challenge, error) {
	s := strings.TrimSpace(header)
	scheme, rest, _ := strings.Cut(s, " ")
	if scheme == "" || strings.ContainsAny(scheme, "=,\"") {
		return Challenge{}, fmt.Errorf("WWW-Authenticate %q has no scheme", header)
	}
	c := Challenge{Scheme: strings.ToLower(scheme), Params: map[string]string{}}
	rest = strings.TrimSpace(rest)
	for rest != "" {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			return Challenge{}, fmt.Errorf("WWW-Authenticate %q: parameter %q has no value", header, rest)
		}
		key = strings.ToLower(strings.TrimSpace(key))
		after = strings.TrimLeft(after, " \t")
		var val string
		if strings.HasPrefix(after, `"`) {
			var b strings.Builder
			i := 1
			closed := false
			for ; i < len(after); i++ {
				ch := after[i]
				if ch == '\\' && i+1 < len(after) {
					i++
					b.WriteByte(after[i])
					continue
				}
				if ch == '"' {
					closed = true
					i++
					break
				}
				b.WriteByte(ch)
			}
			if !closed {
				return Challenge{}, fmt.Errorf("WWW-Authenticate %q: unterminated quoted value of %s", header, key)
			}
			val, rest = b.String(), after[i:]
		} else {
			end := strings.IndexByte(after, ',')
			if end < 0 {
				end = len(after)
			}
			val, rest = strings.TrimSpace(after[:end]), after[end:]
		}
		if key == "" {
			return Challenge{}, errors.New("WWW-Authenticate: empty parameter name")
		}
		c.Params[key] = val
		rest = strings.TrimSpace(rest)
		if rest != "" {
			if rest[0] != ',' {
				return Challenge{}, fmt.Errorf("WWW-Authenticate %q: expected a comma before %q", header, rest)
			}
			rest = strings.TrimSpace(rest[1:])
		}
	}
	return c, nil
}
