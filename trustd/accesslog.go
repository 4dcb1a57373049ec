package trustd

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/signet-oss/signet/internal/logging"
)

// The access log: one line per request, with the registry's stable keys
// (method, route, path, status, dur, bytes, request_id, remote, and sub when the
// caller authenticated). Never a query string or a header: /token's query and
// Authorization headers carry credentials.

// reqInfo carries what the request line learns deep in a handler: the route
// matched and the subject.
type reqInfo struct{ route, sub string }

type reqInfoKey struct{}

// withReqInfo returns ctx carrying a fresh reqInfo.
func withReqInfo(ctx context.Context) (context.Context, *reqInfo) {
	ri := &reqInfo{}
	return context.WithValue(ctx, reqInfoKey{}, ri), ri
}

// setSubject records the request's subject for the access log.
func setSubject(r *http.Request, sub string) {
	if ri, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		ri.sub = sub
	}
}

// noteRoute is router middleware recording the matched route's template.
func noteRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ri, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
			if route := mux.CurrentRoute(r); route != nil {
				ri.route, _ = route.GetPathTemplate()
			}
		}
		next.ServeHTTP(w, r)
	})
}

// logRequest writes the request line. remote is the client's address as rate
// limiting sees it: behind a trusted proxy (the registry's /token), the
// address the proxy forwarded for.
func (s *Server) logRequest(r *http.Request, rec *statusRecorder, ri *reqInfo, id string, start time.Time) {
	logging.Request(r.Context(), s.log, r, logging.Line{Route: ri.route, Status: rec.status, Bytes: rec.bytes,
		Dur: time.Since(start), ID: id, Remote: s.clientIP(r)}, [2]string{"sub", ri.sub})
}
