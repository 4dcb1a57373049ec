package signed_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/client/signed"
	"github.com/signet-oss/signet/internal/tuftest"
	"github.com/signet-oss/signet/policy"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

// publisher is a key both a TUF role and a DSSE envelope are signed with.
type publisher struct {
	tuf  *tuftest.Key
	priv crypto.Signer
}

func newPublisher(t *testing.T) publisher {
	t.Helper()
	k := tuftest.NewKey(t)
	return publisher{tuf: k, priv: k.Private}
}

// attestation is one layer of a cosign attestation artifact: a statement of
// predicateType about the image, with predicate, signed by key.
type attestation struct {
	key       publisher
	predicate string
}

const slsa = "https://slsa.dev/provenance/v1"

// attest pushes, under the image's .att tag, the artifact `cosign attest`
// writes with these attestations (SLSA provenance), as its layers.
func (p pusher) attest(name string, subject digest.Digest, atts ...attestation) {
	p.t.Helper()
	var layers []json.RawMessage
	for _, a := range atts {
		st, _ := json.Marshal(map[string]any{
			"_type": "https://in-toto.io/Statement/v1", "predicateType": slsa,
			"subject":   []any{map[string]any{"name": name, "digest": map[string]string{"sha256": subject.Encoded()}}},
			"predicate": json.RawMessage(a.predicate),
		})
		env, err := signer.SignDSSE(a.key.priv, verify.InTotoPayloadType, st)
		if err != nil {
			p.t.Fatal(err)
		}
		d := p.blob(env)
		l, _ := json.Marshal(map[string]any{"mediaType": verify.DSSEEnvelopeMediaType, "size": d.Size, "digest": d.Digest,
			"annotations": map[string]string{signer.CosignSignatureAnnotation: "", verify.PredicateTypeAnnotation: slsa}})
		layers = append(layers, l)
	}
	config, err := signer.CosignConfig(layers)
	if err != nil {
		p.t.Fatal(err)
	}
	c := p.blob(config)
	p.manifest(strings.TrimSuffix(signer.CosignSignatureTag(subject), ".sig")+".att", ocispec.MediaTypeImageManifest, map[string]any{
		"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest,
		"config": map[string]any{"mediaType": ocispec.MediaTypeImageConfig, "size": c.Size, "digest": c.Digest},
		"layers": layers,
	})
}

// setPolicies makes custom the org role's policy target, as trustctl policy
// set writes it, and publishes the role.
func setPolicies(t *testing.T, r *tuftest.Repo, custom []byte) {
	t.Helper()
	sum := sha256.Sum256(custom)
	raw := json.RawMessage(custom)
	r.Delegated["org-acme"].Signed.Targets[policy.Target("acme")] = &metadata.TargetFiles{
		Length: int64(len(custom)), Hashes: metadata.Hashes{"sha256": sum[:]}, Custom: &raw,
	}
	r.Publish("org-acme")
}

func builder(id string) string {
	return `{"buildDefinition":{"buildType":"https://example.com/build/v1"},"runDetails":{"builder":{"id":"` + id + `"}}}`
}

