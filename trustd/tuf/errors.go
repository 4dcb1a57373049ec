package tuf

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/signet-oss/signet/storage/driver"
)

// Error is a refusal the client should see: an HTTP status, one of trustd's error
// codes, and a message that says what was wrong and what to do.
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, when not zero, is sent as Retry-After (seconds).
	RetryAfter int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func newError(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func errInvalid(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, "INVALID", format, args...)
}

func errConflict(format string, args ...any) *Error {
	return newError(http.StatusConflict, "CONFLICT", format, args...)
}

func errNotFound(format string, args ...any) *Error {
	return newError(http.StatusNotFound, "NOT_FOUND", format, args...)
}

func errDenied(format string, args ...any) *Error {
	return newError(http.StatusForbidden, "DENIED", format, args...)
}

func errUnauthorized(format string, args ...any) *Error {
	return newError(http.StatusUnauthorized, "UNAUTHORIZED", format, args...)
}

func errTooLarge(format string, args ...any) *Error {
	return newError(http.StatusRequestEntityTooLarge, "TOO_LARGE", format, args...)
}

// ErrNotInitialised: the repository has no root yet (POST /tuf/api/init).
var ErrNotInitialised = errNotFound("the TUF repository is not initialised yet: an admin initialises it with trustctl init")

// errNoSpace answers a publish that could not be written for lack of space.
// Whatever step failed (a staged copy, a pending version, the snapshot, the head),
// it failed before the head moved: the publish was not made, and the same upload
// succeeds once space is freed.
var errNoSpace = &Error{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE", RetryAfter: int(driver.NoSpaceRetryAfter / time.Second),
	Message: "trustd is out of storage space: this publish was not made and the trust graph is unchanged; publish again once space is freed"}

// errStorageUnavailable answers a request the storage backend failed in a way
// that may pass (driver.ErrUnavailable, after the driver's own retries). Only a
// head that moved publishes anything, so a retry of the same upload is safe.
var errStorageUnavailable = &Error{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE", RetryAfter: int(driver.UnavailableRetryAfter / time.Second),
	Message: "trustd's storage backend is temporarily unavailable; retry later"}

// asError maps err to what the client sees; errors that are no *Error are 500s
// whose text stays in the log.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, driver.ErrNoSpace) {
		return errNoSpace
	}
	if errors.Is(err, driver.ErrUnavailable) {
		return errStorageUnavailable
	}
	return &Error{Status: http.StatusInternalServerError, Code: "UNKNOWN", Message: "the trust service failed; see its log"}
}

func writeError(w http.ResponseWriter, e *Error) {
	type entry struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	body, _ := json.Marshal(struct {
		Errors []entry `json:"errors"`
	}{[]entry{{e.Code, e.Message}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	w.Write(body)
}
