package tuf_test

import (
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/policy"
	"github.com/signet-oss/signet/trustnames"
)

// policyTarget is org's policy target holding doc, described as trustctl
// writes it: the length and sha256 of the set's encoding.
func policyTarget(t *testing.T, org, doc string) *metadata.TargetFiles {
	t.Helper()
	d, err := policy.ParseDocument([]byte(doc), org)
	if err != nil {
		t.Fatal(err)
	}
	enc := (&policy.Set{}).With(*d).Encode()
	sum := sha256.Sum256(enc)
	custom := json.RawMessage(enc)
	return &metadata.TargetFiles{Length: int64(len(enc)), Hashes: metadata.Hashes{"sha256": sum[:]}, Custom: &custom}
}

// A pull policy is the org's word: trustd takes it only in the org role, signed
// with the org's keys, about the org's repositories, and exactly as encoded.
func TestAPolicyIsPublishedOnlyInItsOrgsRoleSignedByItsKeys(t *testing.T) {
	a := newAttackEnv(t)
	org := trustnames.RoleForOrg("acme")
	app := trustnames.RoleForRepo("acme/app")
	doc := `{"repositories":"acme/*","require":[{"predicateType":"https://slsa.dev/provenance/v1","match":{"runDetails.builder.id":"https://builder.x/*"}}]}`
	good := policyTarget(t, "acme", doc)
	delegations := []delegation{repoDelegation("acme/app", 1, a.pub)}
	orgV2 := func(path string, tf *metadata.TargetFiles) *metadata.Metadata[metadata.TargetsType] {
		return role(2, delegations, targets(path, tf))
	}
	badHash := policyTarget(t, "acme", doc)
	badHash.Hashes["sha256"] = make([]byte, 32)
	malformed := policyTarget(t, "acme", doc)
	raw := json.RawMessage(`{"policies":[{"repositories":"acme/*","requires":[]}]}`)
	malformed.Custom = &raw
	for _, c := range []struct {
		name, role string
		body       []byte
		token      string
		msg        string
	}{
		{"in a repository's role, signed by a publisher", app,
			sign(t, role(2, nil, targets("acme/.policy", good)), a.pub), a.bob, "belong in its own role, org-acme"},
		{"in the org role, signed by a publisher's key", org,
			sign(t, orgV2("acme/.policy", good), a.pub), a.carol, "signed by none"},
		{"in the org role, signed by a key no one delegated", org,
			sign(t, orgV2("acme/.policy", good), a.stranger), a.carol, "signed by none"},
		{"about another org's repositories", org,
			sign(t, orgV2("acme/.policy", policyTarget(t, "acme-corp", `{"repositories":"acme-corp/*","require":[{"signers":2}]}`)), a.orgKey), a.carol, "does not start with"},
		{"under another org's name", org,
			sign(t, orgV2("acme-corp/.policy", policyTarget(t, "acme-corp", `{"repositories":"acme-corp/*","require":[{"signers":2}]}`)), a.orgKey), a.carol, "belong in its own role, org-acme-corp"},
		{"whose hash is not its encoding's", org,
			sign(t, orgV2("acme/.policy", badHash), a.orgKey), a.carol, "length and sha256"},
		{"that does not parse", org,
			sign(t, orgV2("acme/.policy", malformed), a.orgKey), a.carol, "unknown field"},
	} {
		t.Run("refused "+c.name, func(t *testing.T) {
			r := a.put(c.role, c.body, c.token)
			if r.status != 400 || !strings.Contains(string(r.body), c.msg) {
				t.Fatalf("got %d %s, want 400 saying %q", r.status, r.body, c.msg)
			}
		})
	}
	t.Run("accepted in the org role signed by the org key", func(t *testing.T) {
		a.mustPut(201, org, sign(t, orgV2("acme/.policy", good), a.orgKey), a.carol)
		var got struct {
			Signed struct {
				Targets map[string]struct{ Custom json.RawMessage }
			}
		}
		if err := json.Unmarshal(a.do("GET", "/tuf/2."+org+".json", a.carol, nil).body, &got); err != nil {
			t.Fatal(err)
		}
		set, err := policy.ParseSet(got.Signed.Targets["acme/.policy"].Custom, "acme")
		if err != nil || len(set.For("acme/app")) != 1 {
			t.Fatalf("the published policy reads %v, %v", set, err)
		}
	})
}
