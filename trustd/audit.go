package trustd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/internal/requestid"
	"github.com/signet-oss/signet/trustd/directory"
	"github.com/signet-oss/signet/trustd/tuf"
	"github.com/signet-oss/signet/trustnames"
)

// trustd's audit log: every change to the trust graph (publishes, keys,
// delegations) and to who may do what (orgs, members, grants, robots, refresh
// tokens) leaves a record, written before the change is answered with success.
// A change whose record cannot be written is answered 500 (the change itself
// stays made: the record is written after it, so the log never claims what did
// not happen). Records name accounts, scopes, digests and key IDs, never a
// password, a token or a secret.
//
//	GET /api/v1/audit?since=&until=&org=&repo=&actor=&action=&limit=&after=
//
// Admins read every record; an owner of organisations reads the records of
// those organisations only (org, when given, must be one of them); anyone else
// gets 403.

// auditRoot is where the log's records live on trustd's driver.
const auditRoot = directory.Root + "/audit"

// auditWriteTimeout bounds the write of one record. The write runs on a context
// the request's cancellation does not reach: it comes after the change is
// committed, and a client that hangs up then must not leave the change without
// its record.
const auditWriteTimeout = 10 * time.Second

// errAuditFailed answers a change whose audit record could not be written.
var errAuditFailed = newAPIError(CodeUnknown, "the change was made, but its audit record could not be written; see trustd's log")

// actorOf names p in the log.
func actorOf(p directory.Principal) string {
	if p.Anonymous() {
		return "anonymous"
	}
	return p.Name
}

// requestIDOf is the request's ID: the one in its context, else the caller's
// X-Request-ID when usable (the registry forwards its own), else a new one.
func (s *Server) requestIDOf(r *http.Request) string {
	if id := requestid.FromContext(r.Context()); id != "" {
		return id
	}
	return s.ids.FromRequest(r)
}

// record appends rec, by p, to the log.
func (s *Server) record(r *http.Request, p directory.Principal, rec audit.Record) error {
	rec.Actor = actorOf(p)
	rec.RequestID = s.requestIDOf(r)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditWriteTimeout)
	defer cancel()
	if _, err := s.audit.Append(ctx, rec); err != nil {
		s.log.ErrorContext(r.Context(), "writing an audit record failed", "action", rec.Action, "sub", rec.Actor, "err", err)
		return fmt.Errorf("%w: %w", errAuditFailed, err) // the cause, for the log (a full disk)
	}
	return nil
}

// publishAuditConcurrency bounds the records of one publish written at once:
// a role version that changes thousands of targets writes one record each, a
// request apiece on an object store.
const publishAuditConcurrency = 8

// recordPublish is the TUF repository's OnPublish: one record for the role
// version, one per change it made (every one: the log is complete), written
// publishAuditConcurrency at a time.
func (s *Server) recordPublish(r *http.Request, c tuf.Caller, role string, res tuf.PublishResult) error {
	var p directory.Principal
	if tc, ok := c.(tufCaller); ok {
		p = tc.p
	}
	return s.recordAll(r, p, publishRecords(role, res))
}

// serviceActor is the actor of what trustd does by itself: no account name
// can start with "@".
const serviceActor = "@trustd"

// recordRelease is the TUF repository's OnRelease: the records of a publish of
// role, by trustd itself, which released the held version of role once the
// first versions it waited for were complete (publishers signed them; their
// own publishes were recorded as held). Run calls it, with no request.
func (s *Server) recordRelease(ctx context.Context, role string, res tuf.PublishResult) error {
	recs := publishRecords(role, res)
	if len(recs) > 0 {
		recs[0].Detail = "released: the first versions it waited for are complete"
	}
	start := time.Now().UTC()
	for i, rec := range recs {
		rec.Actor, rec.Time = serviceActor, start.Add(time.Duration(i))
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditWriteTimeout)
		_, err := s.audit.Append(wctx, rec)
		cancel()
		if err != nil {
			s.log.ErrorContext(ctx, "writing an audit record failed", "action", rec.Action, "sub", rec.Actor, "err", err)
			return fmt.Errorf("%w: %w", errAuditFailed, err) // the cause, for the log (a full disk)
		}
	}
	return nil
}

