package trustd

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

// grant is a grant's record.
type grant struct {
	ID      string    `json:"id"`
	Subject string    `json:"subject"`
	Pattern string    `json:"pattern"`
	Actions []string  `json:"actions"`
	Created time.Time `json:"created"`

	actions actionSet
}

// validatePattern checks a repository pattern: a repository name in which a
// component, or part of one, may be "*" (one component) or a component may be
// "**" (any number of components).
func validatePattern(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty repository pattern", errInvalid)
	}
	for c := range strings.SplitSeq(p, "/") {
		if strings.Contains(c, "**") && c != "**" {
			return fmt.Errorf("%w: pattern %q: ** must be a whole component", errInvalid, p)
		}
	}
	// Every "*" stands for at least one name character: with each replaced by
	// one, the pattern must be a valid name.
	if err := reference.ValidateName(strings.ReplaceAll(p, "*", "a")); err != nil {
		return fmt.Errorf("%w: pattern %q is not a repository name with * or ** components", errInvalid, p)
	}
	return nil
}

func parseActions(actions []string) (actionSet, error) {
	if len(actions) == 0 {
		return 0, fmt.Errorf("%w: no actions (pull, push, delete)", errInvalid)
	}
	var set actionSet
	for _, a := range actions {
		bit := actionBit(a)
		if bit == 0 {
			return 0, fmt.Errorf("%w: action %q is not pull, push or delete", errInvalid, a)
		}
		set |= bit
	}
	return set, nil
}

// createGrant gives subject (a person) actions on repositories matching pattern.
func (s *Server) createGrant(ctx context.Context, subject, pattern string, actions []string) (*grant, error) {
	if err := validatePattern(pattern); err != nil {
		return nil, err
	}
	set, err := parseActions(actions)
	if err != nil {
		return nil, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if p, _ := s.account(subject); p == nil {
		return nil, fmt.Errorf("user %q: %w (grants are for people; a robot's scopes are fixed)", subject, errNotFound)
	}
	g := &grant{ID: randomID(), Subject: subject, Pattern: pattern, Actions: set.names(), Created: s.now().UTC(), actions: set}
	if _, err := s.rec.create(ctx, grantPath(g.ID), g); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.addGrantLocked(g)
	s.mu.Unlock()
	return g, nil
}

// addGrantLocked indexes g. s.mu is held for writing.
func (s *Server) addGrantLocked(g *grant) {
	s.grants[g.ID] = g
	s.grantsBy[g.Subject] = append(slices.Clip(s.grantsBy[g.Subject]), g)
}

// listGrants returns every grant, oldest first.
func (s *Server) listGrants() []*grant {
	s.mu.RLock()
	out := make([]*grant, 0, len(s.grants))
	for _, g := range s.grants {
		out = append(out, g)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *grant) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// deleteGrant removes the grant id and returns it.
func (s *Server) deleteGrant(ctx context.Context, id string) (*grant, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	g := s.grants[id]
	if g != nil {
		delete(s.grants, id)
		// A new slice: readers may hold the old one.
		s.grantsBy[g.Subject] = slices.DeleteFunc(slices.Clone(s.grantsBy[g.Subject]), func(x *grant) bool { return x.ID == id })
	}
	s.mu.Unlock()
	if g == nil {
		return nil, fmt.Errorf("grant %q: %w", id, errNotFound)
	}
	return g, s.rec.remove(ctx, grantPath(id))
}
