// Package api holds the wire types of trustd's management API (/api/v1), the
// request and answer bodies trustd's handlers decode and send and trustctl's
// client sends and reads, so the two are written against one definition. It
// imports nothing of the servers: a client links it without linking trustd.
//
// Times are UTC with whole seconds (RFC 3339).
package api

import "time"

// Identity is who a token speaks for: the answer of GET /whoami, of POST
// /users for the person it made, and the items of GET /users.
type Identity struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"` // "person" or "robot"
	Admin bool   `json:"admin"`
	// Orgs maps each organisation the account belongs to to its role there
	// (owner, publisher, reader; "robot" for a robot's own organisation).
	Orgs map[string]string `json:"orgs,omitempty"`
}

// UserRequest is the body of POST /users: a person's account.
type UserRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// OrgRequest is the body of POST /orgs.
type OrgRequest struct {
	Name string `json:"name"`
}

// Org is an organisation and its members' roles (person name → owner, publisher
// or reader): the answer of POST /orgs, GET /orgs/{org} and PUT of a member.
type Org struct {
	Name    string            `json:"name"`
	Members map[string]string `json:"members"`
}

// MemberRequest is the body of PUT /orgs/{org}/members/{user}.
type MemberRequest struct {
	Role string `json:"role"`
}

// RobotRequest is the body of POST /orgs/{org}/robots: a robot credential
// scoped to the organisation's repositories. TTL is a duration such as 720h;
// empty means trustd's default.
type RobotRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	TTL    string   `json:"ttl,omitempty"`
}

// Robot is a robot account, by its full name "<org>+<name>". Secret is set only
// in the answer that creates it, and Created only in listings.
type Robot struct {
	Name    string    `json:"name"`
	Secret  string    `json:"secret,omitempty"`
	Scopes  []string  `json:"scopes"`
	Expires time.Time `json:"expires"`
	Created time.Time `json:"created,omitzero"`
}

// GrantRequest is the body of POST /grants: actions (pull, push, delete) on the
// repositories matching Pattern, for the person Subject.
type GrantRequest struct {
	Subject string   `json:"subject"`
	Pattern string   `json:"pattern"`
	Actions []string `json:"actions"`
}

// Grant is a grant: the answer of POST /grants, and the items of GET /grants.
type Grant struct {
	ID      string    `json:"id"`
	Subject string    `json:"subject"`
	Pattern string    `json:"pattern"`
	Actions []string  `json:"actions"`
	Created time.Time `json:"created"`
}

// Errors is the body of every refusal: {"errors":[{"code","message"}]}.
type Errors struct {
	Errors []Error `json:"errors"`
}

// Error is one refusal: a code of trustd's API and a message for people.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Published is trustd's answer to a TUF publish (PUT /tuf/api/metadata/<role>):
// the role's new version; or, when the signatures do not meet the threshold yet,
// the staged count; or, when the version delegates roles that have no metadata
// yet (or is a complete first version of such a role whose siblings have none
// yet), Held: accepted, and published with the first versions of Waiting.
type Published struct {
	// Version is the role version published, staged or held.
	Version int64 `json:"version"`
	// Staged is true when the upload waits for more signatures; Signatures and
	// Threshold say how far it is.
	Staged     bool `json:"staged,omitempty"`
	Signatures int  `json:"signatures,omitempty"`
	Threshold  int  `json:"threshold,omitempty"`
	// Held is true when the version is accepted but not published.
	Held    bool      `json:"held,omitempty"`
	Waiting []Waiting `json:"waiting,omitempty"`
	// Released lists the role versions published in the same snapshot: the
	// held version of the parent and first versions of its other new roles.
	Released []RoleVersion `json:"released,omitempty"`
}

// Waiting is a role a held version waits for: a repository's role, or an
// organisation's.
type Waiting struct {
	Role string `json:"role"`
	// Repository or Org is what the role covers.
	Repository string `json:"repository,omitempty"`
	Org        string `json:"org,omitempty"`
}

// Name is what the role covers: the repository, or the organisation.
func (w Waiting) Name() string {
	if w.Repository != "" {
		return w.Repository
	}
	if w.Org != "" {
		return "organisation " + w.Org
	}
	return w.Role
}

// RoleVersion names one version of a role, and the repository a repository's
// role covers.
type RoleVersion struct {
	Role       string `json:"role"`
	Version    int64  `json:"version"`
	Repository string `json:"repository,omitempty"`
}
