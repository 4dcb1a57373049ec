package ui

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/client"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

// maxGraphRepos bounds the repositories one trust graph page walks to: each
// is one walk of the graph.
const maxGraphRepos = 40

// The drawing's geometry, in SVG user units.
const (
	colW, boxW, boxH, rowH, margin = 290, 230, 62, 76, 16
)

// gNode is a box of the drawing: a role, a repository or a key.
type gNode struct {
	X, Y, W, H int
	// Lines says what the role is (version, expiry); Keys who signs it.
	Title, Lines, Keys string
	Class              string
	Link               string
}

// gEdge is a delegation or a signing key, from the right of one box to the
// left of another.
type gEdge struct {
	X1, Y1, X2, Y2 int
}

// graphView is the trust graph as the reader may see it, laid out in five
// columns: root, targets, organisations, repositories, keys.
type graphView struct {
	W, H  int
	Nodes []gNode
	Edges []gEdge
}

// trustGraph shows the trust graph down to the repositories the reader may
// pull: each walked from the pinned root with the reader's trustd token.
func (u *UI) trustGraph(w http.ResponseWriter, r *http.Request, s *session) {
	if u.cfg.TrustRoot == "" {
		u.errorPage(w, r, http.StatusNotFound, "No trust graph", "This registry has no admission gate: no trust root is pinned.")
		return
	}
	repos, capped, err := u.readableRepos(r.Context(), s, maxGraphRepos)
	if err != nil {
		u.upstreamError(w, r, err)
		return
	}
	states, notes, err := u.walkRepos(r.Context(), s, repos)
	if err != nil {
		u.upstreamError(w, r, err)
		return
	}
	if capped {
		notes = append(notes, "Only the first "+strconv.Itoa(maxGraphRepos)+" repositories you may pull are drawn.")
	}
	u.render(w, r, http.StatusOK, "graph", map[string]any{"Graph": layoutGraph(states), "Notes": notes})
}

// readableRepos are up to max names of the catalog the reader may pull, and
// whether there were more.
func (u *UI) readableRepos(ctx context.Context, s *session, max int) ([]string, bool, error) {
	names, err := u.catalog(ctx, s)
	if err != nil {
		return nil, false, err
	}
	if len(names) > max {
		return names[:max], true, nil
	}
	return names, false, nil
}

// repoState is what one walk verified towards a repository.
type repoState struct {
	repo  string
	state *verify.State
}

