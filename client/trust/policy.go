package trust

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/policy"
	"github.com/signet-oss/signet/reference"
	"github.com/signet-oss/signet/trustnames"
)

// Pull policies (package policy) are the target "<org>/.policy" of the org's
// role: setting or removing one is an edit of that role like a delegation,
// built on the version trustd holds and signed with the org's key. What is in
// force is read back from the verified trust graph only.

// PolicyResult says what policy set or unset changed.
type PolicyResult struct {
	Org string `json:"org"`
	// Repositories is the document's pattern.
	Repositories string `json:"repositories"`
	// Changed is false when the org role already said the same.
	Changed bool     `json:"changed"`
	Outcome *Outcome `json:"published,omitempty"`
}

// SetPolicy checks the document data (JSON, as policy.ParseDocument reads it)
// and publishes the next version of its org's role with it in the org's
// policies, replacing the one with the same pattern.
func (s *Session) SetPolicy(ctx context.Context, data []byte) (*PolicyResult, error) {
	doc, err := policy.ParseDocument(data, "")
	if err != nil {
		return nil, fmt.Errorf("%w (README: Pull policies)", err)
	}
	org := trustnames.OrgOfRepo(doc.Repositories)
	res := &PolicyResult{Org: org, Repositories: doc.Repositories}
	return res, s.editPolicies(ctx, org, res, func(set *policy.Set) (*policy.Set, error) {
		return set.With(*doc), nil
	})
}

// UnsetPolicy publishes the next version of the org's role without the
// policy whose pattern is pattern.
func (s *Session) UnsetPolicy(ctx context.Context, pattern string) (*PolicyResult, error) {
	org, _, _ := strings.Cut(pattern, "/")
	if err := reference.ValidateOrgName(org); err != nil {
		return nil, fmt.Errorf("%q: a policy's pattern starts with its organisation's name (acme/app, acme/*, acme/**): %w", pattern, err)
	}
	res := &PolicyResult{Org: org, Repositories: pattern}
	return res, s.editPolicies(ctx, org, res, func(set *policy.Set) (*policy.Set, error) {
		out, found := set.Without(pattern)
		if !found {
			return nil, fmt.Errorf("%s has no policy for %q: `trustctl policy show %s` lists its policies by their patterns", org, pattern, org)
		}
		return out, nil
	})
}

// editPolicies publishes org's role with its policy set replaced by what edit
// makes of the current one (read from the version the change is built on).
func (s *Session) editPolicies(ctx context.Context, org string, res *PolicyResult, edit func(*policy.Set) (*policy.Set, error)) error {
	o, err := s.editOrg(ctx, org, policy.Target(org), func(md *metadata.Metadata[metadata.TargetsType]) (bool, error) {
		cur, err := policySet(md, org)
		if err != nil {
			return false, fmt.Errorf("%w: set a valid policy to replace it", err)
		}
		next, err := edit(cur)
		if err != nil {
			return false, err
		}
		if err := next.Validate(org); err != nil {
			return false, err
		}
		if cur != nil && string(cur.Encode()) == string(next.Encode()) {
			return false, nil
		}
		setPolicyTarget(md, org, next)
		return true, nil
	})
	if err != nil || o == nil {
		return err
	}
	res.Changed, res.Outcome = true, o
	return nil
}

// policySet reads org's policies from a version of its role (nil for none).
func policySet(md *metadata.Metadata[metadata.TargetsType], org string) (*policy.Set, error) {
	tf, ok := md.Signed.Targets[policy.Target(org)]
	if !ok {
		return nil, nil
	}
	if tf == nil || tf.Custom == nil {
		return nil, fmt.Errorf("%s's policy target %s carries no policies", org, policy.Target(org))
	}
	return policy.ParseSet(*tf.Custom, org)
}

// setPolicyTarget makes set org's policy target in md, as trustd accepts it:
// custom is the set's one encoding, whose length and SHA-256 the target
// carries. An empty set removes the target.
func setPolicyTarget(md *metadata.Metadata[metadata.TargetsType], org string, set *policy.Set) {
	path := policy.Target(org)
	if len(set.Policies) == 0 {
		delete(md.Signed.Targets, path)
		return
	}
	enc := set.Encode()
	sum := sha256.Sum256(enc)
	custom := json.RawMessage(enc)
	if md.Signed.Targets == nil {
		md.Signed.Targets = map[string]*metadata.TargetFiles{}
	}
	md.Signed.Targets[path] = &metadata.TargetFiles{
		Path: path, Length: int64(len(enc)), Hashes: metadata.Hashes{"sha256": sum[:]}, Custom: &custom,
	}
}

// PolicyView is what policy show prints: the policies in force, as the
// verified trust graph says.
type PolicyView struct {
	// Org is the organisation; Repository the repository asked about ("" when
	// the org's policies were asked for).
	Org        string `json:"org"`
	Repository string `json:"repository,omitempty"`
	// Policies are the documents in force (for Repository, those that apply
	// to it), in the set's order.
	Policies []policy.Document `json:"policies"`
}

// Policies returns the policies in force for repoOrOrg ("acme/app", or
// "acme" for all of acme's), read from the trust graph this session verifies
// with its pinned root: never from trustd's word alone.
func (s *Session) Policies(ctx context.Context, repoOrOrg string) (*PolicyView, error) {
	org, repo := repoOrOrg, ""
	if strings.Contains(repoOrOrg, "/") {
		var err error
		if org, err = splitRepo(repoOrOrg); err != nil {
			return nil, err
		}
		repo = repoOrOrg
	} else if err := reference.ValidateOrgName(org); err != nil {
		return nil, err
	}
	st, err := s.state(ctx, policy.Target(org))
	if err != nil {
		return nil, err
	}
	view := &PolicyView{Org: org, Repository: repo, Policies: []policy.Document{}}
	set, ok, err := st.OrgPolicies(org)
	if !ok {
		return nil, fmt.Errorf("the trust graph delegates nothing to organisation %s: run `trustctl org create %s`", org, org)
	}
	if err != nil {
		return nil, fmt.Errorf("the pull policy of %s cannot be read, so nothing of it is served: %w", org, err)
	}
	if repo != "" {
		view.Policies = append(view.Policies, set.For(repo)...)
	} else if set != nil {
		view.Policies = append(view.Policies, set.Policies...)
	}
	return view, nil
}
