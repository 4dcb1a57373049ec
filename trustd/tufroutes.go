package trustd

import (
	"fmt"
	"net/http"

	"github.com/signet-oss/signet/internal/logging"
	"github.com/signet-oss/signet/trustd/directory"
	"github.com/signet-oss/signet/trustd/tuf"
)

// The TUF repository's routes (package tuf) take their callers from here: the same
// bearer tokens as the management API (aud = cfg.Service), authorised from trustd's
// current records.

// tufCaller answers the TUF repository's questions about one principal.
type tufCaller struct {
	s *Server
	p directory.Principal
}

func (c tufCaller) Anonymous() bool { return c.p.Anonymous() }
func (c tufCaller) Admin() bool     { return c.p.Kind == "person" && c.p.Admin }
func (c tufCaller) MayPull(repo string) bool {
	return c.s.dir.Allowed(c.p, repo)&directory.ActPull != 0
}
func (c tufCaller) MayPush(repo string) bool {
	return c.s.dir.Allowed(c.p, repo)&directory.ActPush != 0
}
func (c tufCaller) MayPullIn(org string) bool   { return c.s.dir.MayPullIn(c.p, org) }
func (c tufCaller) OwnsOrg(orgName string) bool { return c.s.dir.MayManageOrg(c.p, orgName) }

// tufAuth authenticates the TUF repository's requests.
type tufAuth struct{ s *Server }

func (a tufAuth) Authenticate(r *http.Request) (tuf.Caller, error) {
	if r.Header.Get("Authorization") == "" {
		return tufCaller{s: a.s}, nil
	}
	p, err := a.s.bearer(r)
	if err != nil {
		return nil, err
	}
	logging.SetSubject(r.Context(), p.Name)
	return tufCaller{s: a.s, p: p}, nil
}

func (a tufAuth) Challenge(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return fmt.Sprintf(`Bearer realm=%q,service=%q`, scheme+"://"+r.Host+"/token", a.s.cfg.Service)
}
