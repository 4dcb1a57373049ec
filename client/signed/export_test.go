package signed

import (
	"context"

	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/verify"
)

// CheckPolicy runs what Verify does between the trust walk and the manifest:
// the listing of what is attached and the pull policies' verdict.
func CheckPolicy(ctx context.Context, c *Client, repo *oci.Repository, vc *verify.Client, st *verify.State) (*Verified, error) {
	v := &Verified{Target: st.Target, repo: repo, vc: vc, state: st}
	return v, c.checkPolicy(ctx, v)
}

// ResolveOrExplain is what Verify does when the walk to ref finds no target:
// a digest is resolved through the signed tags naming it, and what is still
// not signed is explained.
func ResolveOrExplain(ctx context.Context, vc *verify.Client, host string, ref trust.Ref) (*verify.State, []string, error) {
	st, err := vc.Walk(ctx, ref.TargetPath())
	if err != nil {
		return nil, nil, err
	}
	var tags []string
	if st.Target == nil && ref.Digest != "" {
		if st, tags, err = resolveDigest(ctx, vc, st, ref); err != nil {
			return nil, nil, err
		}
	}
	if st.Target == nil {
		return st, nil, explainNotSigned(st, host, ref)
	}
	return st, tags, nil
}
