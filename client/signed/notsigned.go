package signed

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

// resolveDigest finds the signed tags of ref's repository that name ref's
// digest, when the trust graph has no <repo>@<digest> target for it: a digest
// copied from `:v1` is as signed as `:v1` is. The tags are read from the
// repository's role as st verified it, then the first is walked to on its
// own, so that the target returned is one go-tuf resolved for a tag path,
// exactly as verifying the tag would. It returns the tag's state and every
// signed tag naming the digest, or st and none.
func resolveDigest(ctx context.Context, vc *verify.Client, st *verify.State, ref trust.Ref) (*verify.State, []string, error) {
	role := trustnames.RoleForRepo(ref.Repo)
	for _, tag := range tagsNaming(st.Roles[role], ref.Repo, ref.Digest) {
		tst, err := vc.Walk(ctx, trustnames.TargetPath(ref.Repo, tag))
		if err != nil {
			return nil, nil, err
		}
		if tst.Target != nil && tst.Target.Digest == ref.Digest {
			return tst, tagsNaming(tst.Roles[role], ref.Repo, ref.Digest), nil
		}
	}
	return st, nil, nil
}

// tagsNaming returns the tags of repo's targets in md whose hash is d
// (sorted); all of repo's tags when d is "".
func tagsNaming(md *metadata.Metadata[metadata.TargetsType], repo string, d digest.Digest) []string {
	if md == nil {
		return nil
	}
	var tags []string
	for path, tf := range md.Signed.Targets {
		r, tag, isDigest, ok := trustnames.SplitTarget(path)
		if !ok || isDigest || r != repo {
			continue
		}
		if d != "" && hex.EncodeToString(tf.Hashes[d.Algorithm().String()]) != d.Encoded() {
			continue
		}
		tags = append(tags, tag)
	}
	slices.Sort(tags)
	return tags
}

// explainNotSigned says why the trust graph does not vouch for ref in the
// terms a user acts on, from what st verified: the org does not exist, the
// repository is not delegated (never, or no longer), or the tag or digest is
// not among the repository's signed ones (a typo, more often than an attack),
// listing those it has. It keeps the graph's own reason when the repository's
// role could not be read (never published, or not signed by the keys
// delegated now: a revoked key).
func explainNotSigned(st *verify.State, host string, ref trust.Ref) error {
	org := trustnames.OrgOfRepo(ref.Repo)
	if orgs := st.Roles[metadata.TARGETS]; orgs != nil && (orgs.Signed.Delegations == nil || !slices.ContainsFunc(orgs.Signed.Delegations.Roles, func(d metadata.DelegatedRole) bool {
		return d.Name == trustnames.RoleForOrg(org)
	})) {
		return notSigned(fmt.Errorf("organisation %s does not exist on %s: nothing of %s is signed", org, host, ref.Repo))
	}
	if _, ok := st.RepoKeys(ref.Repo); !ok && st.Roles[trustnames.RoleForOrg(org)] != nil {
		return notSigned(fmt.Errorf("%s is not delegated to any publisher key (never, or no longer): nothing signed for it is trusted; an owner of %s runs `trustctl org delegate %s --key KEY`", ref.Repo, org, ref.Repo))
	}
	md := st.Roles[trustnames.RoleForRepo(ref.Repo)]
	if md == nil {
		return st.NotSigned
	}
	signedTags := "it has no signed tags"
	if tags := tagsNaming(md, ref.Repo, ""); len(tags) > 0 {
		if len(tags) > 10 {
			tags = append(tags[:10], fmt.Sprintf("and %d more", len(tags)-10))
		}
		signedTags = "its signed tags: " + strings.Join(tags, ", ")
	}
	if ref.Tag != "" {
		return notSigned(fmt.Errorf("%s has no tag %s in the trust graph (check its spelling); %s", ref.Repo, ref.Tag, signedTags))
	}
	return notSigned(fmt.Errorf("no signed tag or digest of %s is %s; %s", ref.Repo, ref.Digest, signedTags))
}

func notSigned(err error) error { return &Error{Code: CodeNotSigned, Err: err} }
