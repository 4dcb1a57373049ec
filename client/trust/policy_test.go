package trust

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/policy"
)

// TestPolicyTargetIsTheSetsOneEncoding: the target policy set writes carries
// the set's encoding in custom, with its length and SHA-256 (what trustd
// checks), reads back as the same set, keeps the role's other targets, and an
// empty set removes it.
func TestPolicyTargetIsTheSetsOneEncoding(t *testing.T) {
	md := metadata.Targets(time.Now().Add(time.Hour))
	md.Signed.Targets["acme/app:v1"] = &metadata.TargetFiles{Length: 1, Hashes: metadata.Hashes{"sha256": make([]byte, 32)}}
	if set, err := policySet(md, "acme"); err != nil || set != nil {
		t.Fatalf("a role without a policy target: %v, %v", set, err)
	}
	d, err := policy.ParseDocument([]byte(`{"repositories":"acme/*","require":[{"predicateType":"https://slsa.dev/provenance/v1","match":{"runDetails.builder.id":"x*"}}]}`), "acme")
	if err != nil {
		t.Fatal(err)
	}
	set := (&policy.Set{}).With(*d)
	setPolicyTarget(md, "acme", set)
	tf := md.Signed.Targets["acme/.policy"]
	enc := set.Encode()
	sum := sha256.Sum256(enc)
	if tf == nil || tf.Custom == nil || !bytes.Equal(*tf.Custom, enc) || tf.Length != int64(len(enc)) || !bytes.Equal(tf.Hashes["sha256"], sum[:]) {
		t.Fatalf("policy target %+v, want the set's encoding with its length and sha256", tf)
	}
	back, err := policySet(md, "acme")
	if err != nil || !bytes.Equal(back.Encode(), enc) {
		t.Fatalf("read back: %v, %v", back, err)
	}
	empty, found := back.Without("acme/*")
	if !found {
		t.Fatal("Without found no acme/*")
	}
	setPolicyTarget(md, "acme", empty)
	if _, ok := md.Signed.Targets["acme/.policy"]; ok {
		t.Error("an empty set left a policy target")
	}
	if md.Signed.Targets["acme/app:v1"] == nil {
		t.Error("the role's other target is gone")
	}
	md.Signed.Targets["acme/.policy"] = &metadata.TargetFiles{}
	if _, err := policySet(md, "acme"); err == nil {
		t.Error("a policy target without custom read as no policy")
	}
}
