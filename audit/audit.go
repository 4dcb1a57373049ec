// Package audit is what Signet's audit log holds and how it is asked: who
// published what, changed which keys, delegations, grants and tokens, and what
// the registry's gate refused, as records; the queries that select them and the
// pages that answer them, with their URL parameters. It stores nothing: the log
// on a storage driver is audit/auditlog, so a client that reads the log over
// HTTP (trustctl) links no storage code.
//
// Records hold no secrets: callers put names, digests and key IDs in them, never
// passwords, token values or private keys.
package audit

import (
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/signet-oss/signet/reference"
)

// Actions recorded. An action is "<object>.<verb>".
const (
	ActionTrustInit      = "trust.init"        // the TUF repository's first root and targets
	ActionRolePublish    = "role.publish"      // a new version of a TUF role
	ActionRoleStage      = "role.stage"        // a role version short of its threshold, kept for more signatures
	ActionTargetPublish  = "target.publish"    // a target added or moved to another digest
	ActionTargetRemove   = "target.remove"     // a target removed
	ActionKeyAdd         = "key.add"           // keys added to a role
	ActionKeyRemove      = "key.remove"        // keys removed from a role
	ActionKeyRotate      = "key.rotate"        // a role's keys replaced (some added, some removed)
	ActionDelegationAdd  = "delegation.add"    // a role delegated (an org, a repository)
	ActionDelegationEdit = "delegation.edit"   // a delegation's paths or threshold changed
	ActionDelegationDel  = "delegation.remove" // a delegation removed
	ActionOrgCreate      = "org.create"        // an organisation made
	ActionMemberSet      = "member.set"        // a member added to an org or given another role
	ActionMemberRemove   = "member.remove"     // a member removed from an org
	ActionUserCreate     = "user.create"       // a person's account made
	ActionGrantCreate    = "grant.create"      // a grant made
	ActionGrantDelete    = "grant.delete"      // a grant removed
	ActionTokenCreate    = "token.create"      // a robot credential or a refresh token issued
	ActionTokenRevoke    = "token.revoke"      // a robot credential (and its refresh tokens) revoked
	ActionAdmissionDeny  = "admission.deny"    // the registry's gate refused a manifest
)

// Outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeDenied  = "denied"
	OutcomeStaged  = "staged"
)

// Record is one entry of the log. Only ID, Time, Source, Actor, Action and
// Outcome are always set; the rest depend on the action.
type Record struct {
	// ID names the record (NewID); auditlog.Log.Append sets it.
	ID string `json:"id"`
	// Time is when it happened, UTC; auditlog.Log.Append sets it when zero.
	Time time.Time `json:"time"`
	// Source is the service that wrote it: "trustd" or "registry".
	Source string `json:"source"`
	// Actor is the account or robot that acted ("<org>+<name>"), "anonymous"
	// without credentials, or the service itself for its own decisions.
	Actor  string `json:"actor"`
	Action string `json:"action"`
	// Org and Repository are what the action is about, when it is about one.
	Org        string `json:"org,omitempty"`
	Repository string `json:"repository,omitempty"`
	// Role and Version name a TUF role version; Tag and Digest a target or a
	// manifest; KeyIDs the keys an action added, removed or names.
	Role    string   `json:"role,omitempty"`
	Version int64    `json:"version,omitempty"`
	Tag     string   `json:"tag,omitempty"`
	Digest  string   `json:"digest,omitempty"`
	KeyIDs  []string `json:"keyIDs,omitempty"`
	// Subject is whom a grant, robot, token or membership is for.
	Subject string `json:"subject,omitempty"`
	// Detail says what was granted or changed, in a few words
	// ("pull,push on acme/**"); never a secret.
	Detail    string `json:"detail,omitempty"`
	RequestID string `json:"requestID,omitempty"`
	Outcome   string `json:"outcome"`
	// Reason says why an action was denied.
	Reason string `json:"reason,omitempty"`
}

// Limits of a query.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	// MaxExamined bounds the records one Query reads (each a request on an
	// object store), matching or not: a narrow filter over a long history
	// answers a short or empty page with Next set, and the caller pages on.
	MaxExamined = 10 * MaxLimit
)

// Query selects records. Zero fields select everything.
type Query struct {
	// Since (inclusive) and Until (exclusive) bound the records' time.
	Since, Until time.Time
	// Orgs: records about any of these organisations.
	Orgs []string
	// Repository: an exact name, or a pattern where "*" is one name component
	// (or part of one) and "**" any number of them.
	Repository string
	Actor      string
	// Action: an exact action, or a prefix ending in ".*" ("token.*").
	Action string
	// After: only records after this ID (the Next of a previous page).
	After string
	// Limit: at most this many records (DefaultLimit when 0, at most MaxLimit).
	Limit int
}

// Page is a query's answer, in time order.
type Page struct {
	Records []Record `json:"records"`
	// Next, when not empty, is the ID to pass as After for the following page:
	// the last record returned when the page is full, or the last record
	// examined when the query stopped at MaxExamined, so a page short of
	// Limit, even an empty one, may have a next. Empty means the range is done.
	Next string `json:"next,omitempty"`
}

// ErrInvalidQuery is wrapped by the errors of a query that cannot be answered.
var ErrInvalidQuery = errors.New("invalid audit query")

// Validate checks q's fields.
func (q Query) Validate() error {
	if q.Limit < 0 || q.Limit > MaxLimit {
		return fmt.Errorf("%w: limit %d is not between 1 and %d", ErrInvalidQuery, q.Limit, MaxLimit)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return fmt.Errorf("%w: until (%s) is not after since (%s)", ErrInvalidQuery, q.Until.Format(time.RFC3339), q.Since.Format(time.RFC3339))
	}
	if q.After != "" {
		if _, err := IDTime(q.After); err != nil {
			return fmt.Errorf("%w: after: %v", ErrInvalidQuery, err)
		}
	}
	if q.Action != "" {
		if _, err := path.Match(q.Action, ""); err != nil {
			return fmt.Errorf("%w: action %q is not an action or a pattern such as token.*", ErrInvalidQuery, q.Action)
		}
	}
	return nil
}

// Matches reports whether rec passes q's filters (all but the time range,
// After and Limit).
func (q Query) Matches(rec Record) bool {
	if len(q.Orgs) > 0 && !contains(q.Orgs, rec.Org) {
		return false
	}
	if q.Repository != "" && rec.Repository != q.Repository && !reference.MatchPattern(q.Repository, rec.Repository) {
		return false
	}
	if q.Actor != "" && rec.Actor != q.Actor {
		return false
	}
	if q.Action != "" && rec.Action != q.Action {
		if ok, _ := path.Match(q.Action, rec.Action); !ok {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
