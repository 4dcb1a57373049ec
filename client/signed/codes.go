package signed

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/verify"
)

// Exit codes of trustctl verify and pull: scripts branch on them.
const (
	// CodeVerified: the target exists, is fresh, and the content is what it says.
	CodeVerified = 0
	// CodeOther: anything else — bad arguments, no pinned root, no login,
	// trust metadata that fails verification (a rollback, a bad signature).
	CodeOther = 1
	// CodeNotSigned: no role delegated for the repository vouches for the tag
	// or digest (never signed, signed by an undelegated or revoked key, or signed
	// for another repository).
	CodeNotSigned = 10
	// CodeMismatch: the registry serves other bytes than the signed ones: a
	// manifest or blob of another digest or length, an index child outside the
	// signed closure, or signed content the registry no longer has.
	CodeMismatch = 11
	// CodeExpired: trust metadata on the way has expired (trustd stopped
	// re-signing, or the clock is wrong).
	CodeExpired = 12
	// CodeUnreachable: trustd or the registry could not be reached, or answered
	// with a server error.
	CodeUnreachable = 13
	// CodePolicy: signed, but the org's pull policy for the repository is
	// not met (an enforced one: a warn-mode one only warns), or cannot be
	// read; the registry refuses to serve the image for the same reason.
	CodePolicy = 14
)

// Error is a verification failure with its exit code.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Code returns the exit code for err (CodeVerified for nil).
func Code(err error) int {
	var e *Error
	var he *oci.HTTPError
	var ne net.Error
	var ue *url.Error
	var te *client.TokenError
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case err == nil:
		return CodeVerified
	case errors.As(err, &pe), errors.As(err, &le):
		// A local file: its syscall.Errno would pass for a net.Error below.
		return CodeOther
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, verify.ErrNotSigned):
		return CodeNotSigned
	case errors.Is(err, verify.ErrExpired):
		return CodeExpired
	case errors.Is(err, verify.ErrUnreachable):
		return CodeUnreachable
	case errors.Is(err, verify.ErrInvalidMetadata):
		return CodeOther
	case errors.Is(err, oci.ErrContentMismatch):
		return CodeMismatch
	case errors.As(err, &he):
		if he.Status == http.StatusForbidden && strings.Contains(he.Message, "pull policy") {
			// The registry's own verdict, in the policy package's words.
			return CodePolicy
		}
		if he.Status >= 500 {
			return CodeUnreachable
		}
		return CodeOther
	case errors.As(err, &te) && te.Status >= 500:
		return CodeUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne), errors.As(err, &ue):
		return CodeUnreachable
	}
	return CodeOther
}

// Reason is a short word for a code, as --output json's reason starts.
func Reason(code int) string {
	switch code {
	case CodeVerified:
		return "verified"
	case CodeNotSigned:
		return "not signed"
	case CodeMismatch:
		return "content mismatch"
	case CodeExpired:
		return "expired metadata"
	case CodeUnreachable:
		return "unreachable"
	case CodePolicy:
		return "policy not met"
	}
	return "error"
}

func mismatch(err error) error    { return &Error{Code: CodeMismatch, Err: err} }
func unreachable(err error) error { return &Error{Code: CodeUnreachable, Err: err} }
