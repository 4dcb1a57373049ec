package registry

import (
	"context"
	"errors"
	"net/http"

	"github.com/signet-oss/signet/internal/apierror"
	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/storage/driver"
)

// ErrorCode is an error code of the OCI distribution spec (and of the Docker
// registry API where clients rely on it), with the HTTP status it is sent with.
type ErrorCode = apierror.Code

// The error codes, in one place.
var (
	CodeBlobUnknown         = ErrorCode{Code: "BLOB_UNKNOWN", Status: http.StatusNotFound, Message: "blob unknown to registry"}
	CodeBlobUploadInvalid   = ErrorCode{Code: "BLOB_UPLOAD_INVALID", Status: http.StatusBadRequest, Message: "blob upload invalid"}
	CodeBlobUploadUnknown   = ErrorCode{Code: "BLOB_UPLOAD_UNKNOWN", Status: http.StatusNotFound, Message: "blob upload unknown to registry"}
	CodeDigestInvalid       = ErrorCode{Code: "DIGEST_INVALID", Status: http.StatusBadRequest, Message: "provided digest did not match uploaded content"}
	CodeManifestBlobUnknown = ErrorCode{Code: "MANIFEST_BLOB_UNKNOWN", Status: http.StatusNotFound, Message: "manifest references a manifest or blob unknown to registry"}
	CodeManifestInvalid     = ErrorCode{Code: "MANIFEST_INVALID", Status: http.StatusBadRequest, Message: "manifest invalid"}
	CodeManifestUnknown     = ErrorCode{Code: "MANIFEST_UNKNOWN", Status: http.StatusNotFound, Message: "manifest unknown to registry"}
	CodeNameInvalid         = ErrorCode{Code: "NAME_INVALID", Status: http.StatusBadRequest, Message: "invalid repository name"}
	CodeNameUnknown         = ErrorCode{Code: "NAME_UNKNOWN", Status: http.StatusNotFound, Message: "repository name not known to registry"}
	CodeSizeInvalid         = ErrorCode{Code: "SIZE_INVALID", Status: http.StatusBadRequest, Message: "provided length did not match content length"}
	CodeTagInvalid          = ErrorCode{Code: "TAG_INVALID", Status: http.StatusBadRequest, Message: "manifest tag did not match URI"}
	CodeUnauthorized        = apierror.Unauthorized
	CodeDenied              = apierror.Denied
	CodeUnsupported         = apierror.Unsupported
	CodeTooManyRequests     = apierror.TooManyRequests
	CodePaginationInvalid   = ErrorCode{Code: "PAGINATION_NUMBER_INVALID", Status: http.StatusBadRequest, Message: "invalid number of results requested"}
	CodeRangeInvalid        = ErrorCode{Code: "BLOB_UPLOAD_INVALID", Status: http.StatusRequestedRangeNotSatisfiable, Message: "chunk out of order"}
	CodeManifestTooLarge    = ErrorCode{Code: "SIZE_INVALID", Status: http.StatusRequestEntityTooLarge, Message: "manifest too large"}
	CodeUnavailable         = apierror.Unavailable
	CodeUnknown             = apierror.Unknown
	// CodeQueryInvalid is Signet's own, for a bad query of its own endpoints
	// (the audit log's filters).
	CodeQueryInvalid = ErrorCode{Code: "QUERY_INVALID", Status: http.StatusBadRequest, Message: "invalid query parameters"}
	// CodeTimestampInvalid is Signet's own, for a Signet-Trust-Timestamp
	// header that is not a timestamp.json at all (trustoffer.go).
	CodeTimestampInvalid = ErrorCode{Code: "TIMESTAMP_INVALID", Status: http.StatusBadRequest, Message: "invalid trust timestamp header"}
)

// Error is an API error: a code, a message that says what was wrong, and the
// headers sent with it.
type Error = apierror.Error

// apiError builds an *Error whose detail is err's message.
func apiError(code ErrorCode, err error) *Error {
	e := &Error{Code: code}
	if err != nil {
		e.Detail = err.Error()
	}
	return e
}

// toAPIError maps a domain error to the API error the client gets.
func toAPIError(err error) *Error {
	var apiErr *Error
	var mismatch *storage.DigestMismatchError
	var rangeErr *storage.RangeError
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.Is(err, driver.ErrNoSpace):
		return errNoSpace()
	case errors.As(err, &mismatch):
		return apiError(CodeDigestInvalid, err)
	case errors.As(err, &rangeErr):
		return apiError(CodeRangeInvalid, err)
	case errors.Is(err, driver.ErrUnavailable):
		// Before the upload cases: a chunk the store could not take is the
		// store's failure, not a bad body.
		return storageUnavailable()
	case errors.Is(err, storage.ErrNameInvalid):
		return apiError(CodeNameInvalid, err)
	case errors.Is(err, storage.ErrNameUnknown):
		return apiError(CodeNameUnknown, err)
	case errors.Is(err, storage.ErrTagInvalid):
		return apiError(CodeTagInvalid, err)
	case errors.Is(err, storage.ErrDigestInvalid):
		return apiError(CodeDigestInvalid, err)
	case errors.Is(err, storage.ErrBlobUnknown):
		return apiError(CodeBlobUnknown, err)
	case errors.Is(err, storage.ErrManifestUnknown):
		return apiError(CodeManifestUnknown, err)
	case errors.Is(err, storage.ErrManifestInvalid):
		return apiError(CodeManifestInvalid, err)
	case errors.Is(err, storage.ErrManifestTooLarge):
		return apiError(CodeManifestTooLarge, err)
	case errors.Is(err, storage.ErrUploadUnknown):
		return apiError(CodeBlobUploadUnknown, err)
	case errors.Is(err, storage.ErrUploadInvalid):
		return apiError(CodeBlobUploadInvalid, err)
	case errors.Is(err, storage.ErrUploadInterrupted) && errors.Is(err, storage.ErrSizeInvalid):
		return apiError(CodeSizeInvalid, err)
	case errors.Is(err, storage.ErrUploadInterrupted):
		return apiError(CodeBlobUploadInvalid, err)
	case errors.Is(err, storage.ErrSizeInvalid):
		return apiError(CodeSizeInvalid, err)
	case errors.Is(err, storage.ErrUnsupported):
		return apiError(CodeUnsupported, err)
	case errors.Is(err, context.Canceled):
		return apiError(ErrorCode{Code: "UNKNOWN", Status: 499, Message: "client closed request"}, err)
	}
	return &Error{Code: CodeUnknown}
}

// errNoSpace answers a push refused because the storage is full: 503, which
// clients retry, after driver.NoSpaceRetryAfter. The message says why without
// naming the host's path; the log names it (see writeError).
func errNoSpace() *Error {
	return apierror.NoSpace(CodeUnavailable,
		"the registry is out of storage space: this push was not completed; push again once space is freed")
}

// storageUnavailable is the answer to a request the storage backend failed
// in a way that may pass. Its detail names no endpoint or path (the log has
// the cause): the client only needs to know to come back.
func storageUnavailable() *Error {
	return apierror.StorageUnavailable(CodeUnavailable, "the storage backend is temporarily unavailable; retry later")
}

// writeError sends err as the spec's JSON error body. Errors that map to no API
// error are logged (never sent: they may hold paths of the host) and sent as 500.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toAPIError(err)
	apierror.Log(r.Context(), s.log, r, e.Code.Status, err, "pushes")
	apierror.Write(w, r, e, false)
}
