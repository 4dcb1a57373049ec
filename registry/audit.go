package registry

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/audit/auditlog"
	"github.com/signet-oss/signet/tokenauth"
)

// The registry's audit log: every manifest the admission gate denies leaves a
// record on the registry's own storage driver, and
//
//	GET /signet/v1/audit?since=&until=&org=&repo=&actor=&action=&limit=&after=
//
// serves the log (parameters: audit/params.go) to a token carrying
// registry:audit:read, which trustd grants to admins only; without
// authentication configured it is open, like the rest of the registry.

// AuditRoot is where the registry keeps its audit log on its driver.
const AuditRoot = "/audit/v1"

// Bounds of the denial records: a flood of unsigned pushes must not pile up
// writes. A denial waits at most auditWriteTimeout for its record (the wait for
// a free slot included); a record that cannot be written is logged instead.
const (
	auditWriteTimeout = 5 * time.Second
	auditConcurrency  = 8
)

// EnableAudit records the gate's denials in l and serves l at /signet/v1/audit.
// Call it before the server serves.
func (s *Server) EnableAudit(l *auditlog.Log) {
	slots := make(chan struct{}, auditConcurrency)
	s.OnEvent(func(ctx context.Context, e Event) {
		if e.Kind != EventAdmissionDenied {
			return
		}
		rec := audit.Record{
			Time: e.Time, Actor: e.Actor, Action: audit.ActionAdmissionDeny, Repository: e.Repo,
			Tag: e.Tag, Digest: e.Digest.String(), RequestID: e.RequestID, Outcome: audit.OutcomeDenied, Reason: e.Reason,
		}
		if rec.Actor == "" {
			rec.Actor = "anonymous"
		}
		rec.Org, _, _ = strings.Cut(e.Repo, "/")
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditWriteTimeout)
		defer cancel()
		var err error
		select {
		case slots <- struct{}{}:
			_, err = l.Append(ctx, rec)
			<-slots
		case <-ctx.Done():
			err = errors.New("too many audit records being written")
		}
		if err != nil {
			s.log.ErrorContext(ctx, "writing the audit record of a denial failed", "repo", rec.Repository, "digest", rec.Digest,
				"tag", rec.Tag, "sub", rec.Actor, "request_id", rec.RequestID, "err", err)
		}
	})
	s.router.HandleFunc("/signet/v1/audit", func(w http.ResponseWriter, r *http.Request) {
		s.serveAudit(w, r, l)
	}).Methods(http.MethodGet)
}

func (s *Server) serveAudit(w http.ResponseWriter, r *http.Request, l *auditlog.Log) {
	if s.auth != nil {
		scope := tokenauth.Access{Type: tokenauth.TypeRegistry, Name: tokenauth.AuditName, Actions: []string{tokenauth.ActionRead}}.Scope()
		claims := s.authenticate(w, r, scope)
		if claims == nil {
			return
		}
		if !claims.Allows(tokenauth.TypeRegistry, tokenauth.AuditName, tokenauth.ActionRead) {
			s.challenge(w, r, scope, "insufficient_scope", &Error{Code: CodeDenied,
				Detail: claims.Subject + " may not read the registry's audit log (admins only)"})
			return
		}
	}
	q, err := audit.ParseQuery(r.URL.Query(), time.Now())
	if err != nil {
		s.writeError(w, r, &Error{Code: CodeQueryInvalid, Detail: err.Error()})
		return
	}
	page, err := l.Query(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, "application/json", page)
}
