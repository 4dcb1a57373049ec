package signed

import (
	"context"

	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/verify"
)

// CheckPolicy runs what Verify does between the trust walk and the manifest:
// the listing of what is attached and the pull policies' verdict.
func CheckPolicy(ctx context.Context, c *Client, repo *oci.Repository, vc *verify.Client, st *verify.State) (*Verified, error) {
	v := &Verified{Target: st.Target, repo: repo, vc: vc, state: st}
	return v, c.checkPolicy(ctx, v)
}
