package signer

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/term"
)

// PKCS11PINEnv names the environment variable a token's PIN is read from when
// the PKCS#11 URI carries none.
const PKCS11PINEnv = "SIGNET_PKCS11_PIN"

// ErrWrongPIN: the token refused the PIN. One login is attempted per command,
// never retried, so a wrong PIN costs one try of the token's retry counter.
var ErrWrongPIN = errors.New("wrong PIN")

// ErrNoPKCS11: this build has no PKCS#11 support (it was built with cgo off).
var ErrNoPKCS11 = errors.New("PKCS#11 is not supported by this build (built with CGO_ENABLED=0): rebuild with cgo to use keys in a hardware token")

// PKCS11URI is an RFC 7512 PKCS#11 URI naming a token and a key in it, e.g.
//
//	pkcs11:token=signet;object=release?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin
//
// Path attributes select the token (token, serial, slot-id) and the key
// (object: its label, id: its CKA_ID); query attributes name the module
// (module-path) and the PIN (pin-value, or pin-source: a file holding it).
// Other attributes (manufacturer, model, library-*, type) are accepted and
// kept but do not narrow the search.
type PKCS11URI struct {
	path  map[string]string
	query map[string]string
}

// ParsePKCS11URI parses s, which must start "pkcs11:", name a module
// (module-path) and a token (token, serial or slot-id).
func ParsePKCS11URI(s string) (*PKCS11URI, error) {
	rest, ok := strings.CutPrefix(s, "pkcs11:")
	if !ok {
		return nil, errors.New(`PKCS#11 URI: does not start with "pkcs11:" (RFC 7512, e.g. pkcs11:token=NAME;object=LABEL?module-path=/path/to/module.so)`)
	}
	p, q, _ := strings.Cut(rest, "?")
	u := &PKCS11URI{path: map[string]string{}, query: map[string]string{}}
	if err := parseAttrs(p, ";", u.path); err != nil {
		return nil, err
	}
	if err := parseAttrs(q, "&", u.query); err != nil {
		return nil, err
	}
	if u.ModulePath() == "" {
		return nil, errors.New("PKCS#11 URI: no module-path: add ?module-path=/path/to/the/module.so (SoftHSM2 on Debian: /usr/lib/softhsm/libsofthsm2.so)")
	}
	if u.path["token"] == "" && u.path["serial"] == "" && u.path["slot-id"] == "" {
		return nil, errors.New("PKCS#11 URI: no token: name it with token=LABEL, serial=SERIAL or slot-id=N")
	}
	if v := u.path["slot-id"]; v != "" {
		if _, err := strconv.Atoi(v); err != nil {
			return nil, fmt.Errorf("PKCS#11 URI: slot-id %q is not a number", v)
		}
	}
	if u.query["pin-value"] != "" && u.query["pin-source"] != "" {
		return nil, errors.New("PKCS#11 URI: both pin-value and pin-source: give one")
	}
	return u, nil
}

// parseAttrs reads sep-separated name=value pairs, percent-decoding values.
// A PIN is never quoted in an error.
func parseAttrs(s, sep string, into map[string]string) error {
	if s == "" {
		return nil
	}
	for _, a := range strings.Split(s, sep) {
		name, value, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return fmt.Errorf("PKCS#11 URI: attribute %q is not NAME=VALUE", redactAttr(a))
		}
		v, err := url.PathUnescape(value)
		if err != nil {
			return fmt.Errorf("PKCS#11 URI: attribute %s: bad percent-encoding", name)
		}
		if _, dup := into[name]; dup {
			return fmt.Errorf("PKCS#11 URI: attribute %s given twice", name)
		}
		into[name] = v
	}
	return nil
}

// redactAttr hides what could be a PIN in a malformed attribute.
func redactAttr(a string) string {
	if strings.HasPrefix(a, "pin") {
		return "pin..."
	}
	return a
}

// ModulePath is the PKCS#11 module (a shared library) to load.
func (u *PKCS11URI) ModulePath() string { return u.query["module-path"] }

// Token is the token's label, Serial its serial number, SlotID its slot ("" for
// none given).
func (u *PKCS11URI) Token() string  { return u.path["token"] }
func (u *PKCS11URI) Serial() string { return u.path["serial"] }
func (u *PKCS11URI) SlotID() string { return u.path["slot-id"] }

