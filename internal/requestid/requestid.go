// Package requestid carries the ID of the HTTP request being served through a
// context and across services: the registry takes a caller's X-Request-ID (or
// makes one), logs it on its request line, and sends it on to trustd, which
// logs it on its own line, so one ID follows a request through both.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// Header is the header the ID travels in.
const Header = "X-Request-ID"

// maxLen bounds an ID taken from a caller; a longer or non-printable one is
// replaced, so a client cannot write arbitrary bytes into the logs.
const maxLen = 128

type key struct{}

// New returns a fresh random ID.
func New() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// FromContext returns the ID ctx carries, or "".
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// FromRequest returns the caller's ID when it is usable, else a new one.
func FromRequest(r *http.Request) string {
	if id := r.Header.Get(Header); valid(id) {
		return id
	}
	return New()
}

// Set puts ctx's ID, if any, on an outgoing request.
func Set(ctx context.Context, req *http.Request) {
	if id := FromContext(ctx); id != "" {
		req.Header.Set(Header, id)
	}
}

func valid(id string) bool {
	if id == "" || len(id) > maxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
