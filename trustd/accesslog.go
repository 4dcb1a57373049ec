package trustd

import (
	"net/http"
	"time"

	"github.com/signet-oss/signet/internal/logging"
)

// The access log: one line per request, with the registry's stable keys
// (method, route, path, status, dur, bytes, request_id, remote, and sub when the
// caller authenticated). Never a query string or a header: /token's query and
// Authorization headers carry credentials. The route and subject reach the
// line through logging.RequestInfo (logging.NoteRoute, logging.SetSubject).

// logRequest writes the request line. remote is the client's address as rate
// limiting sees it: behind a trusted proxy (the registry's /token), the
// address the proxy forwarded for.
func (s *Server) logRequest(r *http.Request, rec *logging.Recorder, ri *logging.RequestInfo, id string, start time.Time) {
	logging.Request(r.Context(), s.log, r, logging.Line{Route: ri.Route, Status: rec.Status, Bytes: rec.Bytes,
		Dur: time.Since(start), ID: id, Remote: s.clientIP(r)}, [2]string{"sub", ri.Sub})
}
