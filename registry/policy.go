package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/policy"
	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/verify"
)

// Pull policies (package policy) in an enforced repository. A manifest GET or
// HEAD of an image (a tag's target, a digest target, or a child covered only
// by an index target's closure) is served only while the org's policies that
// apply to the repository are met (a child: by any target whose closure
// covers it) and the org's policy target reads; otherwise 403 DENIED names
// what is missing. A document in warn mode serves the image, and each GET
// logs what is missing and emits EventPolicyWarning.
//
// The evidence for an image digest is what the gate itself serves of it: the
// artifacts under its cosign tags and the referrers listed for it (subject
// field), each checked with the keys delegated in the view (a referrer that
// does not verify as a whole counts for nothing, as it is not served), and
// the keys that signed the repository role's version (RepoTargets.Signers).
//
// Signed referrers, referrers indexes, tag lists and the referrers API are not
// subject to policies: they say what an image carries, and a client needs them
// to see why it is refused. Blobs stay servable by digest: a client reaches
// them only through a manifest, and a blob shared with an image whose policy
// is met must not depend on another's.
//
// Verdicts are cached per repository and requested digest, bound to the view
// (the RepoTargets pointer), so a warm pull costs a map lookup. A met verdict
// holds until the view changes, a referrer of its subject is admitted or
// deleted here, or the earliest expiry of a signature it counted passes; one
// that is not met (or only warns) is evaluated again policyRecheck later,
// since another replica may have admitted an attestation meanwhile. A storage
// failure is never a verdict.

// policyRecheck is how long a verdict that is not met stands.
const policyRecheck = time.Second

// policyVerdict is the evaluation of the policies of one requested digest.
type policyVerdict struct {
	// err is the enforced documents not being met (a *policy.UnmetError), with
	// through naming the covering target evaluated for a child ("" otherwise).
	err      error
	through  digest.Digest
	warnings []string
	// subjects are the image digests whose evidence the verdict rests on: a
	// referrer admitted or deleted for one of them ends it.
	subjects []digest.Digest
	// until ends a verdict: the earliest signature expiry of a met one, the
	// recheck time of one that is not met; zero for never.
	until time.Time
}

func (v *policyVerdict) fresh(now time.Time) bool {
	return v.until.IsZero() || now.Before(v.until)
}

// repoVerdicts are one repository's verdicts under view rt: a new view
// replaces them all, so they are bounded by the view's covered digests.
type repoVerdicts struct {
	rt *verify.RepoTargets
	m  map[digest.Digest]*policyVerdict
}

// pullPolicy decides a pull of image d of repo under policy, named as the
// request named it (repo:tag or repo@digest): a DENIED error when an enforced
// document is not met, the warnings of warn mode documents otherwise. An
// error that is not DENIED is a storage or trust failure.
func (g *gate) pullPolicy(ctx context.Context, repo, name string, d digest.Digest) ([]string, error) {
	rt, err := g.index.Lookup(repo)
	if err != nil {
		return nil, unavailable(fmt.Errorf("%w: %v", errTrustUnavailable, err))
	}
	if rt == nil || !rt.Covered[d] {
		return nil, nil // a signed referrer: no policy
	}
	if rt.PolicyErr != nil {
		return nil, denied("%s (%s) is signed, but %v", name, d, rt.PolicyErr)
	}
	if len(rt.Policies) == 0 {
		return nil, nil
	}
	v, err := g.policyVerdict(ctx, repo, rt, d)
	if err != nil {
		return nil, err
	}
	if v.err != nil {
		through := ""
		if v.through != "" {
			through = ", through the signed index " + v.through.String()
		}
		return nil, denied("%s (%s%s) is signed, but %v", name, d, through, v.err)
	}
	return v.warnings, nil
}

// policyVerdict returns the cached verdict of d under rt, evaluating it when
// there is none that holds.
func (g *gate) policyVerdict(ctx context.Context, repo string, rt *verify.RepoTargets, d digest.Digest) (*policyVerdict, error) {
	now := g.index.Now()
	g.pmu.Lock()
	rv := g.policies[repo]
	var v *policyVerdict
	if rv != nil && rv.rt == rt {
		v = rv.m[d]
	}
	gen := g.policyGen
	g.pmu.Unlock()
	if v != nil && v.fresh(now) {
		return v, nil
	}
	v, err := g.evaluatePolicy(ctx, repo, rt, d, now)
	if err != nil {
		return nil, err
	}
	g.pmu.Lock()
	defer g.pmu.Unlock()
	if g.policyGen != gen {
		// A referrer was admitted or deleted while this one was evaluated:
		// the verdict answers this pull, and is not kept.
		return v, nil
	}
	if g.policies == nil {
		g.policies = map[string]*repoVerdicts{}
	}
	if rv := g.policies[repo]; rv == nil || rv.rt != rt {
		g.policies[repo] = &repoVerdicts{rt: rt, m: map[digest.Digest]*policyVerdict{}}
	}
	g.policies[repo].m[d] = v
	return v, nil
}

