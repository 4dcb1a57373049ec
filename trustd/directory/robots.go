package directory

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
		return nil, fmt.Errorf("%w: a robot needs at least one scope, such as repository:%s/app:pull", ErrInvalid, orgName)
	}
	access, err := tokenauth.ParseScopes(scopes)
	if err != nil {
		return nil, err
	}
	for _, a := range access {
		if a.Type != "repository" || !strings.HasPrefix(a.Name, orgName+"/") {
			return nil, fmt.Errorf("%w: scope %q is not a repository scope inside %s/", ErrInvalid, a.Scope(), orgName)
		}
		if slices.Contains(a.Actions, "*") {
			return nil, fmt.Errorf("%w: scope %q: name the actions (pull, push, delete) instead of *", ErrInvalid, a.Scope())
		}
	}
	return access, nil
}

// CreateRobot makes a robot of org and returns it with its secret, which is
// stored only as its SHA-256 and never shown again.
func (d *Directory) CreateRobot(ctx context.Context, orgName, name string, scopes []string, ttl time.Duration) (*Robot, string, error) {
	if err := ValidateAccountName(name); err != nil {
		return nil, "", fmt.Errorf("%w: robot %v", ErrNameInvalid, err)
	}
	if ttl < 0 {
		return nil, "", fmt.Errorf("%w: ttl %s is negative", ErrInvalid, ttl)
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
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if d.Org(orgName) == nil {
		return nil, "", fmt.Errorf("organisation %q: %w", orgName, ErrNotFound)
	}
	full := orgName + "+" + name
	if _, r := d.Account(full); r != nil {
		return nil, "", fmt.Errorf("robot %q: %w", full, ErrConflict)
	}
	secret := randomToken()
	now := d.now().UTC()
	r := &Robot{
		ID: randomID(), Org: orgName, Name: name, SecretHash: sha256Hex(secret),
		Scopes: canonical, Expires: now.Add(ttl).Truncate(time.Second), Created: now,
		access: access,
	}
	if r.version, err = d.rec.create(ctx, robotPath(orgName, name), r); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, "", fmt.Errorf("robot %q: %w", full, ErrConflict)
		}
		return nil, "", err
	}
	d.mu.Lock()
	d.robots[full] = r
	d.mu.Unlock()
	return r, secret, nil
}

// Robots returns org's robots, by name.
func (d *Directory) Robots(orgName string) []*Robot {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []*Robot
	for _, r := range d.robots {
		if r.Org == orgName {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *Robot) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// DeleteRobot revokes org's robot name (with or without the "<org>+" prefix) and
// drops its refresh tokens, returning how many it had.
func (d *Directory) DeleteRobot(ctx context.Context, orgName, name string) (int, error) {
	name = strings.TrimPrefix(name, orgName+"+")
	full := orgName + "+" + name
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	_, r := d.Account(full)
	if r == nil {
		return 0, fmt.Errorf("robot %q: %w", full, ErrNotFound)
	}
	// Forget it in memory first: from here no exchange accepts it, even if the
	// driver fails below (then it comes back at the next start, and the
	// caller, told of the failure, can retry).
	d.mu.Lock()
	delete(d.robots, full)
	d.mu.Unlock()
	if err := d.rec.remove(ctx, robotPath(orgName, name)); err != nil {
		return 0, err
	}
	return d.revokeRefreshTokens(ctx, r.ID), nil
}
