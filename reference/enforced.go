package reference

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Names the trust graph can delegate (DESIGN.md §2). The top-level targets role
// delegates an organisation's namespace to the role "org-<org>" with one path
// pattern per repository depth (go-tuf's "*" never crosses "/"), and an org role
// delegates repositories inside that namespace; trustd refuses every other
// delegation. So in an enforced namespace a repository can only ever be signed if
// its first component is an organisation name and it has MinRepoDepth to
// MaxRepoDepth components. trustd's validation of delegations, the delegation
// patterns the signer writes and the registry's refusal of names no delegation can
// reach all read the grammar and the bounds from here, so they cannot drift apart.

// ErrOrgNameInvalid is wrapped by the errors of ValidateOrgName.
var ErrOrgNameInvalid = errors.New("invalid organisation name")

const (
	// MaxOrgNameLength is the longest organisation name (trustd's account names
	// have the same bound: an organisation is named like an account).
	MaxOrgNameLength = 64
	// MinRepoDepth and MaxRepoDepth bound the components of a repository name in
	// an enforced namespace: "<org>/<name>" up to "<org>/<a>/<b>/<name>".
	MinRepoDepth = 2
	MaxRepoDepth = 4
)

// orgNameRegexp: one lower-case path component, words of letters and digits
// joined by a single '.', '_' or '-' (narrower than a name component, which also
// allows "__" and runs of '-').
var orgNameRegexp = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// orgNameRule says what ValidateOrgName accepts, for error messages.
var orgNameRule = fmt.Sprintf("lower-case letters and digits joined by single '.', '_' or '-', at most %d characters", MaxOrgNameLength)

// ValidateOrgName returns an ErrOrgNameInvalid error unless org is an
// organisation name.
func ValidateOrgName(org string) error {
	if len(org) == 0 || len(org) > MaxOrgNameLength || !orgNameRegexp.MatchString(org) {
		return orgNameError(org)
	}
	return nil
}

// orgNameError says why a name is not an organisation name; it is
// ErrOrgNameInvalid.
type orgNameError string

func (e orgNameError) Error() string {
	return fmt.Sprintf("%q is not an organisation name: %s", string(e), orgNameRule)
}

func (orgNameError) Is(target error) bool { return target == ErrOrgNameInvalid }

// OrgPathPatterns are the TUF path patterns of the delegation of org's
// namespace: one per depth allowed, "<org>/*" up to "<org>/*/*/*". A pattern
// matches only paths of as many segments, so "acme/*" never matches
// "acme-corp/app".
func OrgPathPatterns(org string) []string {
	out := make([]string, 0, MaxRepoDepth-MinRepoDepth+1)
	for depth := MinRepoDepth; depth <= MaxRepoDepth; depth++ {
		out = append(out, org+strings.Repeat("/*", depth-1))
	}
	return out
}

// ValidateEnforcedName returns an ErrNameInvalid error that says why, unless name
// is a repository name that a delegation of the trust graph could ever cover: a
// valid name of MinRepoDepth to MaxRepoDepth components whose first component is
// an organisation name. A name that passes may still not be delegated yet.
func ValidateEnforcedName(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	n := strings.Count(name, "/") + 1
	switch {
	case n > MaxRepoDepth:
		return fmt.Errorf("%w: %s has %d components; enforced repositories have at most %d", ErrNameInvalid, name, n, MaxRepoDepth)
	case n < MinRepoDepth:
		return fmt.Errorf("%w: %s has %d component; enforced repositories have at least %d (<org>/<name>)", ErrNameInvalid, name, n, MinRepoDepth)
	}
	org, _, _ := strings.Cut(name, "/")
	if ValidateOrgName(org) != nil {
		return fmt.Errorf("%w: %s: its first component %q can never be an organisation's name (%s)", ErrNameInvalid, name, org, orgNameRule)
	}
	return nil
}
