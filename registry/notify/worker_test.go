package notify

import (
	"net/http"
	"testing"
	"time"
)

func TestBackoffDoublesWithJitterUpToTheCap(t *testing.T) {
	base, max := time.Second, 30*time.Second
	for _, tc := range []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{0, 500 * time.Millisecond, time.Second},
		{1, time.Second, 2 * time.Second},
		{2, 2 * time.Second, 4 * time.Second},
		{4, 8 * time.Second, 16 * time.Second},
		{5, 15 * time.Second, 30 * time.Second},
		{60, 15 * time.Second, 30 * time.Second},
	} {
		for _, j := range []float64{0, 0.5, 0.999} {
			got := backoff(tc.attempt, base, max, j)
			if got < tc.lo || got > tc.hi {
				t.Errorf("backoff(%d, jitter %.3f) = %s, want within [%s, %s]", tc.attempt, j, got, tc.lo, tc.hi)
			}
		}
		if lo, hi := backoff(tc.attempt, base, max, 0), backoff(tc.attempt, base, max, 0.999); lo != tc.lo || hi <= lo {
			t.Errorf("backoff(%d): jitter spans [%s, %s], want it to start at %s and spread", tc.attempt, lo, hi, tc.lo)
		}
	}
}

func TestClassify(t *testing.T) {
	for status, want := range map[int]outcome{
		200: delivered, 202: delivered, 204: delivered,
		301: retry, 408: retry, 429: retry, 500: retry, 502: retry, 503: retry,
		400: permanent, 401: permanent, 403: permanent, 404: permanent, 410: permanent, 413: permanent,
	} {
		if got := classify(status); got != want {
			t.Errorf("classify(%d) = %d, want %d", status, got, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, header string
		want         time.Duration
	}{
		{"no header asks for nothing", "", 0},
		{"delay-seconds are seconds", "120", 2 * time.Minute},
		{"a zero delay asks for nothing", "0", 0},
		{"a negative delay asks for nothing", "-5", 0},
		{"an absurd delay is capped at a day", "999999999", 24 * time.Hour},
		{"an HTTP date is the time until it", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"a past HTTP date asks for nothing", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"garbage asks for nothing", "soon", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryAfter(tc.header, now); got != tc.want {
				t.Fatalf("retryAfter(%q) = %s, want %s", tc.header, got, tc.want)
			}
		})
	}
}
