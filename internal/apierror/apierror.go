// Package apierror is the error answer both servers send: a code with the HTTP
// status it goes with, the body {"errors":[{"code","message"}]} of the OCI
// distribution spec (which trustd's API speaks too), and the one write that
// sets Retry-After on a storage failure that may pass and logs what the
// client is not told. Each server keeps its own codes and its own mapping of
// domain errors to them; what they share is here.
package apierror

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/signet-oss/signet/internal/requestid"
	"github.com/signet-oss/signet/storage/driver"
)

// Code is an API error code with the HTTP status it is sent with and the
// message sent when no detail says more.
type Code struct {
	Code    string
	Status  int
	Message string
}

// Error is an API error: a code, a detail that says what was wrong (the
// code's message when empty), and headers set on the response (e.g. Range
// for a 416, Retry-After for a 503).
type Error struct {
	Code   Code
	Detail string
	Header http.Header
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return e.Code.Code + ": " + e.Detail
	}
	return e.Code.Code + ": " + e.Code.Message
}

// Message is what the body says: the detail, or the code's message.
func (e *Error) Message() string {
	if e.Detail != "" {
		return e.Detail
	}
	return e.Code.Message
}

// The codes both servers send with the same meaning (the registry's, of the
// OCI distribution spec). Unavailable is their storage failures' code: 503,
// which clients retry.
var (
	Unauthorized    = Code{"UNAUTHORIZED", http.StatusUnauthorized, "authentication required"}
	Denied          = Code{"DENIED", http.StatusForbidden, "requested access to the resource is denied"}
	Unsupported     = Code{"UNSUPPORTED", http.StatusMethodNotAllowed, "the operation is unsupported"}
	TooManyRequests = Code{"TOOMANYREQUESTS", http.StatusTooManyRequests, "too many requests"}
	Unavailable     = Code{"UNAVAILABLE", http.StatusServiceUnavailable, "service unavailable"}
	Unknown         = Code{"UNKNOWN", http.StatusInternalServerError, "unknown error"}
)

// NoSpace answers a write refused because the storage is full: code with a
// Retry-After of driver.NoSpaceRetryAfter (the operator must free space
// first). detail says what was not done, never the host's path (the log has it).
func NoSpace(code Code, detail string) *Error {
	return withRetryAfter(code, detail, driver.NoSpaceRetryAfter)
}

// StorageUnavailable answers a request the storage backend failed in a way
// that may pass (driver.ErrUnavailable): code with a Retry-After of
// driver.UnavailableRetryAfter. detail names no endpoint or path.
func StorageUnavailable(code Code, detail string) *Error {
	return withRetryAfter(code, detail, driver.UnavailableRetryAfter)
}

func withRetryAfter(code Code, detail string, after time.Duration) *Error {
	return &Error{Code: code, Detail: detail,
		Header: http.Header{"Retry-After": {strconv.Itoa(int(after / time.Second))}}}
}

// Body is the JSON body of an error answer.
type Body struct {
	Errors []Entry `json:"errors"`
}

// Entry is one error of a Body.
type Entry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Write sends e as the JSON error body, with e's headers and status; a HEAD
// request gets no body when headBody is false. Before it, Log records what
// the client is not told.
func Write(w http.ResponseWriter, r *http.Request, e *Error, headBody bool) {
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	body, _ := json.Marshal(Body{Errors: []Entry{{Code: e.Code.Code, Message: e.Message()}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Code.Status)
	if headBody || r.Method != http.MethodHead {
		w.Write(body)
	}
}

// Log records the cause of an answer at error level when the client is not
// told it: the storage is full (with driver.NoSpaceAdvice's words for the
// operator, refused naming what was refused, e.g. "pushes"), or status is a
// 5xx (whose cause may name paths of the host and is never sent).
func Log(ctx context.Context, log *slog.Logger, r *http.Request, status int, err error, refused string) {
	if advice := driver.NoSpaceAdvice(err, refused); advice != "" {
		log.ErrorContext(ctx, advice, "method", r.Method, "path", r.URL.Path, "request_id", requestid.FromContext(ctx), "err", err)
	} else if status >= 500 {
		log.ErrorContext(ctx, "request failed", "method", r.Method, "path", r.URL.Path, "request_id", requestid.FromContext(ctx), "err", err)
	}
}
