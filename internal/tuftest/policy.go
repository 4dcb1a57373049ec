package tuftest

import (
	"crypto/sha256"
	"encoding/json"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/policy"
)

// AddPolicy sets the pull-policy target of org (policy.Target: "<org>/.policy")
// in role (not yet published) to the encoded policy set enc, described by its
// length and sha256 as trustctl writes it. The role is the org's own in the
// graph trustd accepts; tests put it elsewhere to see it ignored.
func (r *Repo) AddPolicy(role, org string, enc []byte) {
	r.t.Helper()
	sum := sha256.Sum256(enc)
	custom := json.RawMessage(enc)
	r.Delegated[role].Signed.Targets[policy.Target(org)] = &metadata.TargetFiles{
		Length: int64(len(enc)),
		Hashes: metadata.Hashes{"sha256": sum[:]},
		Custom: &custom,
	}
}
