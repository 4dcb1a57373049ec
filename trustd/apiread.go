package trustd

import (
	"net/http"

	"github.com/signet-oss/signet/trustd/api"
	"github.com/signet-oss/signet/trustd/directory"
)

// The management API's listings, authorised as the reads of one record are:
//
//	GET /api/v1/orgs    the organisations the caller may read (GET /orgs/{org}):
//	                    every one for an admin, those a person is a member of
//	GET /api/v1/users   admin: every person's account
//
// whoami (api.go) also names the caller's organisations and roles.

func (s *Server) getOrgs(w http.ResponseWriter, r *http.Request, p directory.Principal) error {
	out := []api.Org{}
	for _, o := range s.dir.Orgs() {
		if p.Admin || (p.Kind == "person" && o.Members[p.Name] != "") {
			out = append(out, orgJSON(o))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getUsers(w http.ResponseWriter, r *http.Request, p directory.Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	out := []api.Identity{}
	for _, pers := range s.dir.People() {
		id := api.Identity{Name: pers.Name, Kind: "person", Admin: pers.Admin, Orgs: s.dir.RolesOf(directory.Principal{Name: pers.Name, Kind: "person"})}
		out = append(out, id)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
