package registry

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/internal/logging"
)

// The access log: one line per request, with stable keys (method, route, path,
// status, dur, bytes, request_id, remote, and where known repo, digest, tag,
// sub). It never carries a query string or a header: /token's query and
// Authorization headers hold credentials.

// accessInfo is what the request line learns while the request is served: the
// route matched, the repository and reference it names, the token's subject.
type accessInfo struct {
	route, repo, digest, tag, sub string
}

type accessInfoKey struct{}

// withAccessInfo returns ctx carrying a fresh accessInfo, filled in as the
// request is routed and authorised.
func withAccessInfo(ctx context.Context) (context.Context, *accessInfo) {
	ai := &accessInfo{}
	return context.WithValue(ctx, accessInfoKey{}, ai), ai
}

func accessInfoOf(ctx context.Context) *accessInfo {
	ai, _ := ctx.Value(accessInfoKey{}).(*accessInfo)
	return ai
}

// noteSubject records the authenticated subject for the request line.
func noteSubject(ctx context.Context, sub string) {
	if ai := accessInfoOf(ctx); ai != nil {
		ai.sub = sub
	}
}

// noteRoute is router middleware: it records the matched route's template and
// the repository, digest or tag its variables name.
func noteRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ai := accessInfoOf(r.Context()); ai != nil {
			if route := mux.CurrentRoute(r); route != nil {
				ai.route, _ = route.GetPathTemplate()
			}
			vars := mux.Vars(r)
			ai.repo = vars["name"]
			if d := vars["digest"]; d != "" {
				ai.digest = d
			}
			if ref := vars["reference"]; ref != "" {
				if _, err := digest.Parse(ref); err == nil {
					ai.digest = ref
				} else {
					ai.tag = ref
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// logRequest writes the request line.
func (s *Server) logRequest(r *http.Request, rec *statusRecorder, ai *accessInfo, id string, start time.Time) {
	if ai.digest == "" {
		// A manifest pushed or fetched by tag, or a blob upload's result,
		// names its digest only in the response.
		ai.digest = rec.Header().Get("Docker-Content-Digest")
	}
	logging.Request(r.Context(), s.log, r, logging.Line{Route: ai.route, Status: rec.status, Bytes: rec.bytes,
		Dur: time.Since(start), ID: id, Remote: remoteHost(r.RemoteAddr)},
		[2]string{"repo", ai.repo}, [2]string{"digest", ai.digest}, [2]string{"tag", ai.tag}, [2]string{"sub", ai.sub})
}

// remoteHost is the client's address without its port.
func remoteHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
