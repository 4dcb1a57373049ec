package tokenauth

import "github.com/go-jose/go-jose/v4/jwt"

// Claims are the claims of an access token (distribution docs/spec/auth/jwt.md).
// Times are Unix seconds.
type Claims struct {
	Issuer    string       `json:"iss"`
	Subject   string       `json:"sub"`
	Audience  jwt.Audience `json:"aud"` // a []string, serialised as a string when there is one
	Expiry    int64        `json:"exp"`
	NotBefore int64        `json:"nbf"`
	IssuedAt  int64        `json:"iat"`
	ID        string       `json:"jti"`
	Access    []Access     `json:"access"`
}

// Allows reports whether the claims grant action on the resource (typ, name);
// "*" in Actions grants every action.
func (c *Claims) Allows(typ, name, action string) bool {
	for _, a := range c.Access {
		if a.Type != typ || a.Name != name {
			continue
		}
		for _, got := range a.Actions {
			if got == action || got == ActionAll {
				return true
			}
		}
	}
	return false
}
