package trustd

import (
	"slices"
	"strings"

	"github.com/signet-oss/signet/reference"
	"github.com/signet-oss/signet/tokenauth"
)

// What a subject may do, from trustd's current records:
//
//   - anonymous: pull on repositories matching anonymousPull;
//   - an admin: pull, push and delete on every repository;
//   - a person: what anonymous may, plus by org role on "<org>/**" (owner pull,
//     push, delete; publisher pull, push; reader pull), plus their grants;
//   - a robot: exactly its scopes, nothing else (not even anonymous pull).
//
// registry:catalog:* goes to every authenticated subject, and to anonymous when
// anonymousPull is set, with Patterns listing what the subject may pull, so the
// registry can filter the catalog without asking trustd; a subject who may pull
// nothing gets no catalog entry at all. registry:audit:read (the registry's
// audit log) goes to admins only.
//
// A token carries the intersection of what was asked and what is allowed: "*"
// asked on a repository is taken literally and matches nothing, so no token ever
// carries a repository wildcard.

// actionSet is a set of repository actions.
type actionSet uint8

const (
	actPull actionSet = 1 << iota
	actPush
	actDelete
)

var actionNames = [...]struct {
	bit  actionSet
	name string
}{{actPull, "pull"}, {actPush, "push"}, {actDelete, "delete"}}

func actionBit(name string) actionSet {
	for _, a := range actionNames {
		if a.name == name {
			return a.bit
		}
	}
	return 0
}

// names lists the set's actions in the canonical order pull, push, delete.
func (s actionSet) names() []string {
	var out []string
	for _, a := range actionNames {
		if s&a.bit != 0 {
			out = append(out, a.name)
		}
	}
	return out
}

// allowed returns what p may do on the repository repo.
func (s *Server) allowed(p principal, repo string) actionSet {
	if p.Kind == "robot" {
		var set actionSet
		for _, a := range p.robot.access {
			if a.Type == "repository" && a.Name == repo {
				for _, act := range a.Actions {
					set |= actionBit(act)
				}
			}
		}
		return set
	}
	if p.Admin {
		return actPull | actPush | actDelete
	}
	var set actionSet
	for _, pat := range s.cfg.AnonymousPull {
		if reference.MatchPattern(pat, repo) {
			set |= actPull
			break
		}
	}
	if p.anonymous() {
		return set
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if i := strings.IndexByte(repo, '/'); i > 0 {
		if o := s.orgs[repo[:i]]; o != nil {
			set |= roleActions(o.Members[p.Name])
		}
	}
	for _, g := range s.grantsBy[p.Name] {
		if set|g.actions != set && reference.MatchPattern(g.Pattern, repo) {
			set |= g.actions
		}
	}
	return set
}

// pullPatterns lists the repository patterns p may pull, for the catalog entry.
func (s *Server) pullPatterns(p principal) []string {
	if p.Kind == "robot" {
		var out []string
		for _, a := range p.robot.access {
			if a.Type == "repository" && slices.Contains(a.Actions, "pull") {
				out = append(out, a.Name)
			}
		}
		return out
	}
	if p.Admin {
		return []string{"**"}
	}
	out := slices.Clone(s.cfg.AnonymousPull)
	if p.anonymous() {
		return out
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, o := range s.orgs {
		if roleActions(o.Members[p.Name])&actPull != 0 {
			out = append(out, o.Name+"/**")
		}
	}
	for _, g := range s.grantsBy[p.Name] {
		if g.actions&actPull != 0 {
			out = append(out, g.Pattern)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// mayListCatalog reports whether p gets registry:catalog:*.
func (s *Server) mayListCatalog(p principal) bool {
	return !p.anonymous() || len(s.cfg.AnonymousPull) > 0
}

// grantAccess intersects what was asked with what p may do. A repository with
// nothing left stays in, with no actions: missing access is not an error, and the
// registry can tell "asked and refused" from "never asked" (a mount then falls
// back to an upload instead of challenging for the source's scope again).
func (s *Server) grantAccess(p principal, asked []tokenauth.Access) []tokenauth.Access {
	out := make([]tokenauth.Access, 0, len(asked))
	for _, a := range asked {
		switch a.Type {
		case "repository":
			allowed := s.allowed(p, a.Name)
			acts := []string{}
			for _, act := range a.Actions {
				if bit := actionBit(act); bit != 0 && allowed&bit != 0 && !slices.Contains(acts, act) {
					acts = append(acts, act)
				}
			}
			out = append(out, tokenauth.Access{Type: a.Type, Name: a.Name, Actions: acts})
		case "registry":
			if a.Name == tokenauth.AuditName {
				// The registry's audit log: admins only.
				if p.Kind == "person" && p.Admin && slices.Contains(a.Actions, tokenauth.ActionRead) {
					out = append(out, tokenauth.Access{Type: "registry", Name: tokenauth.AuditName, Actions: []string{tokenauth.ActionRead}})
				}
				continue
			}
			if a.Name != "catalog" || !slices.Contains(a.Actions, "*") || !s.mayListCatalog(p) {
				continue
			}
			// No patterns, no entry: an entry without Patterns must never be
			// read as "everything".
			if pats := s.pullPatterns(p); len(pats) > 0 {
				out = append(out, tokenauth.Access{Type: "registry", Name: "catalog", Actions: []string{"*"}, Patterns: pats})
			}
		}
	}
	return out
}

// mayPullIn reports whether p may pull at least one repository of org ("<org>/**"),
// which is what reading org's TUF role needs.
func (s *Server) mayPullIn(p principal, org string) bool {
	if p.Kind == "robot" {
		for _, a := range p.robot.access {
			if a.Type == "repository" && strings.HasPrefix(a.Name, org+"/") && slices.Contains(a.Actions, "pull") {
				return true
			}
		}
		return false
	}
	if p.Admin || roleActions(s.orgRole(org, p.Name))&actPull != 0 {
		return true
	}
	// A pattern reaches into org when its first component matches org and more
	// components may follow; "**" first matches any org.
	reaches := func(pat string) bool {
		first, rest, more := strings.Cut(pat, "/")
		return reference.MatchPattern(first, org) && (more && rest != "" || first == "**")
	}
	for _, pat := range s.cfg.AnonymousPull {
		if reaches(pat) {
			return true
		}
	}
	if p.anonymous() {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, g := range s.grantsBy[p.Name] {
		if g.actions&actPull != 0 && reaches(g.Pattern) {
			return true
		}
	}
	return false
}
