package directory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/signet-oss/signet/reference"
)

// A grant gives a person actions on every repository matching a pattern, on top
// of what their org roles give ("team/**": pull). Only admins make grants. Robots
// get no grants: their scopes are fixed when they are made.

// Grant is a grant's record.
type Grant struct {
	ID      string    `json:"id"`
	Subject string    `json:"subject"`
	Pattern string    `json:"pattern"`
	Actions []string  `json:"actions"`
	Created time.Time `json:"created"`

	actions ActionSet
}

// ValidatePattern checks a repository pattern: a repository name in which a
// component, or part of one, may be "*" (one component) or a component may be
// "**" (any number of components).
func ValidatePattern(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty repository pattern", ErrInvalid)
	}
	for c := range strings.SplitSeq(p, "/") {
		if strings.Contains(c, "**") && c != "**" {
			return fmt.Errorf("%w: pattern %q: ** must be a whole component", ErrInvalid, p)
		}
	}
	// Every "*" stands for at least one name character: with each replaced by
	// one, the pattern must be a valid name.
	if err := reference.ValidateName(strings.ReplaceAll(p, "*", "a")); err != nil {
		return fmt.Errorf("%w: pattern %q is not a repository name with * or ** components", ErrInvalid, p)
	}
	return nil
}

func parseActions(actions []string) (ActionSet, error) {
	if len(actions) == 0 {
		return 0, fmt.Errorf("%w: no actions (pull, push, delete)", ErrInvalid)
	}
	var set ActionSet
	for _, a := range actions {
		bit := actionBit(a)
		if bit == 0 {
			return 0, fmt.Errorf("%w: action %q is not pull, push or delete", ErrInvalid, a)
		}
		set |= bit
	}
	return set, nil
}

// CreateGrant gives subject (a person) actions on repositories matching pattern.
func (d *Directory) CreateGrant(ctx context.Context, subject, pattern string, actions []string) (*Grant, error) {
	if err := ValidatePattern(pattern); err != nil {
		return nil, err
	}
	set, err := parseActions(actions)
	if err != nil {
		return nil, err
	}
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if p, _ := d.Account(subject); p == nil {
		return nil, fmt.Errorf("user %q: %w (grants are for people; a robot's scopes are fixed)", subject, ErrNotFound)
	}
	g := &Grant{ID: randomID(), Subject: subject, Pattern: pattern, Actions: set.names(), Created: d.now().UTC(), actions: set}
	if _, err := d.rec.create(ctx, grantPath(g.ID), g); err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.view.addGrant(g)
	d.mu.Unlock()
	return g, nil
}

// Grants returns every grant, oldest first.
func (d *Directory) Grants() []*Grant {
	d.mu.RLock()
	out := make([]*Grant, 0, len(d.grants))
	for _, g := range d.grants {
		out = append(out, g)
	}
	d.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Grant) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// DeleteGrant removes the grant id and returns it.
func (d *Directory) DeleteGrant(ctx context.Context, id string) (*Grant, error) {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	d.mu.Lock()
	g := d.grants[id]
	if g != nil {
		delete(d.grants, id)
		// A new slice: readers may hold the old one.
		d.grantsBy[g.Subject] = slices.DeleteFunc(slices.Clone(d.grantsBy[g.Subject]), func(x *Grant) bool { return x.ID == id })
	}
	d.mu.Unlock()
	if g == nil {
		return nil, fmt.Errorf("grant %q: %w", id, ErrNotFound)
	}
	return g, d.rec.remove(ctx, grantPath(id))
}