// Object is the key's label (CKA_LABEL), ID its CKA_ID (raw bytes).
func (u *PKCS11URI) Object() string { return u.path["object"] }
func (u *PKCS11URI) ID() []byte     { return []byte(u.path["id"]) }

// TokenName names the token for messages: its label, serial or slot.
func (u *PKCS11URI) TokenName() string {
	switch {
	case u.Token() != "":
		return u.Token()
	case u.Serial() != "":
		return "serial " + u.Serial()
	}
	return "slot " + u.SlotID()
}

// withKey returns a copy that names the key by label and id, as a key store
// entry records it.
func (u *PKCS11URI) withKey(label string, id []byte) *PKCS11URI {
	c := &PKCS11URI{path: map[string]string{}, query: map[string]string{}}
	for k, v := range u.path {
		c.path[k] = v
	}
	for k, v := range u.query {
		c.query[k] = v
	}
	c.path["object"], c.path["id"], c.path["type"] = label, string(id), "private"
	return c
}

// withPIN returns a copy whose PIN is pin (as a pin-value, which String
// never prints).
func (u *PKCS11URI) withPIN(pin []byte) *PKCS11URI {
	c := &PKCS11URI{path: map[string]string{}, query: map[string]string{}}
	for k, v := range u.path {
		c.path[k] = v
	}
	for k, v := range u.query {
		c.query[k] = v
	}
	delete(c.query, "pin-source")
	c.query["pin-value"] = string(pin)
	return c
}

// String is the URI without its pin-value: what a key store entry records and
// what messages print. pin-source, the name of a file, is kept.
func (u *PKCS11URI) String() string {
	order := []string{"token", "serial", "slot-id", "manufacturer", "model", "object", "id", "type"}
	var parts []string
	seen := map[string]bool{}
	for _, k := range order {
		if v, ok := u.path[k]; ok && v != "" {
			parts = append(parts, k+"="+escapeAttr(v))
			seen[k] = true
		}
	}
	var rest []string
	for k := range u.path {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		parts = append(parts, k+"="+escapeAttr(u.path[k]))
	}
	s := "pkcs11:" + strings.Join(parts, ";")
	var qs []string
	for k := range u.query {
		if k != "pin-value" {
			qs = append(qs, k)
		}
	}
	sort.Strings(qs)
	for i, k := range qs {
		qs[i] = k + "=" + escapeAttr(u.query[k])
	}
	if len(qs) > 0 {
		s += "?" + strings.Join(qs, "&")
	}
	return s
}

// escapeAttr percent-encodes what RFC 7512 does not allow unencoded in a value.
func escapeAttr(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~:[]@!$'()*+,/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// PIN returns the token's PIN: the URI's pin-value, else the file its
// pin-source names ("file:" URI or path; one trailing line ending dropped),
// else $SIGNET_PKCS11_PIN, else asked on the terminal. The PIN never appears in
// an error.
func (u *PKCS11URI) PIN() ([]byte, error) {
	if v, ok := u.query["pin-value"]; ok {
		return []byte(v), nil
	}
	if src := u.query["pin-source"]; src != "" {
		path := strings.TrimPrefix(src, "file://")
		path = strings.TrimPrefix(path, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("token %q: reading the PIN from pin-source: %w", u.TokenName(), err)
		}
		return []byte(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")), nil
	}
	if v, ok := os.LookupEnv(PKCS11PINEnv); ok {
		return []byte(v), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, fmt.Errorf("token %q: no terminal to ask for its PIN on: set %s, or add pin-source=file:PATH to the PKCS#11 URI", u.TokenName(), PKCS11PINEnv)
	}
	fmt.Fprintf(os.Stderr, "PIN of token %q: ", u.TokenName())
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, fmt.Errorf("reading the PIN: %w", err)
	}
	return p, nil
}

// TokenAlgorithms lists the algorithms a key in a token may have, the default
// first: crypto11 signs with ECDSA and RSA keys, not Ed25519 ones.
func TokenAlgorithms() []Algorithm { return []Algorithm{ECDSAP256, RSAPSS3072} }
