package trustd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/internal/logging"
	"github.com/signet-oss/signet/trustd/api"
	"github.com/signet-oss/signet/trustd/directory"
)

// The management API: JSON over HTTP (a body must be sent as application/json,
// and browsers' cross-site requests are refused: apiguard.go), authenticated by an access token from
// /token with aud = cfg.Service, and authorised from trustd's current records
// (never from the token's access claim), so a revoked robot or a removed member
// loses rights at once, not when their token expires.
//
//	GET    /api/v1/whoami                          anyone authenticated
//	POST   /api/v1/users                           admin
//	GET    /api/v1/users                           admin (apiread.go)
//	POST   /api/v1/orgs                            admin (idempotent: 201, then 200)
//	GET    /api/v1/orgs                            anyone: the orgs they may read (apiread.go)
//	GET    /api/v1/orgs/{org}                      admin, or a member
//	PUT    /api/v1/orgs/{org}/members/{user}       admin, or an org owner
//	DELETE /api/v1/orgs/{org}/members/{user}       admin, or an org owner
//	POST   /api/v1/orgs/{org}/robots               admin, or an org owner
//	GET    /api/v1/orgs/{org}/robots               admin, or an org owner
//	DELETE /api/v1/orgs/{org}/robots/{name}        admin, or an org owner
//	POST   /api/v1/grants                          admin
//	GET    /api/v1/grants                          admin
//	DELETE /api/v1/grants/{id}                     admin
//	GET    /api/v1/audit                           admin, or an org owner (audit.go)
//
// Robots may call whoami and nothing that changes records.

// maxAPIBody bounds a management API request body.
const maxAPIBody = 64 << 10

func (s *Server) apiRoutes(r *mux.Router) {
	r.HandleFunc("/whoami", s.api(s.whoami)).Methods(http.MethodGet)
	r.HandleFunc("/users", s.api(s.postUser)).Methods(http.MethodPost)
	r.HandleFunc("/users", s.api(s.getUsers)).Methods(http.MethodGet)
	r.HandleFunc("/orgs", s.api(s.postOrg)).Methods(http.MethodPost)
	r.HandleFunc("/orgs", s.api(s.getOrgs)).Methods(http.MethodGet)
	r.HandleFunc("/orgs/{org}", s.api(s.getOrg)).Methods(http.MethodGet)
	r.HandleFunc("/orgs/{org}/members/{user}", s.api(s.putMember)).Methods(http.MethodPut)
	r.HandleFunc("/orgs/{org}/members/{user}", s.api(s.deleteMember)).Methods(http.MethodDelete)
	r.HandleFunc("/orgs/{org}/robots", s.api(s.postRobot)).Methods(http.MethodPost)
	r.HandleFunc("/orgs/{org}/robots", s.api(s.getRobots)).Methods(http.MethodGet)
	r.HandleFunc("/orgs/{org}/robots/{name}", s.api(s.deleteRobot)).Methods(http.MethodDelete)
	r.HandleFunc("/grants", s.api(s.postGrant)).Methods(http.MethodPost)
	r.HandleFunc("/grants", s.api(s.getGrants)).Methods(http.MethodGet)
	r.HandleFunc("/grants/{id}", s.api(s.deleteGrant)).Methods(http.MethodDelete)
	r.HandleFunc("/audit", s.api(s.getAudit)).Methods(http.MethodGet)
}

// apiHandler is a management API handler, called with the authenticated caller.
type apiHandler func(w http.ResponseWriter, r *http.Request, p directory.Principal) error

