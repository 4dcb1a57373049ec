package registry

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/policy"
	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/trustnames"
)

const slsaProvenance = "https://slsa.dev/provenance/v1"

// builtBy is an SLSA provenance predicate naming builder.
func builtBy(builder string) map[string]any {
	return map[string]any{"runDetails": map[string]any{"builder": map[string]any{"id": builder}}}
}

// provenancePolicy requires, of acme/*, SLSA provenance from builder.x.
func provenancePolicy(mode policy.Mode) *policy.Set {
	return &policy.Set{Policies: []policy.Document{{
		Repositories: "acme/*", Mode: mode,
		Require: []policy.Requirement{{PredicateType: slsaProvenance, Match: map[string]string{"runDetails.builder.id": "https://builder.x/*"}}},
	}}}
}

// refresh moves the index's clock past its pause and refreshes it.
func (g *gated) refresh(t *testing.T) {
	t.Helper()
	g.clock.Advance(1100 * time.Millisecond)
	if err := g.index.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// policyTarget puts custom in role as the policy target of org, as trustd
// stores a policy set (its length and hash are custom's).
func (g *gated) policyTarget(t *testing.T, role, org string, custom []byte) {
	t.Helper()
	tf, err := metadata.TargetFile().FromBytes(policy.Target(org), custom, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	raw := json.RawMessage(custom)
	tf.Custom = &raw
	g.tuf.Delegated[role].Signed.Targets[policy.Target(org)] = tf
}

// setPolicy publishes set as acme's policies in its org role, and refreshes.
func (g *gated) setPolicy(t *testing.T, set *policy.Set) {
	t.Helper()
	g.policyTarget(t, "org-acme", "acme", set.Encode())
	g.tuf.Publish("org-acme")
	g.refresh(t)
}

func (n *notary) attestTag() string { return strings.TrimSuffix(n.sigTag(), ".sig") + ".att" }

// wantDenied checks a 403 DENIED whose message says each of says.
func wantDenied(t *testing.T, what string, r response, says ...string) {
	t.Helper()
	if r.status != 403 || errorCode(t, r) != "DENIED" {
		t.Fatalf("%s: %d %s, want 403 DENIED", what, r.status, r.body)
	}
	for _, s := range says {
		if !strings.Contains(string(r.body), s) {
			t.Fatalf("%s: %s, want it to say %q", what, r.body, s)
		}
	}
}

func get(t *testing.T, g *gated, ref string) response {
	t.Helper()
	return do(t, g.srv, "GET", "/v2/acme/app/manifests/"+ref, nil, nil)
}

// TestAnImageIsServedOnlyOnceItsPullPolicyIsMet: with acme's policy
// requiring SLSA provenance from builder.x, acme/app:v1 is refused by tag,
// by digest and by HEAD, naming what is missing, while its blobs and its
// attestation tag are served; an attestation from another builder does not
// meet it; one from builder.x does, at once; once its signer is
// undelegated, the image is refused again.
func TestAnImageIsServedOnlyOnceItsPullPolicyIsMet(t *testing.T) {
	t.Parallel()
	n := newNotary(t)
	n.setPolicy(t, provenancePolicy(policy.Enforce))
	d := n.img.Digest.String()
	missing := `the pull policy for acme/* requires an attestation of type ` + slsaProvenance + ` where runDetails.builder.id is \"https://builder.x/*\": none is attached`
	wantDenied(t, "GET of the tag without provenance", get(t, n.gated, "v1"), "acme/app:v1 ("+d+") is signed, but", missing)
	wantDenied(t, "GET by digest without provenance", get(t, n.gated, d), "acme/app@"+d+" ("+d+") is signed, but", missing)
	if r := do(t, n.srv, "HEAD", "/v2/acme/app/manifests/v1", nil, nil); r.status != 403 {
		t.Errorf("HEAD of the tag without provenance: %d, want 403", r.status)
	}
	if len(n.events.of(EventPolicyDenied)) != 2 || len(n.events.of(EventPull)) != 1 { // the fixture's pull
		t.Errorf("events: %d policy-denied (want 2: HEAD reports none), %d pulls", len(n.events.of(EventPolicyDenied)), len(n.events.of(EventPull)))
	}
	m, err := n.store.GetManifest(context.Background(), "acme/app", d)
	if err != nil {
		t.Fatal(err)
	}
	if code := getBlob(t, n.signing, configOf(t, m.Content)); code != 200 {
		t.Errorf("GET of the refused image's config blob: %d, want 200 (blobs are not gated)", code)
	}

	other := n.attestWith(t, n.alice, builtBy("https://other.example/ci"), slsaProvenance)
	if r := n.put(t, n.attestTag(), other); r.status != 201 {
		t.Fatalf("alice's provenance from another builder: %d %s", r.status, r.body)
	}
	wantDenied(t, "GET with provenance from another builder", get(t, n.gated, "v1"), `1 attached do not match (runDetails.builder.id is \"https://other.example/ci\")`)
	if r := do(t, n.srv, "GET", "/v2/acme/app/manifests/"+n.attestTag(), nil, nil); r.status != 200 {
		t.Errorf("GET of the attestation tag of a refused image: %d, want 200 (referrers are not gated)", r.status)
	}

	good := n.attestWith(t, n.alice, builtBy("https://builder.x/ci"), slsaProvenance)
	if r := n.put(t, n.attestTag(), good); r.status != 201 {
		t.Fatalf("alice's provenance from builder.x: %d %s", r.status, r.body)
	}
	for _, ref := range []string{"v1", d} {
		if r := get(t, n.gated, ref); r.status != 200 || digest.FromBytes(r.body) != n.img.Digest {
			t.Fatalf("GET %s once the policy is met (no wait: the admission ends the verdict): %d %s", ref, r.status, r.body)
		}
	}

	n.tuf.Delegate("org-acme", trustnames.RoleForRepo("acme/app"), trustnames.RepoPaths("acme/app"), "bob")
	n.tuf.Publish("org-acme")
	n.refresh(t)
	wantDenied(t, "GET after the attesting key was undelegated", get(t, n.gated, "v1"), missing)
}

// TestAPolicyInWarnModeServesAndReports: the image is served, and each GET
// logs and emits what is missing; HEAD reports nothing.
func TestAPolicyInWarnModeServesAndReports(t *testing.T) {
	t.Parallel()
	n := newNotary(t)
	n.setPolicy(t, provenancePolicy(policy.Warn))
	n.events.take()
	for range 2 {
		if r := get(t, n.gated, "v1"); r.status != 200 {
			t.Fatalf("GET in warn mode: %d %s", r.status, r.body)
		}
	}
	if r := do(t, n.srv, "HEAD", "/v2/acme/app/manifests/v1", nil, nil); r.status != 200 {
		t.Fatalf("HEAD in warn mode: %d", r.status)
	}
	warned := n.events.of(EventPolicyWarning)
	if len(warned) != 2 {
		t.Fatalf("%d policy-warning events, want one per GET (2)", len(warned))
	}
	if e := warned[0]; e.Repo != "acme/app" || e.Tag != "v1" || e.Digest != n.img.Digest || !strings.Contains(e.Reason, "none is attached") {
		t.Errorf("the warning event: %+v", e)
	}
	logs := n.logs.String()
	if c := strings.Count(logs, "pull policy not met, served in warn mode"); c != 2 || !strings.Contains(logs, "repo=acme/app tag=v1 digest="+n.img.Digest.String()) || !strings.Contains(logs, "none is attached") {
		t.Errorf("want 2 warn lines naming repo, tag, digest and what is missing, got %d:\n%s", c, logs)
	}
}

// TestAPolicyAppliesOnlyToTheRepositoriesItNames: acme/* does not reach
// acme-corp/app, another org's repository.
func TestAPolicyAppliesOnlyToTheRepositoriesItNames(t *testing.T) {
	t.Parallel()
	n := newNotary(t)
	n.tuf.Delegate("targets", "org-acme-corp", trustnames.OrgPaths("acme-corp"), "corp-org")
	n.tuf.Delegate("org-acme-corp", trustnames.RoleForRepo("acme-corp/app"), trustnames.RepoPaths("acme-corp/app"), "carol")
	m := n.image(t, "acme-corp/app", "corp")
	n.tuf.AddTarget(trustnames.RoleForRepo("acme-corp/app"), "acme-corp/app:v1", m, storage.MediaTypeOCIManifest)
	n.tuf.Publish("targets", "org-acme-corp", trustnames.RoleForRepo("acme-corp/app"))
	n.setPolicy(t, provenancePolicy(policy.Enforce))
	if r := putManifest(t, n.srv, "acme-corp/app", "v1", m); r.status != 201 {
		t.Fatalf("acme-corp/app:v1: %d %s", r.status, r.body)
	}
	if r := do(t, n.srv, "GET", "/v2/acme-corp/app/manifests/v1", nil, nil); r.status != 200 {
		t.Errorf("GET acme-corp/app:v1 under acme's policy for acme/*: %d %s, want 200", r.status, r.body)
	}
	wantDenied(t, "GET acme/app:v1", get(t, n.gated, "v1"), "none is attached")
}

// TestOnlyTheOrgRoleCarriesPolicies: a policy target in a repository's role
// (crafted metadata: trustd refuses it) relaxes nothing; an org policy target
// that does not parse makes the org's images unservable.
func TestOnlyTheOrgRoleCarriesPolicies(t *testing.T) {
	t.Parallel()
	n := newNotary(t)
	n.setPolicy(t, provenancePolicy(policy.Enforce))
	relaxed := &policy.Set{Policies: []policy.Document{{Repositories: "acme/*", Mode: policy.Warn, Require: []policy.Requirement{{Signers: 1}}}}}
	n.policyTarget(t, trustnames.RoleForRepo("acme/app"), "acme", relaxed.Encode())
	n.tuf.Publish(trustnames.RoleForRepo("acme/app"))
	n.refresh(t)
	wantDenied(t, "GET with a policy target in the repository's role", get(t, n.gated, "v1"), "none is attached")

	n.policyTarget(t, "org-acme", "acme", []byte(`{"policies":[{"repositories":"acme/*","require":[{"signers":1}],"mood":"lenient"}]}`))
	n.tuf.Publish("org-acme")
	n.refresh(t)
	wantDenied(t, "GET with an org policy that does not parse", get(t, n.gated, "v1"), "acme/app:v1 ("+n.img.Digest.String()+") is signed, but the pull policy of acme cannot be read")
	wantDenied(t, "GET by digest with an org policy that does not parse", get(t, n.gated, n.img.Digest.String()), "cannot be read")
}

// TestAnIndexChildIsServedIffItsIndexMeetsThePolicy: a child pulled by digest,
// covered only by a signed index's closure, is judged by the index's
// evidence.
func TestAnIndexChildIsServedIffItsIndexMeetsThePolicy(t *testing.T) {
	t.Parallel()
	n := newNotary(t)
	child := n.image(t, "acme/app", "child")
	cd := digest.FromBytes(child)
	index := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + cd.String() + `","size":` + itoa(len(child)) + `}]}`)
	id := digest.FromBytes(index)
	n.tuf.AddTarget(trustnames.RoleForRepo("acme/app"), "acme/app:multi", index, storage.MediaTypeOCIIndex, cd.String())
	n.tuf.Publish(trustnames.RoleForRepo("acme/app"))
	n.setPolicy(t, provenancePolicy(policy.Enforce))
	if r := putManifest(t, n.srv, "acme/app", cd.String(), child); r.status != 201 {
		t.Fatalf("the child: %d %s", r.status, r.body)
	}
	if r := do(t, n.srv, "PUT", "/v2/acme/app/manifests/multi", map[string]string{"Content-Type": storage.MediaTypeOCIIndex}, index); r.status != 201 {
		t.Fatalf("the index: %d %s", r.status, r.body)
	}
	wantDenied(t, "GET of the child without provenance of its index", get(t, n.gated, cd.String()), "through the signed index "+id.String(), "none is attached")
	// Provenance of the child itself is not the index's: the policy is the
	// covering target's.
	att := attestation(t, n.srv, "acme/app", cd, n.alice, builtBy("https://builder.x/ci"), slsaProvenance)
	if r := n.put(t, "sha256-"+cd.Encoded()+".att", att); r.status != 201 {
		t.Fatalf("provenance of the child: %d %s", r.status, r.body)
	}
	wantDenied(t, "GET of the child with provenance of its own only", get(t, n.gated, cd.String()), "through the signed index "+id.String())
	att = attestation(t, n.srv, "acme/app", id, n.alice, builtBy("https://builder.x/ci"), slsaProvenance)
	if r := n.put(t, "sha256-"+id.Encoded()+".att", att); r.status != 201 {
		t.Fatalf("provenance of the index: %d %s", r.status, r.body)
	}
	for _, ref := range []string{cd.String(), "multi"} {
		if r := get(t, n.gated, ref); r.status != 200 {
			t.Errorf("GET %s once the index has its provenance: %d %s", ref, r.status, r.body)
		}
	}
	wantDenied(t, "GET of v1, whose provenance is still missing", get(t, n.gated, "v1"), "none is attached")
}

// TestAVerdictNotMetIsAskedAgainASecondLater: an attestation admitted by
// another replica (written to the shared store behind this registry's back)
// is seen once the verdict that is not met has stood a second; a met verdict
// then stands without a read of the store.
func TestAVerdictNotMetIsAskedAgainASecondLater(t *testing.T) {
	t.Parallel()
	d := &countingReads{Driver: inmemory.New()}
	n := newNotaryOn(t, d)
	n.setPolicy(t, provenancePolicy(policy.Enforce))
	wantDenied(t, "GET without provenance", get(t, n.gated, "v1"), "none is attached")
	good := n.attestWith(t, n.alice, builtBy("https://builder.x/ci"), slsaProvenance)
	// Another replica's admission: straight to the shared store.
	if _, err := n.store.PutAdmittedManifest(context.Background(), "acme/app", digest.FromBytes(good).String(), storage.MediaTypeOCIManifest, good, n.img.Digest); err != nil {
		t.Fatal(err)
	}
	if err := n.store.SetTagIf(context.Background(), "acme/app", n.attestTag(), digest.FromBytes(good), ""); err != nil {
		t.Fatal(err)
	}
	wantDenied(t, "GET within the second", get(t, n.gated, "v1"), "none is attached")
	n.clock.Advance(1100 * time.Millisecond)
	if r := get(t, n.gated, "v1"); r.status != 200 {
		t.Fatalf("GET a second later: %d %s", r.status, r.body)
	}
	records, manifests, blobs := d.count(func() {
		if r := do(t, n.srv, "HEAD", "/v2/acme/app/manifests/v1", nil, nil); r.status != 200 {
			t.Fatalf("HEAD once met: %d", r.status)
		}
	})
	if records+blobs != 0 || manifests > 1 {
		t.Errorf("a warm HEAD read %d records, %d manifests, %d blobs: want the served manifest only", records, manifests, blobs)
	}
}

// newNotaryOn is newNotary on the storage driver d.
func newNotaryOn(t *testing.T, d driver.Driver) *notary {
	t.Helper()
	s := newSigningOn(t, d)
	m, err := s.store.GetManifest(context.Background(), "acme/app", s.subject.String())
	if err != nil {
		t.Fatal(err)
	}
	return &notary{signing: s, img: ocispec.Descriptor{MediaType: storage.MediaTypeOCIManifest, Digest: s.subject, Size: int64(len(m.Content))}}
}

// TestAStoreFailureDuringThePolicyIsRetryableNotDenied: a store that fails
// while the evidence is read gets a 503, never a 403, and no verdict is
// kept: once it reads again the image is served at once.
func TestAStoreFailureDuringThePolicyIsRetryableNotDenied(t *testing.T) {
	t.Parallel()
	d := &sickReads{Driver: inmemory.New(), at: "/_tags/"}
	n := newNotaryOn(t, d)
	good := n.attestWith(t, n.alice, builtBy("https://builder.x/ci"), slsaProvenance)
	if r := n.put(t, n.attestTag(), good); r.status != 201 {
		t.Fatalf("alice's provenance: %d %s", r.status, r.body)
	}
	n.setPolicy(t, provenancePolicy(policy.Enforce))
	d.armed.Store(true)
	r := get(t, n.gated, "v1")
	d.armed.Store(false)
	want503(t, "GET while the store cannot read the evidence", r)
	if r := get(t, n.gated, "v1"); r.status != 200 {
		t.Fatalf("GET once the store reads again: %d %s", r.status, r.body)
	}
}

// TestUnmetPullPoliciesAreCounted: the metrics count refused and warned pulls
// apart.
func TestUnmetPullPoliciesAreCounted(t *testing.T) {
	t.Parallel()
	m, err := newRegistryMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []EventKind{EventPolicyDenied, EventPolicyDenied, EventPolicyWarning, EventPull} {
		m.event(context.Background(), Event{Kind: k})
	}
	value := func(c prometheus.Counter) float64 {
		var out dto.Metric
		if err := c.Write(&out); err != nil {
			t.Fatal(err)
		}
		return out.GetCounter().GetValue()
	}
	if d, w := value(m.pullPolicy[EventPolicyDenied]), value(m.pullPolicy[EventPolicyWarning]); d != 2 || w != 1 {
		t.Errorf("denied %v, warned %v; want 2 and 1", d, w)
	}
}
