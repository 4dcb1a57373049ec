package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/signet-oss/signet/internal/requestid"
	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/storage/driver"
)

// ErrorCode is an error code of the OCI distribution spec (and of the Docker
// registry API where clients rely on it), with the HTTP status it is sent with.
type ErrorCode struct {
	Code    string
	Status  int
	Message string
}

// The error codes, in one place.
var (
	CodeBlobUnknown         = ErrorCode{"BLOB_UNKNOWN", http.StatusNotFound, "blob unknown to registry"}
	CodeBlobUploadInvalid   = ErrorCode{"BLOB_UPLOAD_INVALID", http.StatusBadRequest, "blob upload invalid"}
	CodeBlobUploadUnknown   = ErrorCode{"BLOB_UPLOAD_UNKNOWN", http.StatusNotFound, "blob upload unknown to registry"}
	CodeDigestInvalid       = ErrorCode{"DIGEST_INVALID", http.StatusBadRequest, "provided digest did not match uploaded content"}
	CodeManifestBlobUnknown = ErrorCode{"MANIFEST_BLOB_UNKNOWN", http.StatusNotFound, "manifest references a manifest or blob unknown to registry"}
	CodeManifestInvalid     = ErrorCode{"MANIFEST_INVALID", http.StatusBadRequest, "manifest invalid"}
	CodeManifestUnknown     = ErrorCode{"MANIFEST_UNKNOWN", http.StatusNotFound, "manifest unknown to registry"}
	CodeNameInvalid         = ErrorCode{"NAME_INVALID", http.StatusBadRequest, "invalid repository name"}
	CodeNameUnknown         = ErrorCode{"NAME_UNKNOWN", http.StatusNotFound, "repository name not known to registry"}
	CodeSizeInvalid         = ErrorCode{"SIZE_INVALID", http.StatusBadRequest, "provided length did not match content length"}
	CodeTagInvalid          = ErrorCode{"TAG_INVALID", http.StatusBadRequest, "manifest tag did not match URI"}
	CodeUnauthorized        = ErrorCode{"UNAUTHORIZED", http.StatusUnauthorized, "authentication required"}
	CodeDenied              = ErrorCode{"DENIED", http.StatusForbidden, "requested access to the resource is denied"}
	CodeUnsupported         = ErrorCode{"UNSUPPORTED", http.StatusMethodNotAllowed, "the operation is unsupported"}
	CodeTooManyRequests     = ErrorCode{"TOOMANYREQUESTS", http.StatusTooManyRequests, "too many requests"}
	CodePaginationInvalid   = ErrorCode{"PAGINATION_NUMBER_INVALID", http.StatusBadRequest, "invalid number of results requested"}
	CodeRangeInvalid        = ErrorCode{"BLOB_UPLOAD_INVALID", http.StatusRequestedRangeNotSatisfiable, "chunk out of order"}
	CodeManifestTooLarge    = ErrorCode{"SIZE_INVALID", http.StatusRequestEntityTooLarge, "manifest too large"}
	CodeUnavailable         = ErrorCode{"UNAVAILABLE", http.StatusServiceUnavailable, "service unavailable"}
	CodeUnknown             = ErrorCode{"UNKNOWN", http.StatusInternalServerError, "unknown error"}
	// CodeQueryInvalid is Signet's own, for a bad query of its own endpoints
	// (the audit log's filters).
	CodeQueryInvalid = ErrorCode{"QUERY_INVALID", http.StatusBadRequest, "invalid query parameters"}
)

// Error is an API error: a code, a message that says what was wrong, and detail.
type Error struct {
	Code   ErrorCode
	Detail string
	// Header is set on the response (e.g. Range for a 416).
	Header http.Header
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return e.Code.Code + ": " + e.Detail
	}
	return e.Code.Code + ": " + e.Code.Message
}

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
		return apiError(ErrorCode{"UNKNOWN", 499, "client closed request"}, err)
	}
	return &Error{Code: CodeUnknown}
}

// errNoSpace answers a push refused because the storage is full: 503, which
// clients retry, after driver.NoSpaceRetryAfter. The message says why without
// naming the host's path; the log names it (see writeError).
func errNoSpace() *Error {
	return &Error{Code: CodeUnavailable,
		Detail: "the registry is out of storage space: this push was not completed; push again once space is freed",
		Header: http.Header{"Retry-After": {strconv.Itoa(int(driver.NoSpaceRetryAfter / time.Second))}}}
}

// storageUnavailable is the answer to a request the storage backend failed
// in a way that may pass. Its detail names no endpoint or path (the log has
// the cause): the client only needs to know to come back.
func storageUnavailable() *Error {
	return &Error{
		Code:   CodeUnavailable,
		Detail: "the storage backend is temporarily unavailable; retry later",
		Header: http.Header{"Retry-After": {strconv.Itoa(int(driver.UnavailableRetryAfter / time.Second))}},
	}
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError sends err as the spec's JSON error body. Errors that map to no API
// error are logged (never sent: they may hold paths of the host) and sent as 500.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toAPIError(err)
	if advice := driver.NoSpaceAdvice(err, "pushes"); advice != "" {
		s.log.ErrorContext(r.Context(), advice, "method", r.Method, "path", r.URL.Path, "request_id", requestid.FromContext(r.Context()), "err", err)
	} else if e.Code.Status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "request_id", requestid.FromContext(r.Context()), "err", err)
	}
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	msg := e.Code.Message
	if e.Detail != "" {
		msg = e.Detail
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: e.Code.Code, Message: msg}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Code.Status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