// api refuses what a page on another site could make a browser send
// (checkAPIRequest), authenticates the caller, then runs h; a returned error is
// sent as the API's error body.
func (s *Server) api(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := checkAPIRequest(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		p, err := s.caller(r)
		if err != nil {
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service=%q`, scheme+"://"+r.Host+"/token", s.cfg.Service))
			s.writeError(w, r, err)
			return
		}
		logging.SetSubject(r.Context(), p.Name)
		if err := h(w, r, p); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// bearer returns who the request's access token speaks for, from the current
// records: a token of an account deleted since it was issued is refused.
func (s *Server) bearer(r *http.Request) (directory.Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return directory.Principal{}, fmt.Errorf("%w: send an access token for service %q from /token as Authorization: Bearer", errUnauth, s.cfg.Service)
	}
	claims, err := s.verifier.Verify(r.Context(), tok)
	if err != nil {
		return directory.Principal{}, fmt.Errorf("%w: the access token is not valid here", errUnauth)
	}
	if p, ok := s.dir.PrincipalOf(claims.Subject); ok {
		return p, nil
	}
	return directory.Principal{}, fmt.Errorf("%w: the token's subject is anonymous or no longer has an account", errUnauth)
}

// decodeBody reads a JSON request body into v, refusing unknown fields.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: the body is not the expected JSON: %v", directory.ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: the body holds more than one JSON value", directory.ErrInvalid)
	}
	return nil
}

func requireAdmin(p directory.Principal) error {
	if p.Kind != "person" || !p.Admin {
		return fmt.Errorf("%w: only an admin may do this", errDenied)
	}
	return nil
}

func (s *Server) requireOrgManager(p directory.Principal, orgName string) error {
	if !s.dir.MayManageOrg(p, orgName) {
		return fmt.Errorf("%w: only an owner of %q or an admin may do this", errDenied, orgName)
	}
	return nil
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request, p directory.Principal) error {
	writeJSON(w, http.StatusOK, api.Identity{Name: p.Name, Kind: p.Kind, Admin: p.Admin, Orgs: s.dir.RolesOf(p)})
	return nil
}

func (s *Server) postUser(w http.ResponseWriter, r *http.Request, p directory.Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	var body api.UserRequest
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	if err := s.dir.CreatePerson(r.Context(), body.Name, body.Password, false); err != nil {
		return err
	}
	if err := s.record(r, p, audit.Record{Action: audit.ActionUserCreate, Subject: body.Name}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, api.Identity{Name: body.Name, Kind: "person"})
	return nil
}

func orgJSON(o *directory.Org) api.Org { return api.Org{Name: o.Name, Members: o.Members} }

func (s *Server) postOrg(w http.ResponseWriter, r *http.Request, p directory.Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	var body api.OrgRequest
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	o, created, err := s.dir.CreateOrg(r.Context(), body.Name)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		if err := s.record(r, p, audit.Record{Action: audit.ActionOrgCreate, Org: o.Name}); err != nil {
			return err
		}
	}
	writeJSON(w, status, orgJSON(o))
	return nil
}

func (s *Server) getOrg(w http.ResponseWriter, r *http.Request, p directory.Principal) error {
	name := mux.Vars(r)["org"]
	if !p.Admin && (p.Kind != "person" || s.dir.OrgRole(name, p.Name) == "") {
		return fmt.Errorf("%w: only members of %q and admins may read it", errDenied, name)
	}
	o := s.dir.Org(name)
	if o == nil {
		return fmt.Errorf("organisation %q: %w", name, directory.ErrNotFound)
	}
	writeJSON(w, http.StatusOK, orgJSON(o))
	return nil
}

func (s *Server) putMember(w http.ResponseWriter, r *http.Request, p directory.Principal) error {
	v := mux.Vars(r)
	if err := s.requireOrgManager(p, v["org"]); err != nil {
		return err
	}
	var body api.MemberRequest
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	if body.Role == "" {
		return fmt.Errorf("%w: role is missing (owner, publisher or reader)", directory.ErrInvalid)
	}
	if err := s.dir.SetMember(r.Context(), v["org"], v["user"], body.Role); err != nil {
		return err
	}
	if err := s.record(r, p, audit.Record{Action: audit.ActionMemberSet, Org: v["org"], Subject: v["user"], Detail: body.Role}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, orgJSON(s.dir.Org(v["org"])))
	return nil
}

func (s *Server) deleteMember(w http.ResponseWriter, r *http.Request, p directory.Principal) error {
	v := mux.Vars(r)
	if err := s.requireOrgManager(p, v["org"]); err != nil {
		return err
	}
	if err := s.dir.SetMember(r.Context(), v["org"], v["user"], ""); err != nil {
		return err
	}
	if err := s.record(r, p, audit.Record{Action: audit.ActionMemberRemove, Org: v["org"], Subject: v["user"]}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func robotJSON(rob *directory.Robot) api.Robot {
	return api.Robot{
		Name: rob.FullName(), Scopes: rob.Scopes,
		Expires: wireTime(rob.Expires), Created: wireTime(rob.Created),
	}
}

// wireTime is t as the API sends times: UTC, whole seconds.
func wireTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

func (s *Server) postRobot(w http.ResponseWriter, r *http.Request, p directory.Principal) error {
	orgName := mux.Vars(r)["org"]
	if err := s.requireOrgManager(p, orgName); err != nil {
		return err
	}
	var body api.RobotRequest
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	var ttl time.Duration
	if body.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(body.TTL); err != nil || ttl <= 0 {
			return fmt.Errorf("%w: ttl %q is not a positive duration such as 720h", directory.ErrInvalid, body.TTL)
		}
	}
	rob, secret, err := s.dir.CreateRobot(r.Context(), orgName, body.Name, body.Scopes, ttl)
	if err != nil {
		return err
	}
	if err := s.record(r, p, audit.Record{Action: audit.ActionTokenCreate, Org: orgName, Subject: rob.FullName(),
		Detail: "robot: " + strings.Join(rob.Scopes, " ") + " until " + rob.Expires.UTC().Format(time.RFC3339)}); err != nil {
		return err
	}
	resp := robotJSON(rob)
	resp.Secret = secret
	resp.Created = time.Time{}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

func (s *Server) getRobots(w http.ResponseWriter, r *http.Request, p directory.Principal) error {
	orgName := mux.Vars(r)["org"]
	if err := s.requireOrgManager(p, orgName); err != nil {
		return err
	}
	if s.dir.Org(orgName) == nil {
		return fmt.Errorf("organisation %q: %w", orgName, directory.ErrNotFound)
	}
	out := []api.Robot{}
	for _, rob := range s.dir.Robots(orgName) {
		out = append(out, robotJSON(rob))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteRobot(w http.ResponseWriter, r *http.Request, p directory.Principal) error {
	v := mux.Vars(r)
	if err := s.requireOrgManager(p, v["org"]); err != nil {
		return err
	}
	revoked, err := s.dir.DeleteRobot(r.Context(), v["org"], v["name"])
	if err != nil {
		return err
	}
	if err := s.record(r, p, audit.Record{Action: audit.ActionTokenRevoke, Org: v["org"], Subject: v["org"] + "+" + strings.TrimPrefix(v["name"], v["org"]+"+"),
		Detail: fmt.Sprintf("robot and its %d refresh tokens", revoked)}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func grantJSON(g *directory.Grant) api.Grant {
	return api.Grant{ID: g.ID, Subject: g.Subject, Pattern: g.Pattern, Actions: g.Actions, Created: wireTime(g.Created)}
}

func (s *Server) postGrant(w http.ResponseWriter, r *http.Request, p directory.Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	var body api.GrantRequest
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	g, err := s.dir.CreateGrant(r.Context(), body.Subject, body.Pattern, body.Actions)
	if err != nil {
		return err
	}
	if err := s.record(r, p, grantRecord(audit.ActionGrantCreate, g)); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, grantJSON(g))
	return nil
}

func (s *Server) getGrants(w http.ResponseWriter, r *http.Request, p directory.Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	out := []api.Grant{}
	for _, g := range s.dir.Grants() {
		out = append(out, grantJSON(g))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteGrant(w http.ResponseWriter, r *http.Request, p directory.Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	g, err := s.dir.DeleteGrant(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	if err := s.record(r, p, grantRecord(audit.ActionGrantDelete, g)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
