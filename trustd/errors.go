package trustd

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/signet-oss/signet/internal/requestid"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/tokenauth"
	"github.com/signet-oss/signet/trustd/api"
	"github.com/signet-oss/signet/trustd/directory"
)

// ErrorCode is an error code of trustd's API (the registry's codes where they
// mean the same), with the HTTP status it is sent with.
type ErrorCode struct {
	Code    string
	Status  int
	Message string
}

// The error codes, in one place.
var (
	CodeUnauthorized    = ErrorCode{"UNAUTHORIZED", http.StatusUnauthorized, "authentication required"}
	CodeDenied          = ErrorCode{"DENIED", http.StatusForbidden, "requested access to the resource is denied"}
	CodeNameInvalid     = ErrorCode{"NAME_INVALID", http.StatusBadRequest, "invalid name"}
	CodeNotFound        = ErrorCode{"NOT_FOUND", http.StatusNotFound, "not found"}
	CodeConflict        = ErrorCode{"CONFLICT", http.StatusConflict, "already exists"}
	CodeInvalid         = ErrorCode{"INVALID", http.StatusBadRequest, "invalid request"}
	CodeTooManyRequests = ErrorCode{"TOOMANYREQUESTS", http.StatusTooManyRequests, "too many requests"}
	CodeUnsupported     = ErrorCode{"UNSUPPORTED", http.StatusMethodNotAllowed, "the operation is unsupported"}
	CodeUnknown         = ErrorCode{"UNKNOWN", http.StatusInternalServerError, "unknown error"}
)

// CodeNoSpace answers a change that could not be written because trustd's
// storage is full: 503 with a Retry-After of driver.NoSpaceRetryAfter (the
// operator must free space first). Nothing of the change was made.
var CodeNoSpace = ErrorCode{"UNAVAILABLE", http.StatusServiceUnavailable,
	"trustd is out of storage space: this change was not made; retry once space is freed"}

// CodeStorageUnavailable answers a request the storage backend failed in a way
// that may pass (driver.ErrUnavailable): 503 with a Retry-After of
// driver.UnavailableRetryAfter.
var CodeStorageUnavailable = ErrorCode{"UNAVAILABLE", http.StatusServiceUnavailable,
	"trustd's storage backend is temporarily unavailable; retry later"}

// Errors of the HTTP layer, matched with errors.Is when a handler's error is
// mapped to a code (the directory's own errors are package directory's).
var (
	errDenied = errors.New("denied")
	errUnauth = errors.New("authentication required")
)

// apiError is an error with the code it is sent with.
type apiError struct {
	code   ErrorCode
	detail string
}

func (e *apiError) Error() string { return e.code.Code + ": " + e.detail }

func newAPIError(code ErrorCode, detail string) *apiError {
	return &apiError{code: code, detail: detail}
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
		return newAPIError(CodeTooManyRequests, rl.Error())
	case errors.Is(err, driver.ErrNoSpace):
		return &apiError{code: CodeNoSpace}
	case errors.Is(err, driver.ErrUnavailable):
		return &apiError{code: CodeStorageUnavailable}
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
	return &apiError{code: CodeUnknown}
}

// writeError sends err as {"errors":[{"code","message"}]}, with Retry-After on
// 429 and a Bearer challenge on 401 from the management API.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toAPIError(err)
	if advice := driver.NoSpaceAdvice(err, "changes"); advice != "" {
		s.log.ErrorContext(r.Context(), advice, "method", r.Method, "path", r.URL.Path, "request_id", requestid.FromContext(r.Context()), "err", err)
	} else if e.code.Status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "request_id", requestid.FromContext(r.Context()), "err", err)
	}
	var rl *directory.RateLimitedError
	if errors.As(err, &rl) {
		secs := int64((rl.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	}
	switch e.code {
	case CodeNoSpace:
		w.Header().Set("Retry-After", strconv.Itoa(int(driver.NoSpaceRetryAfter/time.Second)))
	case CodeStorageUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(int(driver.UnavailableRetryAfter/time.Second)))
	}
	msg := e.detail
	if msg == "" {
		msg = e.code.Message
	}
	body, _ := json.Marshal(api.Errors{Errors: []api.Error{{Code: e.code.Code, Message: msg}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.code.Status)
	w.Write(body)
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
