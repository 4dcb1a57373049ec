package directory

import (
	"slices"
	"strings"
)

// Listings for the management API's read endpoints: what whoami, GET /orgs and
// GET /users show. Each copies out of the view under its read lock.

// Orgs returns every organisation, by name.
func (d *Directory) Orgs() []*Org {
	d.mu.RLock()
	out := make([]*Org, 0, len(d.orgs))
	for _, o := range d.orgs {
		out = append(out, o)
	}
	d.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Org) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// People returns every person's account, by name.
func (d *Directory) People() []*Person {
	d.mu.RLock()
	out := make([]*Person, 0, len(d.people))
	for _, p := range d.people {
		out = append(out, p)
	}
	d.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Person) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// RolesOf returns p's organisations and its role in each: a person's
// memberships, or a robot's own organisation with the role "robot".
func (d *Directory) RolesOf(p Principal) map[string]string {
	out := map[string]string{}
	switch {
	case p.Kind == "robot" && p.Robot != nil:
		out[p.Robot.Org] = "robot"
	case p.Kind == "person":
		d.mu.RLock()
		for name, o := range d.orgs {
			if role := o.Members[p.Name]; role != "" {
				out[name] = role
			}
		}
		d.mu.RUnlock()
	}
	return out
}
