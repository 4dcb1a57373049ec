package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/policy"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/trustnames"
)

// The cost of a pull policy at pull, on one enforcing `trustctl up`: warm
// pulls of a tag as a client makes them (the manifest by tag, then its config
// and layers, over HTTP) in acme/app, whose org's policy has three
// requirements, all met (SLSA provenance from a builder matching a glob, an
// SPDX SBOM attestation, two distinct delegated signers), against the same
// image in acme/plain, enforced too but under no policy. The two alternate
// pull by pull, in policyRounds rounds; each round gives the median and spread
// (p10 .. p90) of each, and the ratio of the medians.
//
// Before timing, the run checks the policy is in force: acme/app:v1 is
// refused until its attestations and second signature are pushed, served
// after.
//
// The target: once warm, a pull under the policy costs at most 5% more than
// one without (the median of the rounds' ratios).

// PolicyConfig shapes the pull policy benchmark; zero fields take defaults.
type PolicyConfig struct {
	// Pulls is how many pulls of each repository each round times. Default
	// 300.
	Pulls int
	// Rounds is how many rounds. Default 3.
	Rounds int
	// WorkDir holds the binary and the stack's data; "" means a temporary
	// directory, removed.
	WorkDir string
	// Log receives progress; nil means none.
	Log io.Writer
}

// Shape and target of the pull policy benchmark.
const (
	policyRepo, plainRepo = "acme/app", "acme/plain"
	policyLayers          = 2
	policyLayerSize       = 256 << 10
	policyTarget          = 0.05
)

// PolicyRound is one round: pulls of each repository, alternating.
type PolicyRound struct {
	Pulls     int           `json:"pulls"`
	PolicyP50 time.Duration `json:"policyP50Ns"`
	PolicyP10 time.Duration `json:"policyP10Ns"`
	PolicyP90 time.Duration `json:"policyP90Ns"`
	PlainP50  time.Duration `json:"plainP50Ns"`
	PlainP10  time.Duration `json:"plainP10Ns"`
	PlainP90  time.Duration `json:"plainP90Ns"`
	// Ratio is PolicyP50 / PlainP50.
	Ratio float64 `json:"ratio"`
}

// PolicyReport is what RunPolicy measured.
type PolicyReport struct {
	Requirements int           `json:"requirements"`
	PullBytes    int64         `json:"pullBytes"`
	Rounds       []PolicyRound `json:"rounds"`
	// Ratio is the median of the rounds' ratios; RatioMin and RatioMax their
	// spread.
	Ratio    float64 `json:"ratio"`
	RatioMin float64 `json:"ratioMin"`
	RatioMax float64 `json:"ratioMax"`
	// Target is the most a policy may add, as a share of a pull.
	Target float64 `json:"target"`
}

// WriteTable prints the report for people.
func (r *PolicyReport) WriteTable(w io.Writer) error {
	verdict := "met"
	if r.Ratio-1 > r.Target {
		verdict = "MISSED"
	}
	if _, err := fmt.Fprintf(w, "pull policy on trustctl up (filesystem): warm pulls of a tag (manifest, config, %d layers, %.0f KiB) in %s, under a %d-requirement policy met, vs %s without one\n",
		policyLayers, float64(r.PullBytes)/(1<<10), policyRepo, r.Requirements, plainRepo); err != nil {
		return err
	}
	for i, rr := range r.Rounds {
		if _, err := fmt.Fprintf(w, "  round %d, %d pulls each   policy p50 %7.3f ms (p10 %.3f .. p90 %.3f)   none p50 %7.3f ms (p10 %.3f .. p90 %.3f)   ratio %.3f\n",
			i+1, rr.Pulls, ms(rr.PolicyP50), ms(rr.PolicyP10), ms(rr.PolicyP90), ms(rr.PlainP50), ms(rr.PlainP10), ms(rr.PlainP90), rr.Ratio); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "  ratio, median of rounds %.3f (spread %.3f .. %.3f)   (target <= %.2f: %s)\n", r.Ratio, r.RatioMin, r.RatioMax, 1+r.Target, verdict)
	return err
}

func (c PolicyConfig) withDefaults() PolicyConfig {
	if c.Pulls <= 0 {
		c.Pulls = 300
	}
	if c.Rounds <= 0 {
		c.Rounds = 3
	}
	return c
}

// benchPolicy is the policy of acme/app: three requirements.
func benchPolicy() *policy.Set {
	return &policy.Set{Policies: []policy.Document{{Repositories: policyRepo, Mode: policy.Enforce, Require: []policy.Requirement{
		{PredicateType: "https://slsa.dev/provenance/v1", Match: map[string]string{"runDetails.builder.id": "https://example.com/*"}},
		{PredicateType: "https://spdx.dev/Document"},
		{Signers: 2},
	}}}}
}

