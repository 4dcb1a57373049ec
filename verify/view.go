package verify

import (
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/policy"
	"github.com/signet-oss/signet/trustnames"
)

// RepoTargets is what the trust graph says of one repository.
type RepoTargets struct {
	// Tags maps a tag to its target (<repo>:<tag>).
	Tags map[string]*Target
	// Digests maps a digest to its target (<repo>@<digest>).
	Digests map[digest.Digest]*Target
	// Covered holds every manifest digest a current target or its closure
	// vouches for.
	Covered map[digest.Digest]bool
	// Keys are the publisher keys the repository's role is delegated to, and
	// Threshold how many must agree.
	Keys      Keys
	Threshold int
	// Policies are the pull policies of the org's role that apply to the
	// repository (package policy), none when it has none; PolicyErr says why
	// the org's policies cannot be read, and then nothing of the repository
	// may be served.
	Policies  []policy.Document
	PolicyErr error
	// Signers are the TUF key IDs of the keys whose signatures over the
	// repository role's current version verify, when a policy applies (a
	// policy may count an image's signers); nil otherwise.
	Signers []string

	// expires is when the earliest delegated role these targets come through
	// (org-<org>, repo-<hash>) expires: the view may outlive it.
	expires time.Time
}

// indexView is one immutable verified view.
type indexView struct {
	repos   map[string]*RepoTargets
	expires time.Time
	// snapshot is the snapshot version the view was built from.
	snapshot int64
	built    time.Time
}

// buildView indexes what one walk verified: the targets of the org roles and
// repository roles reached, in the order the walk reached them. now is the
// index's clock; a role expired by then adds nothing.
func buildView(g *graph, now time.Time) *indexView {
	v := &indexView{repos: map[string]*RepoTargets{}, snapshot: g.snapshot, expires: g.expires, built: now}
	type orgSet struct {
		set *policy.Set
		err error
	}
	policies := map[string]orgSet{}
	for _, r := range g.roles {
		md := r.md
		if md == nil {
			// Delegated, never signed: no targets, but its keys are known.
			md = metadata.Targets(v.expires)
		}
		v.addTargets(r.chain, md, r.keys, r.threshold, r.delegatorExpires, now)
		if len(r.chain) == 1 {
			// An org role: the walk reaches it before its repositories.
			if org, ok := trustnames.OrgOfRole(r.chain[0].Name); ok && !md.Signed.IsExpired(now) {
				set, err := orgPolicy(org, r.md, r.chain)
				policies[org] = orgSet{set, err}
			}
			continue
		}
		repo, ok := trustnames.RepoOfPaths(r.chain[1].Paths)
		if rt := v.repos[repo]; ok && rt != nil && len(policies[trustnames.OrgOfRepo(repo)].set.For(repo)) > 0 {
			rt.Signers = roleSigners(r.md, NewKeys(r.keys...))
		}
	}
	for repo, rt := range v.repos {
		ps := policies[trustnames.OrgOfRepo(repo)]
		rt.Policies, rt.PolicyErr = repoPolicy(ps.set, ps.err, repo)
	}
	return v
}

// addTargets indexes md's targets whose paths every delegation of chain allows.
// keys and threshold are the repository's publisher keys (for a repo role);
// delegatorExpires is when the delegating org role expires.
func (v *indexView) addTargets(chain []metadata.DelegatedRole, md *metadata.Metadata[metadata.TargetsType], keys []*metadata.Key, threshold int, delegatorExpires, now time.Time) {
	if md.Signed.IsExpired(now) {
		return
	}
	expires := earliest(md.Signed.Expires, delegatorExpires)
	for path, tf := range md.Signed.Targets {
		if !delegatedOnChain(chain, path) {
			continue
		}
		t, err := targetOf(path, tf)
		if err != nil {
			continue
		}
		repo, ref, isDigest, ok := trustnames.SplitTarget(path)
		if !ok {
			continue
		}
		rt := v.repo(repo, expires)
		rt.expires = earliest(rt.expires, expires)
		if keys != nil {
			rt.Keys, rt.Threshold = NewKeys(keys...), threshold
		}
		if isDigest {
			rt.Digests[t.Digest] = t
		} else {
			rt.Tags[ref] = t
		}
		rt.Covered[t.Digest] = true
		for _, c := range t.Closure {
			rt.Covered[c] = true
		}
	}
	// A repository delegated but without targets yet still has its keys known.
	if keys != nil && len(chain) == 2 {
		for _, p := range chain[1].Paths {
			if repo, ok := strings.CutSuffix(p, ":*"); ok && v.repos[repo] == nil {
				rt := v.repo(repo, expires)
				rt.Keys, rt.Threshold = NewKeys(keys...), threshold
			}
		}
	}
}

// repo returns the view's entry for repo, making an empty one that expires at
// expires when there is none.
func (v *indexView) repo(repo string, expires time.Time) *RepoTargets {
	rt := v.repos[repo]
	if rt == nil {
		rt = &RepoTargets{Tags: map[string]*Target{}, Digests: map[digest.Digest]*Target{}, Covered: map[digest.Digest]bool{}, expires: expires}
		v.repos[repo] = rt
	}
	return rt
}

// delegatedOnChain reports whether every delegation of chain allows path.
func delegatedOnChain(chain []metadata.DelegatedRole, path string) bool {
	for i := range chain {
		if ok, err := chain[i].IsDelegatedPath(path); err != nil || !ok {
			return false
		}
	}
	return true
}

func earliest(ts ...time.Time) time.Time {
	e := ts[0]
	for _, t := range ts[1:] {
		if t.Before(e) {
			e = t
		}
	}
	return e
}
