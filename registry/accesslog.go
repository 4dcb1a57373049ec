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

// accessInfo is what the request line learns while the request is served
// beyond logging.RequestInfo's route and subject: the repository and
// reference the route names.
type accessInfo struct {
	logging.RequestInfo
	repo, digest, tag string
}

type accessInfoKey struct{}

// withAccessInfo returns ctx carrying a fresh accessInfo (and its
// logging.RequestInfo), filled in as the request is routed and authorised.
func withAccessInfo(ctx context.Context) (context.Context, *accessInfo) {
	ai := &accessInfo{}
	ctx = logging.WithRequestInfo(ctx, &ai.RequestInfo)
	return context.WithValue(ctx, accessInfoKey{}, ai), ai
}

// noteRepo is router middleware: it records the repository, digest or tag
// the matched route's variables name.
func noteRepo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ai, ok := r.Context().Value(accessInfoKey{}).(*accessInfo); ok {
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
	logging.Request(r.Context(), s.log, r, logging.Line{Route: ai.Route, Status: rec.Status, Bytes: rec.Bytes,
		Dur: time.Since(start), ID: id, Remote: remoteHost(r.RemoteAddr)},
		[2]string{"repo", ai.repo}, [2]string{"digest", ai.digest}, [2]string{"tag", ai.tag}, [2]string{"sub", ai.Sub})
}

// remoteHost is the client's address without its port.
func remoteHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
