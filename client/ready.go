package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// WaitReady polls until the registry at registry (host:port) answers GET /v2/ (200
// or 401) and trustd at trustdURL answers GET /healthz with 200, or ctx ends.
func WaitReady(ctx context.Context, registry, trustdURL string) error {
	base, _, err := BaseURL(ctx, registry, false)
	if err != nil {
		return err
	}
	checks := []struct {
		url string
		ok  func(int) bool
	}{
		{trustdURL + "/healthz", func(s int) bool { return s == http.StatusOK }},
		{base + "/v2/", func(s int) bool { return s == http.StatusOK || s == http.StatusUnauthorized }},
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, c := range checks {
		var last string
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
			if err != nil {
				return err
			}
			resp, err := hc.Do(req)
			if err == nil {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				if c.ok(resp.StatusCode) {
					break
				}
				last = resp.Status
			} else {
				last = err.Error()
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("GET %s never answered (last: %s)", c.url, last)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}