// publishRecords are the records of a publish of role: one for the role
// version, one per version released with it, one per change.
func publishRecords(role string, res tuf.PublishResult) []audit.Record {
	head := audit.Record{Action: audit.ActionRolePublish, Role: role, Version: res.Version}
	switch {
	case res.Staged:
		head.Action, head.Outcome = audit.ActionRoleStage, audit.OutcomeStaged
		head.Detail = fmt.Sprintf("%d of %d signatures", res.Signatures, res.Threshold)
	case res.Held:
		head.Action, head.Outcome = audit.ActionRoleStage, audit.OutcomeStaged
		waiting := make([]string, 0, len(res.Waiting))
		for _, w := range res.Waiting {
			waiting = append(waiting, w.Role)
		}
		head.Detail = "held until the first versions of " + strings.Join(waiting, ", ")
	case role == trustnames.RoleRoot && res.Version == 1 && len(res.Changes) > 0 && res.Changes[0].Action == audit.ActionTrustInit:
		head.Action = "" // the init's own record stands for it
	}
	if org, ok := trustnames.OrgOfRole(role); ok {
		head.Org = org
	}
	if res.Repository != "" {
		head.Repository = res.Repository
		head.Org = trustnames.OrgOfRepo(res.Repository)
	}
	recs := make([]audit.Record, 0, 1+len(res.Released)+len(res.Changes))
	if head.Action != "" {
		recs = append(recs, head)
	}
	for _, rel := range res.Released {
		rec := audit.Record{Action: audit.ActionRolePublish, Role: rel.Role, Version: rel.Version, Repository: rel.Repository, Detail: "released with " + role}
		if org, ok := trustnames.OrgOfRole(rel.Role); ok {
			rec.Org = org
		} else if rel.Repository != "" {
			rec.Org = trustnames.OrgOfRepo(rel.Repository)
		} else {
			rec.Org = head.Org
		}
		recs = append(recs, rec)
	}
	versions := map[string]int64{role: res.Version}
	for _, rel := range res.Released {
		versions[rel.Role] = rel.Version
	}
	for _, ch := range res.Changes {
		rec := audit.Record{
			Action: ch.Action, Role: ch.Role, Org: ch.Org, Repository: ch.Repository,
			Tag: ch.Tag, Digest: ch.Digest, KeyIDs: ch.KeyIDs, Detail: ch.Detail,
		}
		if strings.HasPrefix(ch.Action, "target.") {
			rec.Version = versions[ch.Role]
		} else if ch.Role == role {
			rec.Version = res.Version
		}
		recs = append(recs, rec)
	}
	return recs
}

// recordAll appends recs, by p, publishAuditConcurrency at a time. They carry
// one time, a nanosecond apart, so the log lists them in recs' order however
// the writes interleave. After a failure it starts no more writes.
func (s *Server) recordAll(r *http.Request, p directory.Principal, recs []audit.Record) error {
	start := time.Now().UTC()
	sem := make(chan struct{}, publishAuditConcurrency)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error] // the first failure
	for i := range recs {
		recs[i].Time = start.Add(time.Duration(i))
		sem <- struct{}{}
		if failed.Load() != nil {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.record(r, p, recs[i]); err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}

// getAudit serves GET /api/v1/audit.
func (s *Server) getAudit(w http.ResponseWriter, r *http.Request, p directory.Principal) error {
	q, err := audit.ParseQuery(r.URL.Query(), s.now())
	if err != nil {
		return fmt.Errorf("%w: %v", directory.ErrInvalid, err)
	}
	if !(p.Kind == "person" && p.Admin) {
		owned := s.dir.OwnedOrgs(p)
		switch {
		case len(owned) == 0:
			return fmt.Errorf("%w: only admins and organisation owners may read the audit log", errDenied)
		case len(q.Orgs) == 0:
			q.Orgs = owned
		default:
			for _, o := range q.Orgs {
				if !slices.Contains(owned, o) {
					return fmt.Errorf("%w: only an owner of %q or an admin may read its audit records", errDenied, o)
				}
			}
		}
	}
	page, err := s.audit.Query(r.Context(), q)
	if errors.Is(err, audit.ErrInvalidQuery) {
		return fmt.Errorf("%w: %v", directory.ErrInvalid, err)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, page)
	return nil
}

// grantRecord describes grant g for the log.
func grantRecord(action string, g *directory.Grant) audit.Record {
	rec := audit.Record{Action: action, Subject: g.Subject, Detail: strings.Join(g.Actions, ",") + " on " + g.Pattern}
	if org, _, ok := strings.Cut(g.Pattern, "/"); ok && !strings.Contains(org, "*") {
		rec.Org = org
	}
	return rec
}

// refreshRecord describes a refresh token issued to p (never its value).
func refreshRecord(p directory.Principal, req tokenRequest) audit.Record {
	rec := audit.Record{Action: audit.ActionTokenCreate, Subject: p.Name, Detail: "refresh token for " + req.service}
	if id := req.clientID; id != "" { // printable ASCII, short: see validateClientID
		rec.Detail += " (client " + id + ")"
	}
	if p.Robot != nil {
		rec.Org = p.Robot.Org
	}
	return rec
}
