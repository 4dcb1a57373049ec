package trustd

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/signet-oss/signet/reference"
)

// An organisation owns the namespace "<org>/**": its members get actions there by
// role, and its owners make its robots. Org names are one lower-case repository
// name component.

// Roles, from most to least: what each may do on "<org>/**".
const (
	RoleOwner     = "owner"     // pull, push, delete; manages members and robots
	RolePublisher = "publisher" // pull, push
	RoleReader    = "reader"    // pull
)

func roleActions(role string) actionSet {
	switch role {
	case RoleOwner:
		return actPull | actPush | actDelete
	case RolePublisher:
		return actPull | actPush
	case RoleReader:
		return actPull
	}
	return 0
}

// org is an organisation's record.
type org struct {
	Name    string            `json:"name"`
	Members map[string]string `json:"members"` // person name → role
	Created time.Time         `json:"created"`

	version string
}

// validateOrgName checks an org name with the grammar the registry also uses to
// refuse repository names no org could ever be delegated.
func validateOrgName(name string) error {
	if err := reference.ValidateOrgName(name); err != nil {
		return fmt.Errorf("%w: %v", errNameInvalid, err)
	}
	return nil
}

// getOrg returns the org called name, or nil.
func (s *Server) getOrg(name string) *org {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.orgs[name]
}

// createOrg makes an org; created is false if it already existed, which is not an
// error (making an org is idempotent).
func (s *Server) createOrg(ctx context.Context, name string) (o *org, created bool, err error) {
	if err := validateOrgName(name); err != nil {
		return nil, false, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if o := s.getOrg(name); o != nil {
		return o, false, nil
	}
	o = &org{Name: name, Members: map[string]string{}, Created: s.now().UTC()}
	o.version, err = s.rec.create(ctx, orgPath(name), o)
	if errors.Is(err, errConflict) {
		return nil, false, fmt.Errorf("organisation %q was just made by another trustd; try again after it reloads: %w", name, errConflict)
	}
	if err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	s.orgs[name] = o
	s.mu.Unlock()
	return o, true, nil
}

// setMember gives user role in org (role "" removes them).
func (s *Server) setMember(ctx context.Context, orgName, user, role string) error {
	if role != "" && roleActions(role) == 0 {
		return fmt.Errorf("%w: role %q is not owner, publisher or reader", errInvalid, role)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	o := s.getOrg(orgName)
	if o == nil {
		return fmt.Errorf("organisation %q: %w", orgName, errNotFound)
	}
	_, member := o.Members[user]
	if role == "" && !member {
		return fmt.Errorf("user %q is not a member of %q: %w", user, orgName, errNotFound)
	}
	if p, _ := s.account(user); role != "" && p == nil {
		return fmt.Errorf("user %q: %w (robots cannot be members; their scopes are fixed)", user, errNotFound)
	}
	next := &org{Name: o.Name, Members: maps.Clone(o.Members), Created: o.Created}
	if role == "" {
		delete(next.Members, user)
	} else {
		next.Members[user] = role
	}
	var err error
	if next.version, err = s.rec.update(ctx, orgPath(orgName), o.version, next); err != nil {
		return err
	}
	s.mu.Lock()
	s.orgs[orgName] = next
	s.mu.Unlock()
	return nil
}

// orgRole is user's role in org, or "".
func (s *Server) orgRole(orgName, user string) string {
	if o := s.getOrg(orgName); o != nil {
		return o.Members[user]
	}
	return ""
}

// mayManageOrg reports whether p may change org's members and robots: an admin,
// or a person who owns it. Robots never may.
func (s *Server) mayManageOrg(p principal, orgName string) bool {
	return p.Kind == "person" && (p.Admin || s.orgRole(orgName, p.Name) == RoleOwner)
}
