package storage

import (
	"errors"
	"fmt"

	"github.com/signet-oss/signet/reference"
)

// Domain errors. Wrapped with the details a caller needs (repository, digest); the
// HTTP layer maps them to OCI error codes with errors.Is / errors.As.
var (
	ErrNameInvalid      = reference.ErrNameInvalid
	ErrNameUnknown      = errors.New("repository name not known to registry")
	ErrTagInvalid       = reference.ErrTagInvalid
	ErrDigestInvalid    = reference.ErrDigestInvalid
	ErrBlobUnknown      = errors.New("blob unknown to registry")
	ErrManifestUnknown  = errors.New("manifest unknown to registry")
	ErrManifestInvalid  = errors.New("manifest invalid")
	ErrManifestTooLarge = errors.New("manifest too large")
	ErrUploadUnknown    = errors.New("blob upload unknown to registry")
	ErrUploadInvalid    = errors.New("blob upload invalid")
	ErrSizeInvalid      = errors.New("provided length did not match content length")
	// ErrUploadInterrupted: a chunk's body broke off; the bytes that arrived are kept.
	ErrUploadInterrupted = errors.New("upload body interrupted")
	ErrUnsupported       = errors.New("the operation is unsupported")
	// ErrTagMoved: a conditional tag write (SetTagIf) found the tag moved since
	// it was read.
	ErrTagMoved = errors.New("tag moved")
)

// DigestMismatchError: the content's digest is not the one the client named.
type DigestMismatchError struct {
	Want, Got string
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("digest mismatch: client named %s, content is %s", e.Want, e.Got)
}

// RangeError: a chunk does not start where the upload stands.
type RangeError struct {
	// Offset is the number of bytes the upload holds.
	Offset int64
	Start  int64
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("chunk starts at byte %d, but the upload holds %d bytes", e.Start, e.Offset)
}
