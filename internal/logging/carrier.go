package logging

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"
)

// Recorder is the response writer a server's ServeHTTP hands its router: it
// remembers the status and the bytes of the body written, for the request
// line. The status is 200 until a handler writes another.
type Recorder struct {
	http.ResponseWriter
	Status int
	Bytes  int64
}

// NewRecorder records what is written to w.
func NewRecorder(w http.ResponseWriter) Recorder {
	return Recorder{ResponseWriter: w, Status: http.StatusOK}
}

func (r *Recorder) WriteHeader(code int) {
	r.Status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *Recorder) Write(p []byte) (int, error) {
	n, err := r.ResponseWriter.Write(p)
	r.Bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// RequestInfo is what the request line learns while the request is served,
// deep in the router and its handlers: the route matched and the subject the
// caller authenticated as.
type RequestInfo struct {
	Route string // the route's template, "" when none matched
	Sub   string // the authenticated subject, "" when none
}

type requestInfoKey struct{}

// WithRequestInfo returns ctx carrying ri, to be filled in as the request is
// routed (NoteRoute) and authenticated (SetSubject).
func WithRequestInfo(ctx context.Context, ri *RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, ri)
}

// SetSubject records the authenticated subject for the request line.
func SetSubject(ctx context.Context, sub string) {
	if ri, ok := ctx.Value(requestInfoKey{}).(*RequestInfo); ok {
		ri.Sub = sub
	}
}

// NoteRoute is router middleware: it records the matched route's template.
func NoteRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ri, ok := r.Context().Value(requestInfoKey{}).(*RequestInfo); ok {
			if route := mux.CurrentRoute(r); route != nil {
				ri.Route, _ = route.GetPathTemplate()
			}
		}
		next.ServeHTTP(w, r)
	})
}
