package ui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/trustd/api"
	"github.com/signet-oss/signet/trustnames"
)

// member is a row of an organisation's members.
type member struct{ Name, Role string }

// delegationRow is a repository the organisation delegates, as the verified
// trust graph says: its keys and how many of them must sign.
type delegationRow struct {
	Repo      string
	KeyIDs    []string
	Threshold int
}

// orgPage shows an organisation: its members to every member, and to its
// owners (and admins) its robots and delegations too. What is shown follows
// trustd's API: a member who may not list the robots sees the members only.
func (u *UI) orgPage(w http.ResponseWriter, r *http.Request, s *session) {
	u.renderOrg(w, r, s, http.StatusOK, nil)
}

// renderOrg renders the page of the request's organisation; created, when not
// nil, is the robot just made, whose secret this one answer shows.
func (u *UI) renderOrg(w http.ResponseWriter, r *http.Request, s *session, status int, created *api.Robot) {
	name := r.PathValue("org")
	td, err := u.trustdClient(r.Context(), s)
	if err != nil {
		u.upstreamError(w, r, err)
		return
	}
	org, err := td.Org(r.Context(), name)
	if err != nil {
		u.orgError(w, r, name, err)
		return
	}
	members := make([]member, 0, len(org.Members))
	for n, role := range org.Members {
		members = append(members, member{Name: n, Role: role})
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.Name, b.Name) })
	data := map[string]any{"Org": org.Name, "Members": members}
	robots, err := td.Robots(r.Context(), name)
	var ae *client.APIError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		// Not an owner: the members are all trustd shows.
	case err != nil:
		u.upstreamError(w, r, err)
		return
	default:
		data["Owner"] = true
		data["Robots"] = robots
		data["Created"] = created
		data["Host"] = r.Host // the registry, as the browser reached it
		delegations, note, err := u.orgDelegations(r.Context(), s, name)
		if err != nil {
			u.upstreamError(w, r, err)
			return
		}
		data["Delegations"], data["DelegationNote"] = delegations, note
	}
	u.render(w, r, status, "org", data)
}

// orgDelegations are the repositories of org the reader may pull that the
// verified trust graph delegates, walked as the trust graph page walks them.
func (u *UI) orgDelegations(ctx context.Context, s *session, org string) ([]delegationRow, string, error) {
	if u.cfg.TrustRoot == "" {
		return nil, "This registry has no admission gate: nothing is delegated.", nil
	}
	names, err := u.catalog(ctx, s)
	if err != nil {
		return nil, "", err
	}
	var repos []string
	for _, n := range names {
		if trustnames.OrgOfRepo(n) == org {
			repos = append(repos, n)
		}
	}
	note := ""
	if len(repos) > maxGraphRepos {
		repos, note = repos[:maxGraphRepos], "Only the first repositories are shown."
	}
	states, _, err := u.walkRepos(ctx, s, repos)
	if err != nil {
		return nil, "", err
	}
	var out []delegationRow
	for _, st := range states {
		if d := findDelegation(st.state, st.repo); d != nil {
			out = append(out, delegationRow{Repo: st.repo, KeyIDs: d.KeyIDs, Threshold: d.Threshold})
		}
	}
	return out, note, nil
}

// createRobot makes a robot of the organisation and shows its secret in this
// answer only: it is neither kept in the session nor put in a URL.
func (u *UI) createRobot(w http.ResponseWriter, r *http.Request, s *session) {
	org := r.PathValue("org")
	req := api.RobotRequest{Name: strings.TrimSpace(r.PostForm.Get("name")), Scopes: strings.Fields(r.PostForm.Get("scopes")),
		TTL: strings.TrimSpace(r.PostForm.Get("ttl"))}
	if req.Name == "" || len(req.Scopes) == 0 {
		u.errorPage(w, r, http.StatusBadRequest, "Robot not created", "A robot needs a name and at least one scope, e.g. repository:"+org+"/app:pull.")
		return
	}
	td, err := u.trustdClient(r.Context(), s)
	if err != nil {
		u.upstreamError(w, r, err)
		return
	}
	robot, err := td.CreateRobot(r.Context(), org, req)
	if err != nil {
		u.orgError(w, r, org, err)
		return
	}
	u.renderOrg(w, r, s, http.StatusCreated, &robot)
}

// revokeRobot revokes a robot of the organisation and goes back to its page.
func (u *UI) revokeRobot(w http.ResponseWriter, r *http.Request, s *session) {
	org, name := r.PathValue("org"), r.PathValue("name")
	td, err := u.trustdClient(r.Context(), s)
	if err != nil {
		u.upstreamError(w, r, err)
		return
	}
	if err := td.RevokeRobot(r.Context(), org, name); err != nil {
		u.orgError(w, r, org, err)
		return
	}
	http.Redirect(w, r, Prefix+"orgs/"+url.PathEscape(org), http.StatusSeeOther)
}

// trustdClient is a client of trustd's API with the reader's own token.
func (u *UI) trustdClient(ctx context.Context, s *session) (*client.Trustd, error) {
	tok, err := u.trustdToken(ctx, s)
	if err != nil {
		return nil, err
	}
	return &client.Trustd{Base: u.cfg.Trustd, Token: tok, HTTP: u.http}, nil
}

// orgError is the page for trustd refusing a call about org: its 4xx kept,
// with trustd's reason when it is the reader's to fix.
func (u *UI) orgError(w http.ResponseWriter, r *http.Request, org string, err error) {
	var ae *client.APIError
	if !errors.As(err, &ae) {
		u.upstreamError(w, r, err)
		return
	}
	switch ae.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		u.errorPage(w, r, http.StatusForbidden, "Not allowed", "Only the members of "+org+" may see it, and only its owners change it.")
	case http.StatusNotFound:
		u.errorPage(w, r, http.StatusNotFound, "Not found", "There is no organisation "+org+", or no such robot in it.")
	case http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity:
		u.errorPage(w, r, ae.Status, "Not done", ae.Message)
	default:
		u.upstreamError(w, r, err)
	}
}

// userOrgs are the organisations the signed-in account may read, for the
// navigation; none when trustd cannot say.
func (u *UI) userOrgs(ctx context.Context, trustdToken string) []string {
	td := &client.Trustd{Base: u.cfg.Trustd, Token: trustdToken, HTTP: u.http}
	orgs, err := td.Orgs(ctx)
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(orgs))
	for _, o := range orgs {
		names = append(names, o.Name)
	}
	slices.Sort(names)
	return names
}
