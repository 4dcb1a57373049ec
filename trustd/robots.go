package trustd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/signet-oss/signet/tokenauth"
)

// A robot is a credential an org hands to a machine: "<org>+<name>" and a random
// secret, with fixed repository scopes inside the org's namespace and an expiry.
// Its rights are its scopes and nothing else, whatever the org's members may do;
// deleting it revokes it: its Basic auth and its refresh tokens fail at the next
// token exchange, and access tokens already issued die within TokenTTL.

// defaultRobotTTL is a robot's lifetime when its creator gives none.
const defaultRobotTTL = 30 * 24 * time.Hour

// parseRobotScopes checks that every scope is a repository scope inside org's
// namespace with explicit actions, and returns them parsed and merged.
func parseRobotScopes(orgName string, scopes []string) ([]tokenauth.Access, error) {
	if len(scopes) == 0 {
		return nil, fmt.Errorf("%w: a robot needs at least one scope, such as repository:%s/app:pull", errInvalid, orgName)
	}
	access, err := tokenauth.ParseScopes(scopes)
	if err != nil {
		return nil, err
	}
	for _, a := range access {
		if a.Type != "repository" || !strings.HasPrefix(a.Name, orgName+"/") {
			return nil, fmt.Errorf("%w: scope %q is not a repository scope inside %s/", errInvalid, a.Scope(), orgName)
		}
		if slices.Contains(a.Actions, "*") {
			return nil, fmt.Errorf("%w: scope %q: name the actions (pull, push, delete) instead of *", errInvalid, a.Scope())
		}
	}
	return access, nil
}

// createRobot makes a robot of org and returns it with its secret, which is
// stored only as its SHA-256 and never shown again.
func (s *Server) createRobot(ctx context.Context, orgName, name string, scopes []string, ttl time.Duration) (*robot, string, error) {
	if err := validateAccountName(name); err != nil {
		return nil, "", fmt.Errorf("%w: robot %v", errNameInvalid, err)
	}
	if ttl < 0 {
		return nil, "", fmt.Errorf("%w: ttl %s is negative", errInvalid, ttl)
	}
	if ttl == 0 {
		ttl = defaultRobotTTL
	}
	access, err := parseRobotScopes(orgName, scopes)
	if err != nil {
		return nil, "", err
	}
	canonical := make([]string, len(access))
	for i, a := range access {
		canonical[i] = a.Scope()
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.getOrg(orgName) == nil {
		return nil, "", fmt.Errorf("organisation %q: %w", orgName, errNotFound)
	}
	full := orgName + "+" + name
	if _, r := s.account(full); r != nil {
		return nil, "", fmt.Errorf("robot %q: %w", full, errConflict)
	}
	secret := randomToken()
	now := s.now().UTC()
	r := &robot{
		ID: randomID(), Org: orgName, Name: name, SecretHash: sha256Hex(secret),
		Scopes: canonical, Expires: now.Add(ttl).Truncate(time.Second), Created: now,
		access: access,
	}
	if r.version, err = s.rec.create(ctx, robotPath(orgName, name), r); err != nil {
		if errors.Is(err, errConflict) {
			return nil, "", fmt.Errorf("robot %q: %w", full, errConflict)
		}
		return nil, "", err
	}
	s.mu.Lock()
	s.robots[full] = r
	s.mu.Unlock()
	return r, secret, nil
}

// listRobots returns org's robots, by name.
func (s *Server) listRobots(orgName string) []*robot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*robot
	for _, r := range s.robots {
		if r.Org == orgName {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *robot) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// deleteRobot revokes org's robot name (with or without the "<org>+" prefix) and
// drops its refresh tokens, returning how many it had.
func (s *Server) deleteRobot(ctx context.Context, orgName, name string) (int, error) {
	name = strings.TrimPrefix(name, orgName+"+")
	full := orgName + "+" + name
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_, r := s.account(full)
	if r == nil {
		return 0, fmt.Errorf("robot %q: %w", full, errNotFound)
	}
	// Forget it in memory first: from here no exchange accepts it, even if the
	// driver fails below (then it comes back at the next start, and the
	// caller, told of the failure, can retry).
	s.mu.Lock()
	delete(s.robots, full)
	s.mu.Unlock()
	if err := s.rec.remove(ctx, robotPath(orgName, name)); err != nil {
		return 0, err
	}
	return s.revokeRefreshTokens(ctx, r.ID), nil
}
