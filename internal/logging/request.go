package logging

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// Line is what a server knows of a request once it has answered it.
type Line struct {
	Route  string // the route's template, "" when none matched
	Status int
	Bytes  int64 // of the response body
	Dur    time.Duration
	ID     string // the request ID
	Remote string // the client's address
}

// Request writes the request line both servers write, with stable keys:
// method, route, path (never the query: /token's carries credentials), status,
// dur, bytes, request_id and remote, then each of extra (key, value) whose
// value is not empty. A 5xx is logged at error level, the rest at info.
func Request(ctx context.Context, log *slog.Logger, r *http.Request, l Line, extra ...[2]string) {
	level := slog.LevelInfo
	if l.Status >= 500 {
		level = slog.LevelError
	}
	if !log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 8+len(extra))
	attrs = append(attrs,
		slog.String("method", r.Method),
		slog.String("route", l.Route),
		slog.String("path", r.URL.Path),
		slog.Int("status", l.Status),
		slog.Duration("dur", l.Dur),
		slog.Int64("bytes", l.Bytes),
		slog.String("request_id", l.ID),
		slog.String("remote", l.Remote),
	)
	for _, kv := range extra {
		if kv[1] != "" {
			attrs = append(attrs, slog.String(kv[0], kv[1]))
		}
	}
	log.LogAttrs(ctx, level, "request", attrs...)
}