// TestCheckPolicyEvaluatesTheOrgPolicyOfTheClientsOwnWalk: the policy the
// org role states for acme/app is evaluated against the attestations attached
// to the image that verify with the keys the same walk delegates, and the
// role's signers: a missing, mismatched or undelegated attestation leaves an
// enforced policy unmet (CodePolicy, in the policy package's words), a
// matching one meets it, a warn-mode policy only warns, and a policy target
// that does not parse fails closed.
func TestCheckPolicyEvaluatesTheOrgPolicyOfTheClientsOwnWalk(t *testing.T) {
	ctx := context.Background()
	alice, bob, mallory := newPublisher(t), newPublisher(t), newPublisher(t)
	r := tuftest.NewRepo(t)
	r.Keys["alice"], r.Keys["bob"] = alice.tuf, bob.tuf
	r.Delegate("targets", "org-acme", trustnames.OrgPaths("acme"), "org")
	r.Delegate("org-acme", trustnames.RoleForRepo("acme/app"), trustnames.RepoPaths("acme/app"), "alice", "bob")
	r.Signers[trustnames.RoleForRepo("acme/app")] = []string{"alice"}

	host := startRegistry(t)
	repo, err := oci.NewRepository(ctx, host, "acme/app", oci.Options{Push: true})
	if err != nil {
		t.Fatal(err)
	}
	p := pusher{t: t, ctx: ctx, repo: repo}
	img := p.image("app")
	raw, _, err := repo.GetManifest(ctx, img.Digest.String(), oci.MaxManifest)
	if err != nil {
		t.Fatal(err)
	}
	r.AddTarget(trustnames.RoleForRepo("acme/app"), "acme/app:v1", raw, ocispec.MediaTypeImageManifest)
	r.Publish("targets", "org-acme", trustnames.RoleForRepo("acme/app"))

	vc, err := verify.New(verify.Config{TrustdURL: r.Srv.URL, Root: r.RootBytes(), CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c := &signed.Client{Home: t.TempDir(), Host: host}
	check := func(t *testing.T) (*signed.Verified, error) {
		t.Helper()
		st, err := vc.Walk(ctx, "acme/app:v1")
		if err != nil || st.Target == nil {
			t.Fatalf("walk: %v, %v", err, st.NotSigned)
		}
		return signed.CheckPolicy(ctx, c, repo, vc, st)
	}
	mustBeUnmet := func(t *testing.T, want ...string) *signed.Verified {
		t.Helper()
		v, err := check(t)
		if signed.Code(err) != signed.CodePolicy {
			t.Fatalf("code %d (%v), want %d", signed.Code(err), err, signed.CodePolicy)
		}
		if v.Policy == nil || v.Policy.Met || v.Policy.Error != err.Error() {
			t.Fatalf("verdict %+v, want unmet saying %q", v.Policy, err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q does not say %q", err, w)
			}
		}
		return v
	}
	name := host + "/acme/app"
	const builderX = "https://ci.example.com/builder-x"
	slsaFromX := `{"repositories":"acme/app","require":[{"predicateType":"` + slsa + `","match":{"runDetails.builder.id":"https://ci.example.com/builder-x*"}}]}`
	setOne := func(t *testing.T, doc string) {
		t.Helper()
		d, err := policy.ParseDocument([]byte(doc), "acme")
		if err != nil {
			t.Fatal(err)
		}
		setPolicies(t, r, (&policy.Set{}).With(*d).Encode())
	}

	t.Run("no policy: nothing is required, and the listing is kept", func(t *testing.T) {
		p.attest(name, img.Digest, attestation{alice, builder("https://ci.example.com/builder-y")})
		v, err := check(t)
		if err != nil || v.Policy != nil {
			t.Fatalf("%v, %+v: want no verdict", err, v.Policy)
		}
		if len(v.Referrers) != 1 || !v.Referrers[0].Verified {
			t.Errorf("referrers %+v, want alice's attestation, verified", v.Referrers)
		}
	})
	t.Run("an attestation of another builder does not meet it", func(t *testing.T) {
		setOne(t, slsaFromX)
		v := mustBeUnmet(t, "the pull policy for acme/app requires an attestation of type "+slsa+` where runDetails.builder.id is "https://ci.example.com/builder-x*": 1 attached do not match (runDetails.builder.id is "https://ci.example.com/builder-y")`)
		q := v.Policy.Documents[0].Requirements[0]
		if q.Met || q.Found != 0 || q.PredicateType != slsa || q.Signers != 1 || v.Policy.Documents[0].Mode != policy.Enforce {
			t.Errorf("requirement %+v", q)
		}
	})
	t.Run("alice's attestation from builder X meets it", func(t *testing.T) {
		p.attest(name, img.Digest, attestation{alice, builder("https://ci.example.com/builder-y")}, attestation{alice, builder(builderX + "/run/7")})
		v, err := check(t)
		if err != nil || v.Policy == nil || !v.Policy.Met {
			t.Fatalf("%v, %+v: want met", err, v.Policy)
		}
		if q := v.Policy.Documents[0].Requirements[0]; !q.Met || q.Found != 1 || q.Detail != "" {
			t.Errorf("requirement %+v, want met by one key", q)
		}
	})
	t.Run("an undelegated key's attestation from builder X counts for nothing", func(t *testing.T) {
		p.attest(name, img.Digest, attestation{mallory, builder(builderX)})
		mustBeUnmet(t, "none is attached")
	})
	t.Run("two distinct signers are asked for, and only alice signed the role", func(t *testing.T) {
		setOne(t, `{"repositories":"acme/*","require":[{"signers":2}]}`)
		mustBeUnmet(t, "the pull policy for acme/* requires 2 distinct delegated signers of the image: 1 signed it")
	})
	t.Run("in warn mode, not met is a warning", func(t *testing.T) {
		setOne(t, `{"repositories":"acme/**","mode":"warn","require":[{"predicateType":"`+slsa+`"}]}`)
		v, err := check(t)
		if err != nil || v.Policy == nil || !v.Policy.Met {
			t.Fatalf("%v, %+v: want met, with a warning", err, v.Policy)
		}
		if len(v.Policy.Warnings) != 1 || !strings.Contains(v.Policy.Warnings[0], "the pull policy for acme/** requires an attestation of type "+slsa) {
			t.Errorf("warnings %q", v.Policy.Warnings)
		}
	})
	t.Run("a policy target that does not parse fails closed", func(t *testing.T) {
		setPolicies(t, r, []byte(`{"policies":[{"repositories":"acme/app","require":[{"predicateTyp":"x"}]}]}`))
		mustBeUnmet(t, "the pull policy of acme cannot be read")
	})
}
