package directory

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

// ActionSet is a set of repository actions.
type ActionSet uint8

const (
	ActPull ActionSet = 1 << iota
	ActPush
	ActDelete
)

var actionNames = [...]struct {
	bit  ActionSet
	name string
}{{ActPull, "pull"}, {ActPush, "push"}, {ActDelete, "delete"}}

func actionBit(name string) ActionSet {
	for _, a := range actionNames {
		if a.name == name {
			return a.bit
		}
	}
	return 0
}

// names lists the set's actions in the canonical order pull, push, delete.
func (s ActionSet) names() []string {
	var out []string
	for _, a := range actionNames {
		if s&a.bit != 0 {
			out = append(out, a.name)
		}
	}
	return out
}

// Allowed returns what p may do on the repository repo.
func (d *Directory) Allowed(p Principal, repo string) ActionSet {
	if p.Kind == "robot" {
		var set ActionSet
		for _, a := range p.Robot.access {
			if a.Type == "repository" && a.Name == repo {
				for _, act := range a.Actions {
					set |= actionBit(act)
				}
			}
		}
		return set
	}
	if p.Admin {
		return ActPull | ActPush | ActDelete
	}
	var set ActionSet
	for _, pat := range d.cfg.AnonymousPull {
		if reference.MatchPattern(pat, repo) {
			set |= ActPull
			break
		}
	}
	if p.Anonymous() {
		return set
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if i := strings.IndexByte(repo, '/'); i > 0 {
		if o := d.orgs[repo[:i]]; o != nil {
			set |= roleActions(o.Members[p.Name])
		}
	}
	for _, g := range d.grantsBy[p.Name] {
		if set|g.actions != set && reference.MatchPattern(g.Pattern, repo) {
			set |= g.actions
		}
	}
	return set
}

// pullPatterns lists the repository patterns p may pull, for the catalog entry.
func (d *Directory) pullPatterns(p Principal) []string {
	if p.Kind == "robot" {
		var out []string
		for _, a := range p.Robot.access {
			if a.Type == "repository" && slices.Contains(a.Actions, "pull") {
				out = append(out, a.Name)
			}
		}
		return out
	}
	if p.Admin {
		return []string{"**"}
	}
	out := slices.Clone(d.cfg.AnonymousPull)
	if p.Anonymous() {
		return out
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, o := range d.orgs {
		if roleActions(o.Members[p.Name])&ActPull != 0 {
			out = append(out, o.Name+"/**")
		}
	}
	for _, g := range d.grantsBy[p.Name] {
		if g.actions&ActPull != 0 {
			out = append(out, g.Pattern)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// mayListCatalog reports whether p gets registry:catalog:*.
func (d *Directory) mayListCatalog(p Principal) bool {
	return !p.Anonymous() || len(d.cfg.AnonymousPull) > 0
}

// GrantAccess intersects what was asked with what p may do. A repository with
// nothing left stays in, with no actions: missing access is not an error, and the
// registry can tell "asked and refused" from "never asked" (a mount then falls
// back to an upload instead of challenging for the source's scope again).
func (d *Directory) GrantAccess(p Principal, asked []tokenauth.Access) []tokenauth.Access {
	out := make([]tokenauth.Access, 0, len(asked))
	for _, a := range asked {
		switch a.Type {
		case "repository":
			allowed := d.Allowed(p, a.Name)
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
			if a.Name != "catalog" || !slices.Contains(a.Actions, "*") || !d.mayListCatalog(p) {
				continue
			}
			// No patterns, no entry: an entry without Patterns must never be
			// read as "everything".
			if pats := d.pullPatterns(p); len(pats) > 0 {
				out = append(out, tokenauth.Access{Type: "registry", Name: "catalog", Actions: []string{"*"}, Patterns: pats})
			}
		}
	}
	return out
}

// MayPullIn reports whether p may pull at least one repository of org ("<org>/**"),
// which is what reading org's TUF role needs.
func (d *Directory) MayPullIn(p Principal, org string) bool {
	if p.Kind == "robot" {
		for _, a := range p.Robot.access {
			if a.Type == "repository" && strings.HasPrefix(a.Name, org+"/") && slices.Contains(a.Actions, "pull") {
				return true
			}
		}
		return false
	}
	if p.Admin || roleActions(d.OrgRole(org, p.Name))&ActPull != 0 {
		return true
	}
	// A pattern reaches into org when its first component matches org and more
	// components may follow; "**" first matches any org.
	reaches := func(pat string) bool {
		first, rest, more := strings.Cut(pat, "/")
		return reference.MatchPattern(first, org) && (more && rest != "" || first == "**")
	}
	for _, pat := range d.cfg.AnonymousPull {
		if reaches(pat) {
			return true
		}
	}
	if p.Anonymous() {
		return false
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, g := range d.grantsBy[p.Name] {
		if g.actions&ActPull != 0 && reaches(g.Pattern) {
			return true
		}
	}
	return false
}