// walkRepos walks the graph towards each repository; one the graph does not
// delegate is noted, not drawn.
func (u *UI) walkRepos(ctx context.Context, s *session, repos []string) ([]repoState, []string, error) {
	tok, err := u.trustdToken(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	sess := &trust.Session{Home: u.home, Registry: u.pinHost, HTTP: u.http,
		Trustd: &client.Trustd{Base: u.cfg.Trustd, Token: tok, HTTP: u.http}}
	v, err := sess.Verifier()
	if err != nil {
		return nil, nil, err
	}
	u.trustMu.Lock()
	defer u.trustMu.Unlock()
	var out []repoState
	var undelegated []string
	for _, repo := range repos {
		st, err := v.Walk(ctx, trustnames.TargetPath(repo, "latest"))
		if err != nil {
			return nil, nil, err
		}
		if st.Roles[trustnames.RoleForRepo(repo)] == nil && findDelegation(st, repo) == nil {
			undelegated = append(undelegated, repo)
			continue
		}
		out = append(out, repoState{repo: repo, state: st})
	}
	var notes []string
	if len(undelegated) > 0 {
		notes = append(notes, "Not delegated to any key (open, or not yet set up): "+strings.Join(undelegated, ", ")+".")
	}
	return out, notes, nil
}

// findDelegation is the org role's delegation of repo in st, or nil.
func findDelegation(st *verify.State, repo string) *metadata.DelegatedRole {
	org := st.Roles[trustnames.RoleForOrg(trustnames.OrgOfRepo(repo))]
	if org == nil || org.Signed.Delegations == nil {
		return nil
	}
	name := trustnames.RoleForRepo(repo)
	for i := range org.Signed.Delegations.Roles {
		if d := &org.Signed.Delegations.Roles[i]; d.Name == name {
			return d
		}
	}
	return nil
}

// topDelegation is the targets role's delegation named role, or nil.
func topDelegation(st *verify.State, role string) *metadata.DelegatedRole {
	t := st.Roles["targets"]
	if t == nil || t.Signed.Delegations == nil {
		return nil
	}
	for i := range t.Signed.Delegations.Roles {
		if d := &t.Signed.Delegations.Roles[i]; d.Name == role {
			return d
		}
	}
	return nil
}

func roleLines(version int64, expires time.Time) string {
	return "v" + strconv.FormatInt(version, 10) + " · expires " + expires.UTC().Format("2006-01-02")
}

func thresholdLabel(threshold, keys int) string {
	return strconv.Itoa(threshold) + " of " + strconv.Itoa(keys)
}

// layoutGraph places the roles the walks verified: a row per repository,
// each organisation beside its repositories, root and targets beside all.
func layoutGraph(states []repoState) graphView {
	var g graphView
	box := func(col, y int, n gNode) gNode {
		n.X, n.Y, n.W, n.H = margin+col*colW, y, boxW, boxH
		return n
	}
	edge := func(a, b gNode) {
		g.Edges = append(g.Edges, gEdge{X1: a.X + a.W, Y1: a.Y + a.H/2, X2: b.X, Y2: b.Y + b.H/2})
	}
	rows := max(len(states), 1)
	keyRow := map[string]int{}
	var keyNodes []gNode
	var repoNodes []gNode
	orgs := map[string][]int{} // org → rows of its repositories
	var orgOrder []string
	for i, rs := range states {
		org := trustnames.OrgOfRepo(rs.repo)
		if _, ok := orgs[org]; !ok {
			orgOrder = append(orgOrder, org)
		}
		orgs[org] = append(orgs[org], i)
		n := gNode{Title: rs.repo, Class: "repo", Link: Prefix + "r/" + rs.repo}
		if md := rs.state.Roles[trustnames.RoleForRepo(rs.repo)]; md != nil {
			n.Lines = roleLines(md.Signed.Version, md.Signed.Expires)
		} else {
			n.Lines = "no signed version yet"
		}
		n = box(3, margin+i*rowH, n)
		repoNodes = append(repoNodes, n)
		if d := findDelegation(rs.state, rs.repo); d != nil {
			for _, id := range d.KeyIDs {
				k, ok := keyRow[id]
				if !ok {
					k = len(keyNodes)
					keyRow[id] = k
					keyNodes = append(keyNodes, box(4, margin+k*rowH, gNode{Title: "key " + id[:min(len(id), 16)], Lines: "", Class: "key"}))
				}
				edge(n, keyNodes[k])
			}
			n.Keys = "signed by " + thresholdLabel(d.Threshold, len(d.KeyIDs)) + " delegated keys"
			repoNodes[len(repoNodes)-1] = n
		}
	}
	rows = max(rows, len(keyNodes))
	mid := func(first, last int) int { return margin + (first+last)*rowH/2 }
	var top gNode
	var root gNode
	if len(states) > 0 {
		st := states[0].state
		rr := st.Root.Signed.Roles[metadata.ROOT]
		root = box(0, mid(0, len(states)-1), gNode{Title: "root", Class: "role",
			Lines: roleLines(st.Root.Signed.Version, st.Root.Signed.Expires), Keys: "signed by " + thresholdLabel(rr.Threshold, len(rr.KeyIDs)) + " root keys"})
		tr := st.Root.Signed.Roles[metadata.TARGETS]
		t := st.Roles[metadata.TARGETS]
		top = box(1, mid(0, len(states)-1), gNode{Title: "targets", Class: "role",
			Lines: roleLines(t.Signed.Version, t.Signed.Expires), Keys: "signed by " + thresholdLabel(tr.Threshold, len(tr.KeyIDs)) + " targets keys"})
		g.Nodes = append(g.Nodes, root, top)
		edge(root, top)
	}
	for _, org := range orgOrder {
		rs := orgs[org]
		st := states[rs[0]].state
		n := gNode{Title: org, Class: "org"}
		if md := st.Roles[trustnames.RoleForOrg(org)]; md != nil {
			n.Lines = roleLines(md.Signed.Version, md.Signed.Expires)
		}
		if d := topDelegation(st, trustnames.RoleForOrg(org)); d != nil {
			n.Keys = "signed by " + thresholdLabel(d.Threshold, len(d.KeyIDs)) + " org keys"
		}
		n = box(2, mid(rs[0], rs[len(rs)-1]), n)
		g.Nodes = append(g.Nodes, n)
		edge(top, n)
		for _, i := range rs {
			edge(n, repoNodes[i])
		}
	}
	g.Nodes = append(g.Nodes, repoNodes...)
	g.Nodes = append(g.Nodes, keyNodes...)
	slices.SortStableFunc(g.Nodes, func(a, b gNode) int { return a.X - b.X })
	g.W, g.H = 2*margin+4*colW+boxW, 2*margin+rows*rowH
	return g
}