// evaluatePolicy evaluates rt's policies for image d: on d itself when it is
// a target, else on each target whose closure covers it, met when any is.
func (g *gate) evaluatePolicy(ctx context.Context, repo string, rt *verify.RepoTargets, d digest.Digest, now time.Time) (*policyVerdict, error) {
	var best *policyVerdict
	for _, c := range coveringTargets(rt, d) {
		v, err := g.evaluateImage(ctx, repo, rt, c, now)
		if err != nil {
			return nil, err
		}
		if c != d {
			v.through = c
		}
		if best == nil || better(v, best) {
			best = v
		}
	}
	if best == nil { // covered, yet no target names it: cannot happen
		return &policyVerdict{err: fmt.Errorf("no signed target covers %s", d), until: now.Add(policyRecheck)}, nil
	}
	best.subjects = coveringTargets(rt, d)
	return best, nil
}

// better prefers a met verdict, then one with fewer warnings.
func better(a, b *policyVerdict) bool {
	if (a.err == nil) != (b.err == nil) {
		return a.err == nil
	}
	return len(a.warnings) < len(b.warnings)
}

// coveringTargets returns d when a target of rt names it, else the digests of
// the targets whose closure lists it, sorted.
func coveringTargets(rt *verify.RepoTargets, d digest.Digest) []digest.Digest {
	if rt.Digests[d] != nil {
		return []digest.Digest{d}
	}
	for _, t := range rt.Tags {
		if t.Digest == d {
			return []digest.Digest{d}
		}
	}
	set := map[digest.Digest]bool{}
	for _, t := range slices.Concat(slices.Collect(maps.Values(rt.Tags)), slices.Collect(maps.Values(rt.Digests))) {
		if slices.Contains(t.Closure, d) {
			set[t.Digest] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// evaluateImage gathers the evidence of target d and evaluates rt's policies.
func (g *gate) evaluateImage(ctx context.Context, repo string, rt *verify.RepoTargets, d digest.Digest, now time.Time) (*policyVerdict, error) {
	refs, expiry, err := g.policyReferrers(ctx, repo, rt, d)
	if err != nil {
		return nil, err
	}
	res := policy.Evaluate(rt.Policies, verify.PolicyEvidence(rt.Signers, refs))
	v := &policyVerdict{err: res.Err(), warnings: res.Warnings(), until: expiry}
	if v.err != nil || len(v.warnings) > 0 {
		v.until = now.Add(policyRecheck)
	}
	return v, nil
}

// policyReferrers returns the signed referrers of subject that repo serves,
// checked with rt's keys, and the earliest expiry of their signatures (zero
// for none). An error is a storage failure.
func (g *gate) policyReferrers(ctx context.Context, repo string, rt *verify.RepoTargets, subject digest.Digest) ([]verify.Referrer, time.Time, error) {
	var candidates []digest.Digest
	for _, tag := range cosignTags(subject) {
		a, err := g.store.ResolveTag(ctx, repo, tag)
		if errors.Is(err, storage.ErrManifestUnknown) {
			continue
		}
		if err != nil {
			return nil, time.Time{}, err
		}
		candidates = append(candidates, a)
	}
	descs, err := g.store.Referrers(ctx, repo, subject, "")
	if err != nil {
		return nil, time.Time{}, err
	}
	for _, desc := range descs {
		if !slices.Contains(candidates, desc.Digest) {
			candidates = append(candidates, desc.Digest)
		}
	}
	var refs []verify.Referrer
	var expiry time.Time
	for _, a := range candidates {
		m, err := g.store.GetManifest(ctx, repo, a.String())
		if errors.Is(err, storage.ErrManifestUnknown) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, time.Time{}, err
		}
		ref, shapeErr, sigErr, readFailed := g.checkReferrer(ctx, repo, subject, m.MediaType, m.Content, rt.Keys)
		if readFailed {
			return nil, time.Time{}, fmt.Errorf("reading the payloads of %s@%s for the pull policy of %s: %w", repo, a, subject, errors.Join(shapeErr, sigErr))
		}
		if shapeErr != nil || sigErr != nil {
			continue // not served, so no evidence (PolicyEvidence skips it too)
		}
		for _, s := range ref.Signatures {
			if !s.Expiry.IsZero() && (expiry.IsZero() || s.Expiry.Before(expiry)) {
				expiry = s.Expiry
			}
		}
		refs = append(refs, ref)
	}
	return refs, expiry, nil
}

// referrerChanged ends the policy verdicts that rest on subject after this
// process admitted a referrer of it; subject "" (a manifest deleted) ends
// every verdict of repo.
func (g *gate) referrerChanged(repo string, subject digest.Digest) {
	g.pmu.Lock()
	defer g.pmu.Unlock()
	g.policyGen++
	rv := g.policies[repo]
	if rv == nil {
		return
	}
	if subject == "" {
		delete(g.policies, repo)
		return
	}
	maps.DeleteFunc(rv.m, func(_ digest.Digest, v *policyVerdict) bool { return slices.Contains(v.subjects, subject) })
}

// policyWarning is the text of a pull's warnings, one line.
func policyWarning(warnings []string) string { return strings.Join(warnings, "; ") }
