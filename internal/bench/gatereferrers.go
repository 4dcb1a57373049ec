package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/signer"
)

// The admission of a signed referrer (issue 14), on the same stack as the
// manifest PUTs: a cosign signature artifact signed by the key delegated for
// acme/app, PUT under its subject's sha256-<hex>.sig tag in the enforced
// repository, where the gate checks its shape and signature against the
// delegated keys and binds it to an admitted subject, against the same
// artifact PUT under the same tag in the open repository, alternating. Each
// artifact is new (the gate caches verdicts per digest, so a repeated PUT
// would measure the cache), its blobs uploaded beforehand, its subject one of
// the images whose manifest PUTs were timed. Three rounds; each round's p50s,
// and the median and spread of what admission adds.
//
// The target: admission of a signed referrer adds at most 5 ms at p50.

// Targets and shape of the signed-referrer measurement.
const (
	gateReferrerP50Target = 5 * time.Millisecond
	gateReferrerRounds    = 3
)

// ReferrerRound is one round of signed-referrer PUTs.
type ReferrerRound struct {
	Referrers   int           `json:"referrers"`
	EnforcedP50 time.Duration `json:"enforcedPutP50Ns"`
	OpenP50     time.Duration `json:"openPutP50Ns"`
	AddedP50    time.Duration `json:"addedP50Ns"`
}

// referrerSummary is the median and spread (min, max) of what admission adds
// at p50 over rounds.
func referrerSummary(rounds []ReferrerRound) (median, lo, hi time.Duration) {
	added := make([]time.Duration, len(rounds))
	for i, r := range rounds {
		added[i] = r.AddedP50
	}
	return medianDuration(added), slices.Min(added), slices.Max(added)
}

// timeReferrerPuts signs a cosign signature artifact of each subject with the
// delegated key, uploads their blobs to both repositories, then times the
// manifest PUTs in gateReferrerRounds rounds, the first subject's a warm-up.
func timeReferrerPuts(ctx context.Context, c *client, pub *gateSigner, subjects []image, logf func(string, ...any)) ([]ReferrerRound, error) {
	per := (len(subjects) - 1) / gateReferrerRounds
	if per < 1 {
		return nil, fmt.Errorf("bench: %d subjects for %d rounds of signed referrers", len(subjects), gateReferrerRounds)
	}
	key, err := pub.s.Keys.Load(ctx, "publisher")
	if err != nil {
		return nil, err
	}
	logf("signing %d cosign signature artifacts with the delegated key", len(subjects))
	arts := make([]*signer.CosignArtifact, len(subjects))
	for i, im := range subjects {
		if arts[i], err = signer.SignCosign(pub.host+"/"+gateEnforced, digest.Digest(im.manifest.digest), key, nil); err != nil {
			return nil, err
		}
	}
	for _, repo := range []string{gateEnforced, gateOpen} {
		for _, a := range arts {
			for _, b := range a.Blobs {
				if err := pushBlob(ctx, c, repo, newBlob(b)); err != nil {
					return nil, err
				}
			}
		}
	}
	put := func(repo string, a *signer.CosignArtifact) (time.Duration, error) {
		start := time.Now()
		err := c.putManifestType(ctx, repo, a.Tag, a.MediaType, blob{digest: a.Digest.String(), data: a.Manifest})
		if err != nil {
			err = fmt.Errorf("bench: PUT the signature artifact %s in %s: %w", a.Tag, repo, err)
		}
		return time.Since(start), err
	}
	for _, repo := range []string{gateEnforced, gateOpen} {
		if _, err := put(repo, arts[0]); err != nil {
			return nil, err
		}
	}
	var rounds []ReferrerRound
	for r := range gateReferrerRounds {
		batch := arts[1+r*per : 1+(r+1)*per]
		logf("round %d: timing %d signed-referrer PUTs against %d open ones, alternating", r+1, per, per)
		enf, opn, err := alternating(per, func(i int, repo string) (time.Duration, error) { return put(repo, batch[i]) })
		if err != nil {
			return nil, err
		}
		e, o := percentile(enf, 0.50), percentile(opn, 0.50)
		rounds = append(rounds, ReferrerRound{Referrers: per, EnforcedP50: e, OpenP50: o, AddedP50: e - o})
	}
	return rounds, nil
}
