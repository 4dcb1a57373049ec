package main

import (
	"encoding"
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/signed"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/internal/version"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/signer/agent"
	"github.com/signet-oss/signet/trustd/api"
)

// printedTypes are the types trustctl prints with --output json. A command
// that prints a new type adds it here.
var printedTypes = []any{
	agent.KeyInfo{}, audit.Record{}, api.Robot{}, api.Identity{},
	client.LoginResult{}, signer.KeyInfo{}, version.Info{},
	signed.PushResult{}, signOutput{}, verifyOutput{}, notationPolicyRepo{}, notationSetup{},
	trust.InitResult{}, trust.OrgResult{}, trust.DelegateResult{}, trust.Outcome{},
	trust.PolicyResult{}, trust.PolicyView{}, trust.RootInfo{},
	client.LogoutResult{}, api.Org{}, trust.Pinned{}, trust.TagList{}, exportedKey{},
}

var camelCase = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)

// TestJSONNamesAreCamelCase walks every type trustctl prints as JSON and fails
// on a member name that is not camelCase, such as a Go field name ("Uploaded")
// that a missing tag lets through, so scripts read one naming style everywhere.
func TestJSONNamesAreCamelCase(t *testing.T) {
	seen := map[reflect.Type]bool{}
	for _, v := range printedTypes {
		walkJSON(t, reflect.TypeOf(v), reflect.TypeOf(v).String(), seen)
	}
}

var (
	marshaler     = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

func walkJSON(t *testing.T, typ reflect.Type, path string, seen map[reflect.Type]bool) {
	t.Helper()
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array || typ.Kind() == reflect.Map {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct || seen[typ] {
		return
	}
	seen[typ] = true
	if typ.Implements(marshaler) || reflect.PointerTo(typ).Implements(marshaler) ||
		typ.Implements(textMarshaler) || reflect.PointerTo(typ).Implements(textMarshaler) {
		return // its own encoding (time.Time, digests)
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			walkJSON(t, f.Type, path, seen) // its fields are promoted
			continue
		}
		if name == "" {
			name = f.Name
		}
		if !camelCase.MatchString(name) {
			t.Errorf("%s.%s is printed as %q: give it a camelCase json tag", path, f.Name, name)
		}
		walkJSON(t, f.Type, path+"."+name, seen)
	}
}
