package verify

import (
	"fmt"
	"slices"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/policy"
	"github.com/signet-oss/signet/trustnames"
)

// Pull policies in the trust graph (package policy): an org's documents are
// the target "<org>/.policy" of its own role, signed by its keys. They are
// read from there only: the same path in a repository's role (a publisher's
// key) or anywhere else is no policy, and a policy target that does not parse
// makes every repository of the org unservable rather than unguarded.

// CosignSignPredicateType is the predicate type of a cosign v3 signature
// bundle's statement: a signature of the image, not an attestation about it.
const CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"

// orgPolicy reads the policy set in org's role md, nil when there is none.
// chain is the delegation the role was reached by, which must cover the
// policy's path as it covers the org's repositories.
func orgPolicy(org string, md *metadata.Metadata[metadata.TargetsType], chain []metadata.DelegatedRole) (*policy.Set, error) {
	if md == nil {
		return nil, nil
	}
	path := policy.Target(org)
	tf, ok := md.Signed.Targets[path]
	if !ok {
		return nil, nil
	}
	if !delegatedOnChain(chain, path) {
		return nil, fmt.Errorf("%s's policy target %s lies outside the role's delegated paths", org, path)
	}
	if tf == nil || tf.Custom == nil {
		return nil, fmt.Errorf("%s's policy target %s carries no policies", org, path)
	}
	return policy.ParseSet(*tf.Custom, org)
}

// repoPolicy is what applies to repo of a set read by orgPolicy.
func repoPolicy(set *policy.Set, setErr error, repo string) ([]policy.Document, error) {
	if setErr != nil {
		return nil, fmt.Errorf("the pull policy of %s cannot be read, so nothing of it is served: %w", trustnames.OrgOfRepo(repo), setErr)
	}
	return set.For(repo), nil
}

// roleSigners returns the TUF key IDs of keys whose signatures over md
// verify: the publishers who signed a repository role's version sign each of
// its targets.
func roleSigners(md *metadata.Metadata[metadata.TargetsType], keys Keys) []string {
	if md == nil {
		return nil
	}
	msg, err := cjson.EncodeCanonical(md.Signed)
	if err != nil {
		return nil
	}
	var out []string
	for _, v := range keys.verifiers() {
		for _, s := range md.Signatures {
			if s.KeyID == v.id && v.verify(msg, s.Signature) {
				out = append(out, v.id)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// PolicyEvidence gathers what a pull policy is checked against: roleSigners
// (RepoTargets.Signers, State.RepoSigners) and the signed referrers attached
// to the image, each checked by CheckReferrer with the keys delegated for the
// repository now. A referrer that does not verify as a whole counts for
// nothing, as the registry does not serve it; of one that does, a signature
// without a predicate (cosign, notation) or a cosign v3 signature bundle is a
// signer of the image, any other an attestation.
func PolicyEvidence(roleSigners []string, refs []Referrer) policy.Evidence {
	ev := policy.Evidence{Signers: slices.Clone(roleSigners)}
	for _, r := range refs {
		if r.Verified() != nil {
			continue
		}
		for _, s := range r.Signatures {
			if s.PredicateType == "" || s.PredicateType == CosignSignPredicateType {
				ev.Signers = append(ev.Signers, s.KeyID)
				continue
			}
			ev.Attestations = append(ev.Attestations, policy.Attestation{KeyID: s.KeyID, PredicateType: s.PredicateType, Predicate: s.Predicate})
		}
	}
	return ev
}

// Policies returns the pull policies the trust graph this walk verified
// applies to repo (its org role's policy target): none when the org has
// none, an error when its target does not parse (then nothing of the org may
// be served). ok is false when the walk did not reach the org's role.
func (s *State) Policies(repo string) (docs []policy.Document, ok bool, err error) {
	set, ok, err := s.OrgPolicies(trustnames.OrgOfRepo(repo))
	if !ok {
		return nil, false, nil
	}
	docs, err = repoPolicy(set, err, repo)
	return docs, true, err
}

// OrgPolicies returns every pull policy of org's role in the trust graph this
// walk verified (nil when it has none), as Policies reads them; ok is false
// when the walk did not reach the org's role.
func (s *State) OrgPolicies(org string) (set *policy.Set, ok bool, err error) {
	role := trustnames.RoleForOrg(org)
	md := s.Roles[role]
	top := s.Roles[trustnames.RoleTargets]
	if md == nil || top == nil || top.Signed.Delegations == nil {
		return nil, false, nil
	}
	i := slices.IndexFunc(top.Signed.Delegations.Roles, func(d metadata.DelegatedRole) bool { return d.Name == role })
	if i < 0 {
		return nil, false, nil
	}
	set, err = orgPolicy(org, md, top.Signed.Delegations.Roles[i:i+1])
	return set, true, err
}

// RepoSigners returns the TUF key IDs of the delegated keys that signed the
// version of repo's role this walk verified (RepoTargets.Signers, as the
// client sees it).
func (s *State) RepoSigners(repo string) []string {
	keys, ok := s.RepoKeys(repo)
	if !ok {
		return nil
	}
	return roleSigners(s.Roles[trustnames.RoleForRepo(repo)], keys)
}
