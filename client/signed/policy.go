package signed

import (
	"context"
	"fmt"
	"maps"

	"github.com/signet-oss/signet/policy"
	"github.com/signet-oss/signet/verify"
)

// Pull policies on the client: after the trust walk finds an image's target,
// and before its manifests or blobs are read, the policies the org's role
// states for the repository (verify.State.Policies, from the client's own
// verified walk) are evaluated against the image's signers and the
// signatures and attestations attached to it, each checked with the keys the
// same walk delegates for the repository (ListReferrers). The registry
// evaluates the same documents with the same policy.Evaluate and speaks the
// same words; a client never takes the registry's word for the verdict.

// PolicyVerdict is the verdict of the pull policies that apply to a verified
// image ("policy" in --output json).
type PolicyVerdict struct {
	// Met is false when an enforced policy is not met, or the org's policies
	// cannot be read (Error).
	Met       bool             `json:"met"`
	Documents []PolicyDocument `json:"documents"`
	// Warnings say what each warn-mode policy that is not met misses.
	Warnings []string `json:"warnings,omitempty"`
	// Error says why the verdict is not met: what the enforced policies
	// miss, or why they cannot be read or checked.
	Error string `json:"error,omitempty"`
}

// PolicyDocument is one applicable policy's verdict.
type PolicyDocument struct {
	Repositories string              `json:"repositories"`
	Mode         policy.Mode         `json:"mode"`
	Met          bool                `json:"met"`
	Requirements []PolicyRequirement `json:"requirements"`
}

// PolicyRequirement is one requirement's verdict: Found is how many distinct
// delegated keys count towards it, Detail what was found instead when it is
// not met.
type PolicyRequirement struct {
	// Requirement is the requirement in the words the messages use.
	Requirement   string            `json:"requirement"`
	PredicateType string            `json:"predicateType,omitempty"`
	Match         map[string]string `json:"match,omitempty"`
	Signers       int               `json:"signers"`
	Met           bool              `json:"met"`
	Found         int               `json:"found"`
	Detail        string            `json:"detail,omitempty"`
}

// EvaluatePolicy evaluates docs (those that apply to an image's repository)
// against ev. Its error, with CodePolicy, is the policy package's words for
// what the enforced documents miss; nil when they are met (a warn-mode
// document not met only adds a warning).
func EvaluatePolicy(docs []policy.Document, ev policy.Evidence) (*PolicyVerdict, error) {
	res := policy.Evaluate(docs, ev)
	v := &PolicyVerdict{Met: res.Met(), Documents: []PolicyDocument{}, Warnings: res.Warnings()}
	for _, d := range res.Documents {
		pd := PolicyDocument{Repositories: d.Repositories, Mode: d.Mode, Met: d.Met(), Requirements: []PolicyRequirement{}}
		for _, q := range d.Requirements {
			pd.Requirements = append(pd.Requirements, PolicyRequirement{
				Requirement: q.Requirement.String(), PredicateType: q.Requirement.PredicateType, Match: maps.Clone(q.Requirement.Match),
				Signers: max(q.Requirement.Signers, 1), Met: q.Met, Found: q.Found, Detail: q.Detail,
			})
		}
		v.Documents = append(v.Documents, pd)
	}
	if err := res.Err(); err != nil {
		v.Error = err.Error()
		return v, &Error{Code: CodePolicy, Err: err}
	}
	return v, nil
}

// Evidence gathers what a pull policy is checked against from the image's
// role signers and its attached artifacts as ListReferrers checked them: an
// artifact counts only if it verifies as a whole with the delegated keys
// (verify.PolicyEvidence), as the registry serves only such.
func Evidence(roleSigners []string, attached []Attached) policy.Evidence {
	var refs []verify.Referrer
	for _, a := range attached {
		if a.checked != nil {
			refs = append(refs, *a.checked)
		}
	}
	return verify.PolicyEvidence(roleSigners, refs)
}

// checkPolicy lists the signatures and attestations attached to v (kept in
// v.Referrers) and evaluates the pull policies that apply to its repository,
// as v's walk read them. Its error has CodePolicy, unless the listing failed
// for want of a registry that answers.
func (c *Client) checkPolicy(ctx context.Context, v *Verified) error {
	repo := v.repo.Name
	v.Referrers, v.ReferrersErr = c.Referrers(ctx, v)
	docs, ok, err := v.state.Policies(repo)
	if !ok && err == nil {
		return nil // not reached: a walk that found the target passed the org's role
	}
	if err != nil {
		v.Policy = &PolicyVerdict{Documents: []PolicyDocument{}, Error: err.Error()}
		return &Error{Code: CodePolicy, Err: err}
	}
	if len(docs) == 0 {
		return nil
	}
	if v.ReferrersErr != nil {
		err := fmt.Errorf("the pull policy for %s cannot be checked: %w", repo, v.ReferrersErr)
		v.Policy = &PolicyVerdict{Documents: []PolicyDocument{}, Error: err.Error()}
		if Code(v.ReferrersErr) == CodeUnreachable {
			return unreachable(err)
		}
		return &Error{Code: CodePolicy, Err: err}
	}
	v.Policy, err = EvaluatePolicy(docs, Evidence(v.state.RepoSigners(repo), v.Referrers))
	return err
}
