package registry

import (
	"github.com/signet-oss/signet/internal/apierror"

	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/storage/driver"
)

// TestStorageFailuresThatMayPassAre503 pins how a sick storage backend reaches
// a client: 503 UNAVAILABLE with Retry-After and a message that names no
// endpoint, also when it broke an upload's chunk (which is otherwise the
// client's 400), while the client's own broken body stays a 400.
func TestStorageFailuresThatMayPassAre503(t *testing.T) {
	sick := fmt.Errorf("s3: put /v1/blobs/x: %w: operation error S3: PutObject, dial tcp 10.1.2.3:9000: connection refused", driver.ErrUnavailable)
	cases := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter bool
	}{
		{"a store that fails a request", sick, http.StatusServiceUnavailable, "UNAVAILABLE", true},
		{"a store that fails a chunk", fmt.Errorf("%w: %w", storage.ErrUploadInterrupted, sick), http.StatusServiceUnavailable, "UNAVAILABLE", true},
		{"a store that fails while the body broke off", fmt.Errorf("%w: %w", storage.ErrUploadInterrupted, errors.Join(io.ErrUnexpectedEOF, sick)), http.StatusServiceUnavailable, "UNAVAILABLE", true},
		{"a body that broke off", fmt.Errorf("%w: %w", storage.ErrUploadInterrupted, io.ErrUnexpectedEOF), http.StatusBadRequest, "BLOB_UPLOAD_INVALID", false},
		{"a store failure that will not pass", errors.New("s3: put: AccessDenied"), http.StatusInternalServerError, "UNKNOWN", false},
	}
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.writeError(rec, httptest.NewRequest(http.MethodPatch, "/v2/a/blobs/uploads/x", nil), tc.err)
			var body apierror.Body
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if rec.Code != tc.status || body.Errors[0].Code != tc.code {
				t.Fatalf("got %d %s, want %d %s", rec.Code, body.Errors[0].Code, tc.status, tc.code)
			}
			if got := rec.Header().Get("Retry-After") != ""; got != tc.retryAfter {
				t.Errorf("Retry-After %q, want one: %v", rec.Header().Get("Retry-After"), tc.retryAfter)
			}
			if strings.Contains(rec.Body.String(), "10.1.2.3") {
				t.Errorf("the answer names the store's endpoint: %s", rec.Body)
			}
		})
	}
}
