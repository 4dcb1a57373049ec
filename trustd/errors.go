package trustd

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/signet-oss/signet/internal/apierror"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/tokenauth"
	"github.com/signet-oss/signet/trustd/directory"
)

// ErrorCode is an error code of trustd's API (the registry's codes where they
// mean the same), with the HTTP status it is sent with.
type ErrorCode = apierror.Code

// The error codes, in one place.
var (
	CodeUnauthorized    = apierror.Unauthorized
	CodeDenied          = apierror.Denied
	CodeNameInvalid     = ErrorCode{Code: "NAME_INVALID", Status: http.StatusBadRequest, Message: "invalid name"}
	CodeNotFound        = ErrorCode{Code: "NOT_FOUND", Status: http.StatusNotFound, Message: "not found"}
	CodeConflict        = ErrorCode{Code: "CONFLICT", Status: http.StatusConflict, Message: "already exists"}
	CodeInvalid         = ErrorCode{Code: "INVALID", Status: http.StatusBadRequest, Message: "invalid request"}
	CodeTooManyRequests = apierror.TooManyRequests
	CodeUnsupported     = apierror.Unsupported
	CodeUnknown         = apierror.Unknown
)

// CodeNoSpace answers a change that could not be written because trustd's
// storage is full: 503 with a Retry-After of driver.NoSpaceRetryAfter (the
// operator must free space first). Nothing of the change was made.
var CodeNoSpace = ErrorCode{Code: "UNAVAILABLE", Status: http.StatusServiceUnavailable,
	Message: "trustd is out of storage space: this change was not made; retry once space is freed"}

// CodeStorageUnavailable answers a request the storage backend failed in a way
// that may pass (driver.ErrUnavailable): 503 with a Retry-After of
// driver.UnavailableRetryAfter.
var CodeStorageUnavailable = ErrorCode{Code: "UNAVAILABLE", Status: http.StatusServiceUnavailable,
	Message: "trustd's storage backend is temporarily unavailable; retry later"}

// Errors of the HTTP layer, matched with errors.Is when a handler's error is
// mapped to a code (the directory's own errors are package directory's).
var (
	errDenied = errors.New("denied")
	errUnauth = errors.New("authentication required")
)

// apiError is an error with the code it is sent with.
type apiError = apierror.Error

func newAPIError(code ErrorCode, detail string) *apiError {
	return &apiError{Code: code, Detail: detail}
}

// toAPIError maps a domain error to what the client gets. Errors that map to no
// code are sent as 500 without their text (it may name paths of the host).
func toAPIError(err error) *apiError {
	var ae *apiError
	var rl *directory.RateLimitedError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &rl):
		// Retry-After in whole seconds, rounded up, at least 1.
		secs := int64((rl.RetryAfter + time.Second - 1) / time.Second)
		e := newAPIError(CodeTooManyRequests, rl.Error())
		e.Header = http.Header{"Retry-After": {strconv.FormatInt(max(secs, 1), 10)}}
		return e
	case errors.Is(err, driver.ErrNoSpace):
		return apierror.NoSpace(CodeNoSpace, "")
	case errors.Is(err, driver.ErrUnavailable):
		return apierror.StorageUnavailable(CodeStorageUnavailable, "")
	case errors.Is(err, directory.ErrBadCredentials), errors.Is(err, errUnauth):
		return newAPIError(CodeUnauthorized, err.Error())
	case errors.Is(err, errDenied):
		return newAPIError(CodeDenied, err.Error())
	case errors.Is(err, directory.ErrNameInvalid):
		return newAPIError(CodeNameInvalid, err.Error())
	case errors.Is(err, tokenauth.ErrInvalidScope), errors.Is(err, directory.ErrInvalid):
		return newAPIError(CodeInvalid, err.Error())
	case errors.Is(err, directory.ErrNotFound):
		return newAPIError(CodeNotFound, err.Error())
	case errors.Is(err, directory.ErrConflict):
		return newAPIError(CodeConflict, err.Error())
	}
	return &apiError{Code: CodeUnknown}
}

// writeError sends err as {"errors":[{"code","message"}]}, with Retry-After on
// 429 and on the storage's 503s.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toAPIError(err)
	apierror.Log(r.Context(), s.log, r, e.Code.Status, err, "changes")
	apierror.Write(w, r, e, true)
}

// writeJSON sends v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding the response failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
