package directory

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

func roleActions(role string) ActionSet {
	switch role {
	case RoleOwner:
		return ActPull | ActPush | ActDelete
	case RolePublisher:
		return ActPull | ActPush
	case RoleReader:
		return ActPull
	}
	return 0
}

// Org is an organisation's record.
type Org struct {
	Name    string            `json:"name"`
	Members map[string]string `json:"members"` // person name → role
	Created time.Time         `json:"created"`

	version string
}

// validateOrgName checks an org name with the grammar the registry also uses to
// refuse repository names no org could ever be delegated.
func validateOrgName(name string) error {
	if err := reference.ValidateOrgName(name); err != nil {
		return fmt.Errorf("%w: %v", ErrNameInvalid, err)
	}
	return nil
}

// Org returns the org called name, or nil.
func (d *Directory) Org(name string) *Org {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.orgs[name]
}

// CreateOrg makes an org; created is false if it already existed, which is not an
// error (making an org is idempotent).
func (d *Directory) CreateOrg(ctx context.Context, name string) (o *Org, created bool, err error) {
	if err := validateOrgName(name); err != nil {
		return nil, false, err
	}
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if o := d.Org(name); o != nil {
		return o, false, nil
	}
	o = &Org{Name: name, Members: map[string]string{}, Created: d.now().UTC()}
	o.version, err = d.rec.create(ctx, orgPath(name), o)
	if errors.Is(err, ErrConflict) {
		return nil, false, fmt.Errorf("organisation %q was just made by another trustd; try again after it reloads: %w", name, ErrConflict)
	}
	if err != nil {
		return nil, false, err
	}
	d.mu.Lock()
	d.orgs[name] = o
	d.mu.Unlock()
	return o, true, nil
}

// SetMember gives user role in org (role "" removes them).
func (d *Directory) SetMember(ctx context.Context, orgName, user, role string) error {
	if role != "" && roleActions(role) == 0 {
		return fmt.Errorf("%w: role %q is not owner, publisher or reader", ErrInvalid, role)
	}
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	o := d.Org(orgName)
	if o == nil {
		return fmt.Errorf("organisation %q: %w", orgName, ErrNotFound)
	}
	_, member := o.Members[user]
	if role == "" && !member {
		return fmt.Errorf("user %q is not a member of %q: %w", user, orgName, ErrNotFound)
	}
	if p, _ := d.Account(user); role != "" && p == nil {
		return fmt.Errorf("user %q: %w (robots cannot be members; their scopes are fixed)", user, ErrNotFound)
	}
	next := &Org{Name: o.Name, Members: maps.Clone(o.Members), Created: o.Created}
	if role == "" {
		delete(next.Members, user)
	} else {
		next.Members[user] = role
	}
	var err error
	if next.version, err = d.rec.update(ctx, orgPath(orgName), o.version, next); err != nil {
		return err
	}
	d.mu.Lock()
	d.orgs[orgName] = next
	d.mu.Unlock()
	return nil
}

// OrgRole is user's role in org, or "".
func (d *Directory) OrgRole(orgName, user string) string {
	if o := d.Org(orgName); o != nil {
		return o.Members[user]
	}
	return ""
}

// MayManageOrg reports whether p may change org's members and robots: an admin,
// or a person who owns it. Robots never may.
func (d *Directory) MayManageOrg(p Principal, orgName string) bool {
	return p.Kind == "person" && (p.Admin || d.OrgRole(orgName, p.Name) == RoleOwner)
}
