package directory

import (
	"maps"
	"slices"
	"strings"
)

// Listings for the management API's read endpoints: what whoami, GET /orgs and
// GET /users show. Each copies out of the view under its read lock.

// Orgs returns every organisation, by name.
func (d *Directory) Orgs() []*Org {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return slices.SortedFunc(maps.Values(d.orgs), func(a, b *Org) int { return strings.Compare(a.Name, b.Name) })
}

// People returns every person's account, by name.
func (d *Directory) People() []*Person {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return slices.SortedFunc(maps.Values(d.people), func(a, b *Person) int { return strings.Compare(a.Name, b.Name) })
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
