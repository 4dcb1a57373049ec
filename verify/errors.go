package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The kinds of failure callers act on. Every error of this package matches
// exactly one of them with errors.Is.
var (
	// ErrNotSigned: the trust graph does not vouch for the target: no role
	// delegated for it lists it, or the role that would has no valid signatures
	// from the keys delegated for it (a revoked key), or has never been published.
	ErrNotSigned = errors.New("not signed")
	// ErrExpired: a role on the way (root, timestamp, snapshot, or a delegated
	// role) has expired, e.g. because trustd stopped re-signing (a freeze attack)
	// or the local clock is wrong.
	ErrExpired = errors.New("trust metadata expired")
	// ErrUnreachable: trustd could not be reached, or refused to serve metadata.
	ErrUnreachable = errors.New("trust metadata unreachable")
	// ErrInvalidMetadata: metadata failed verification in a way that points at an
	// attack or a broken server: a rollback to an older version, a wrong hash or
	// length, a bad signature on a top-level role, malformed JSON.
	ErrInvalidMetadata = errors.New("invalid trust metadata")
)

// Error is what Resolve and Roles return: the kind (one of the Err* values), the
// target asked for, and the cause.
type Error struct {
	Kind   error
	Target string
	Err    error
}

func (e *Error) Error() string {
	var s string
	switch e.Kind {
	case ErrNotSigned:
		s = fmt.Sprintf("%s is not signed", e.Target)
	case ErrExpired:
		s = "trust metadata expired"
	case ErrUnreachable:
		s = "trust metadata unreachable"
	default:
		s = "invalid trust metadata"
	}
	if e.Kind != ErrNotSigned && e.Target != "" {
		s = "verifying " + e.Target + ": " + s
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Is(target error) bool { return target == e.Kind }
func (e *Error) Unwrap() error        { return e.Err }

// phase says where in a refresh an error happened: the same go-tuf error means
// different things for the top-level roles and for delegated ones.
type phase int

const (
	phaseRefresh phase = iota // root, timestamp, snapshot, targets
	phaseWalk                 // delegated roles, looking for the target
)

// classify maps a go-tuf (or transport) error to one of the package's kinds.
func classify(err error, ph phase) error {
	var httpErr *metadata.ErrDownloadHTTP
	var unreachable *unreachableError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ErrUnreachable
	case errors.As(err, &unreachable):
		return ErrUnreachable
	case errors.As(err, &httpErr):
		if httpErr.StatusCode == http.StatusNotFound && !strings.HasSuffix(httpErr.URL, "/timestamp.json") {
			// A version that the timestamp or snapshot names but the server does
			// not serve: a broken or tampered-with repository. (A missing
			// timestamp.json is a trustd without a trust root yet: unreachable.)
			return ErrInvalidMetadata
		}
		return ErrUnreachable
	case errors.Is(err, &metadata.ErrDownloadLengthMismatch{}):
		// More bytes than the snapshot or the configured limit allow: endless data.
		return ErrInvalidMetadata
	case errors.Is(err, &metadata.ErrExpiredMetadata{}):
		return ErrExpired
	case errors.Is(err, &metadata.ErrUnsignedMetadata{}) && ph == phaseWalk:
		// A delegated role not signed by the keys its parent delegates to now,
		// e.g. after a publisher key was revoked: it vouches for nothing.
		return ErrNotSigned
	}
	return ErrInvalidMetadata
}

// unreachableError is a transport failure talking to trustd.
type unreachableError struct {
	url string
	err error
}

func (e *unreachableError) Error() string { return fmt.Sprintf("GET %s: %v", e.url, e.err) }
func (e *unreachableError) Unwrap() error { return e.err }
