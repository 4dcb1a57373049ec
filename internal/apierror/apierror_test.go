package apierror

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/signet-oss/signet/storage/driver"
)

func TestWriteSendsTheBodyStatusAndHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, httptest.NewRequest(http.MethodGet, "/x", nil), NoSpace(Unavailable, "full"), false)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	if got, want := rec.Header().Get("Retry-After"), fmt.Sprint(int(driver.NoSpaceRetryAfter.Seconds())); got != want {
		t.Errorf("Retry-After %q, want %q", got, want)
	}
	if got, want := rec.Body.String(), `{"errors":[{"code":"UNAVAILABLE","message":"full"}]}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}

	rec = httptest.NewRecorder()
	Write(rec, httptest.NewRequest(http.MethodGet, "/x", nil), &Error{Code: Denied}, false)
	if got, want := rec.Body.String(), `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`; got != want {
		t.Errorf("body without detail %s, want %s", got, want)
	}
}

func TestWriteLeavesTheBodyOfAHeadOutUnlessAsked(t *testing.T) {
	for _, headBody := range []bool{false, true} {
		rec := httptest.NewRecorder()
		Write(rec, httptest.NewRequest(http.MethodHead, "/x", nil), &Error{Code: Unknown}, headBody)
		if got := rec.Body.Len() > 0; got != headBody {
			t.Errorf("headBody %v: body written %v", headBody, got)
		}
		if rec.Code != http.StatusInternalServerError {
			t.Errorf("status %d, want 500", rec.Code)
		}
	}
}

func TestLogRecordsWhatTheClientIsNotTold(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r := httptest.NewRequest(http.MethodPut, "/p", nil)
	Log(r.Context(), log, r, http.StatusNotFound, fmt.Errorf("no such thing"), "pushes")
	if buf.Len() != 0 {
		t.Fatalf("a 4xx was logged: %s", buf.String())
	}
	Log(r.Context(), log, r, http.StatusInternalServerError, fmt.Errorf("open /secret/path: boom"), "pushes")
	if !strings.Contains(buf.String(), `msg="request failed"`) || !strings.Contains(buf.String(), "/secret/path") {
		t.Errorf("a 500's cause was not logged: %s", buf.String())
	}
}
