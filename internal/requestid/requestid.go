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
	"strconv"
	"sync/atomic"
)

// Header is the header the ID travels in, in its canonical form (so that it
// can be set in a header map directly).
const Header = "X-Request-Id"

// maxLen bounds an ID taken from a caller; a longer or non-printable one is
// replaced, so a client cannot write arbitrary bytes into the logs.
const maxLen = 128

type key struct{}

// Source makes request IDs: a random prefix drawn when it is made and a
// counter, so IDs are unique across processes and restarts and cheap on every
// request. They identify, they do not authenticate, so they need not be
// unpredictable.
type Source struct {
	prefix string
	n      atomic.Uint64
}

// NewSource returns a Source with a fresh prefix.
func NewSource() *Source {
	var b [8]byte
	rand.Read(b[:])
	return &Source{prefix: hex.EncodeToString(b[:]) + "-"}
}

// New returns a fresh ID.
func (s *Source) New() string {
	var b [40]byte
	return string(strconv.AppendUint(append(b[:0], s.prefix...), s.n.Add(1), 36))
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

// FromRequest returns the caller's ID when it is usable, else a new one
// from s.
func (s *Source) FromRequest(r *http.Request) string {
	if id := r.Header.Get(Header); valid(id) {
		return id
	}
	return s.New()
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