// RunPolicy starts an enforcing `trustctl up`, publishes both images, the
// policy and its evidence, and times warm pulls.
func RunPolicy(ctx context.Context, cfg PolicyConfig) (*PolicyReport, error) {
	cfg = cfg.withDefaults()
	logf := progress(cfg.Log)
	work, cleanup, err := workDir(cfg.WorkDir, "signet-bench-policy-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	ss, err := startSignedStack(ctx, work, logf, nil,
		[][]string{{"keys", "generate", "publisher"}, {"keys", "generate", "publisher2"}, {"org", "create", "acme"},
			{"org", "delegate", policyRepo, "--key", "publisher", "--key", "publisher2"}, {"org", "delegate", plainRepo, "--key", "publisher"}},
		"pull,push", policyRepo, plainRepo)
	if err != nil {
		return nil, err
	}
	defer ss.close()
	c, pub := ss.c, ss.pub
	// Pulls ask for pull alone, as clients do: a token that may push is
	// served what its policy holds back.
	reader, err := ss.client(ctx, "pull", policyRepo, plainRepo)
	if err != nil {
		return nil, err
	}
	defer reader.close()
	layers := make([]blob, policyLayers)
	for i := range layers {
		layers[i] = newBlob(randomBytes(policyLayerSize))
	}
	im := newImage(layers, "policy")
	logf("pushing the image to %s and %s", policyRepo, plainRepo)
	for _, repo := range []string{policyRepo, plainRepo} {
		for _, b := range append([]blob{im.config}, im.layers...) {
			if err := pushBlob(ctx, c, repo, b); err != nil {
				return nil, err
			}
		}
		if err := pub.sign(ctx, repo, "v1", im.manifest); err != nil {
			return nil, err
		}
		if err := c.putManifest(ctx, repo, "v1", im.manifest); err != nil {
			return nil, err
		}
	}
	set := benchPolicy()
	if err := publishPolicy(ctx, pub, "acme", set); err != nil {
		return nil, err
	}
	buf := make([]byte, 1<<20)
	logf("waiting for the registry to refuse %s:v1 under the policy", policyRepo)
	if err := waitForStatus(ctx, reader, policyRepo, http.StatusForbidden, buf); err != nil {
		return nil, err
	}
	if err := pushEvidence(ctx, c, pub, digest.Digest(im.manifest.digest)); err != nil {
		return nil, err
	}
	if err := waitForStatus(ctx, reader, policyRepo, http.StatusOK, buf); err != nil {
		return nil, fmt.Errorf("bench: the policy is not met with its evidence: %w", err)
	}
	pull := func(repo string) (time.Duration, error) {
		start := time.Now()
		if _, err := reader.get(ctx, "/v2/"+repo+"/manifests/v1", acceptManifest, sink{}, buf); err != nil {
			return 0, err
		}
		for _, b := range append([]blob{im.config}, im.layers...) {
			if _, err := reader.get(ctx, "/v2/"+repo+"/blobs/"+b.digest, "", sink{}, buf); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	rep := &PolicyReport{Requirements: len(set.Policies[0].Require), PullBytes: im.size(), Target: policyTarget}
	if rep.Rounds, err = timePolicyPulls(cfg, pull, logf); err != nil {
		return nil, err
	}
	ratios := make([]float64, len(rep.Rounds))
	for i, rr := range rep.Rounds {
		ratios[i] = rr.Ratio
	}
	slices.Sort(ratios)
	rep.Ratio, rep.RatioMin, rep.RatioMax = ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1]
	return rep, nil
}

// timePolicyPulls warms both repositories up, then times cfg.Rounds rounds
// of cfg.Pulls pulls of each, alternating which goes first.
func timePolicyPulls(cfg PolicyConfig, pull func(repo string) (time.Duration, error), logf func(string, ...any)) ([]PolicyRound, error) {
	logf("warming: 20 pulls of each")
	for range 20 {
		for _, repo := range []string{policyRepo, plainRepo} {
			if _, err := pull(repo); err != nil {
				return nil, err
			}
		}
	}
	var rounds []PolicyRound
	for r := range cfg.Rounds {
		logf("round %d: %d pulls of each, alternating", r+1, cfg.Pulls)
		times := map[string][]time.Duration{}
		for i := range cfg.Pulls {
			order := []string{policyRepo, plainRepo}
			if i%2 == 1 {
				order = []string{plainRepo, policyRepo}
			}
			for _, repo := range order {
				d, err := pull(repo)
				if err != nil {
					return nil, err
				}
				times[repo] = append(times[repo], d)
			}
		}
		with, without := times[policyRepo], times[plainRepo]
		rr := PolicyRound{Pulls: cfg.Pulls,
			PolicyP50: percentile(with, 0.5), PolicyP10: percentile(with, 0.1), PolicyP90: percentile(with, 0.9),
			PlainP50: percentile(without, 0.5), PlainP10: percentile(without, 0.1), PlainP90: percentile(without, 0.9)}
		rr.Ratio = float64(rr.PolicyP50) / float64(rr.PlainP50)
		rounds = append(rounds, rr)
	}
	return rounds, nil
}

// publishPolicy publishes set as org's policy target in the next version of
// its role, signed with the org key, as trustctl would.
func publishPolicy(ctx context.Context, pub *gateSigner, org string, set *policy.Set) error {
	v, err := pub.s.Verifier()
	if err != nil {
		return err
	}
	role := trustnames.RoleForOrg(org)
	st, err := v.Walk(ctx, org+"/-:-")
	if err != nil {
		return fmt.Errorf("bench: walking to %s: %w", role, err)
	}
	md := st.Roles[role]
	if md == nil {
		return fmt.Errorf("bench: the walk did not reach %s", role)
	}
	enc := set.Encode()
	tf, err := metadata.TargetFile().FromBytes(policy.Target(org), enc, "sha256")
	if err != nil {
		return err
	}
	custom := json.RawMessage(enc)
	tf.Custom = &custom
	md.Signed.Targets[policy.Target(org)] = tf
	md.Signed.Version++
	key, err := pub.s.Keys.Load(ctx, role)
	if err != nil {
		if key, err = pub.s.Keys.Load(ctx, signer.DevelopmentPrefix+role); err != nil {
			return fmt.Errorf("bench: the org key of %s: %w", org, err)
		}
	}
	if err := signer.SignMetadata(md, true, key); err != nil {
		return err
	}
	b, err := md.ToBytes(false)
	if err != nil {
		return err
	}
	if _, err := pub.s.Trustd.PublishMetadata(ctx, role, b); err != nil {
		return fmt.Errorf("bench: publishing %s's policy: %w", org, err)
	}
	return nil
}

// pushEvidence pushes what the policy asks of subject in policyRepo: SLSA
// provenance and an SPDX SBOM attested by publisher, and a cosign signature
// by publisher2 (with the repository role's publisher, two signers).
func pushEvidence(ctx context.Context, c *client, pub *gateSigner, subject digest.Digest) error {
	keys := map[string]*signer.Key{}
	for _, name := range []string{"publisher", "publisher2"} {
		k, err := pub.s.Keys.Load(ctx, name)
		if err != nil {
			return err
		}
		keys[name] = k
	}
	arts, err := policyArtifacts(pub.host+"/"+policyRepo, subject, keys["publisher"], keys["publisher2"])
	if err != nil {
		return err
	}
	for _, a := range arts {
		for _, b := range a.Blobs {
			if err := pushBlob(ctx, c, policyRepo, newBlob(b)); err != nil {
				return err
			}
		}
		if err := c.putManifestType(ctx, policyRepo, a.Tag, a.MediaType, blob{digest: a.Digest.String(), data: a.Manifest}); err != nil {
			return fmt.Errorf("bench: PUT %s: %w", a.Tag, err)
		}
	}
	return nil
}

// policyArtifacts makes the evidence benchPolicy asks of subject in the
// repository ref (host/name): SLSA provenance and an SPDX SBOM attested by
// attester, and a cosign signature by cosigner.
func policyArtifacts(ref string, subject digest.Digest, attester, cosigner *signer.Key) ([]*signer.CosignArtifact, error) {
	att, err := cosignAttestations(ref, subject, attester,
		statement{"https://slsa.dev/provenance/v1", map[string]any{"runDetails": map[string]any{"builder": map[string]any{"id": "https://example.com/builder"}}}},
		statement{"https://spdx.dev/Document", map[string]any{"spdxVersion": "SPDX-2.3", "packages": []any{}}})
	if err != nil {
		return nil, err
	}
	sig, err := signer.SignCosign(ref, subject, cosigner, nil)
	if err != nil {
		return nil, err
	}
	return []*signer.CosignArtifact{att, sig}, nil
}

// waitForStatus GETs repo:v1 until it answers want, for at most a minute (the
// registry sees a new policy at its next refresh).
func waitForStatus(ctx context.Context, c *client, repo string, want int, buf []byte) error {
	deadline := time.Now().Add(time.Minute)
	for {
		req := newRequest(ctx, http.MethodGet, c.url("/v2/"+repo+"/manifests/v1"), nil)
		req.Header.Set("Accept", acceptManifest)
		resp, err := c.hc.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, int64(len(buf))))
		resp.Body.Close()
		if resp.StatusCode == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: GET %s:v1 answers %d, want %d: %s", repo, resp.StatusCode, want, body)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
