package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

var (
	// ErrContentMismatch: bytes read from a registry or a source are not the
	// digest or the length they were asked for.
	ErrContentMismatch = errors.New("content mismatch")
	// ErrNotFound: the registry has no such manifest or blob.
	ErrNotFound = errors.New("not found")
)

// MismatchError says which content did not match, and how.
type MismatchError struct {
	What   string // e.g. "blob sha256:... of acme/app"
	Reason string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s: %s", e.What, e.Reason)
}

func (e *MismatchError) Is(target error) bool { return target == ErrContentMismatch }

// HTTPError is a registry's refusal: the request, its status, and the first
// OCI error code and message of the body.
type HTTPError struct {
	Method, URL string
	Status      int
	Code        string
	Message     string
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("%s %s answered %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Code != "" || e.Message != "" {
		s += ": " + strings.TrimSpace(e.Code+" "+e.Message)
	}
	return s
}

func (e *HTTPError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// newHTTPError reads an OCI error body ({"errors":[{"code","message"}]}).
func newHTTPError(resp *http.Response, body []byte) *HTTPError {
	e := &HTTPError{Method: resp.Request.Method, URL: resp.Request.URL.Redacted(), Status: resp.StatusCode}
	var eb struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &eb) == nil && len(eb.Errors) > 0 {
		e.Code, e.Message = eb.Errors[0].Code, eb.Errors[0].Message
	} else if s := strings.TrimSpace(string(body)); s != "" && len(s) < 300 {
		e.Message = s
	}
	return e
}
