package logging

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRequestLine(t *testing.T) {
	var buf bytes.Buffer
	log := Config{Level: "info", Format: "text"}.NewLogger(&buf)
	r := httptest.NewRequest("GET", "/token?account=alice&password=hunter2", nil)
	Request(context.Background(), log, r, Line{Route: "/token", Status: 503, Bytes: 12, Dur: time.Millisecond, ID: "id-1", Remote: "10.0.0.1"},
		[2]string{"sub", "alice"}, [2]string{"repo", ""})
	line := buf.String()
	for _, want := range []string{"level=ERROR", `msg=request`, "method=GET", "route=/token", "path=/token ", "status=503", "bytes=12", "request_id=id-1", "remote=10.0.0.1", "sub=alice"} {
		if !strings.Contains(line, want) {
			t.Errorf("the line lacks %q: %s", want, line)
		}
	}
	for _, not := range []string{"hunter2", "account=", "repo="} {
		if strings.Contains(line, not) {
			t.Errorf("the line holds %q: %s", not, line)
		}
	}
	buf.Reset()
	quiet := Config{Level: "warn", Format: "text"}.NewLogger(&buf)
	Request(context.Background(), quiet, r, Line{Status: 200})
	if buf.Len() != 0 {
		t.Errorf("a 200 was logged at level warn: %s", buf.String())
	}
}
