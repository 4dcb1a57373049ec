package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

// The admission of a signed referrer (issue 14), on the same stack as the
// manifest PUTs, in two formats: a cosign signature artifact under its
// subject's sha256-<hex>.sig tag, and a cosign attestation artifact (one DSSE
// envelope of an in-toto statement, as `cosign attest --key` writes it) under
// sha256-<hex>.att, each signed by the key delegated for acme/app. Each is PUT
// in the enforced repository, where the gate checks its shape and signature
// against the delegated keys and binds it to an admitted subject, against the
// same artifact PUT under the same tag in the open repository, alternating.
// Each artifact is new (the gate caches verdicts per digest, so a repeated PUT
// would measure the cache), its blobs uploaded beforehand, its subject one of
// the images whose manifest PUTs were timed. Three rounds per format; each
// round's p50s, and the median and spread of what admission adds.
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

// ReferrerTiming is one format's rounds, and the median and spread (min, max)
// over rounds of what admission adds at p50.
type ReferrerTiming struct {
	Format      verify.Format   `json:"format"`
	Rounds      []ReferrerRound `json:"rounds"`
	AddedP50    time.Duration   `json:"addedP50Ns"`
	AddedP50Min time.Duration   `json:"addedP50MinNs"`
	AddedP50Max time.Duration   `json:"addedP50MaxNs"`
}

func (t *ReferrerTiming) writeTable(w io.Writer, target time.Duration, verdict func(bool) string) error {
	if len(t.Rounds) == 0 {
		return nil
	}
	if _, err := fmt.Fprintf(w, "  signed-referrer PUT, %s by the delegated key, %d rounds of %d each\n", t.Format, len(t.Rounds), t.Rounds[0].Referrers); err != nil {
		return err
	}
	for i, rr := range t.Rounds {
		if _, err := fmt.Fprintf(w, "    round %d   enforced p50 %7.3f ms   open p50 %7.3f ms   added %+7.3f ms\n", i+1, ms(rr.EnforcedP50), ms(rr.OpenP50), ms(rr.AddedP50)); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "    added by admission at p50, median of rounds %+7.3f ms (spread %+.3f .. %+.3f ms)   (target <= %.0f ms: %s)\n",
		ms(t.AddedP50), ms(t.AddedP50Min), ms(t.AddedP50Max), ms(target), verdict(t.AddedP50 <= target))
	return err
}

// referrerKind makes one format's artifact of subject in repository ref
// (host/name) with key.
type referrerKind struct {
	format verify.Format
	make   func(ref string, subject digest.Digest, key *signer.Key) (*signer.CosignArtifact, error)
}

var referrerKinds = []referrerKind{
	{verify.FormatCosign, func(ref string, subject digest.Digest, key *signer.Key) (*signer.CosignArtifact, error) {
		return signer.SignCosign(ref, subject, key, nil)
	}},
	{verify.FormatCosignAttestation, cosignAttestation},
}

// timeReferrerPuts makes each format's artifact of each subject with the
// delegated key, uploads their blobs to both repositories, then times the
// manifest PUTs in gateReferrerRounds rounds per format, the first subject's
// a warm-up.
func timeReferrerPuts(ctx context.Context, c *client, pub *gateSigner, subjects []image, logf func(string, ...any)) ([]ReferrerTiming, error) {
	per := (len(subjects) - 1) / gateReferrerRounds
	if per < 1 {
		return nil, fmt.Errorf("bench: %d subjects for %d rounds of signed referrers", len(subjects), gateReferrerRounds)
	}
	key, err := pub.s.Keys.Load(ctx, "publisher")
	if err != nil {
		return nil, err
	}
	put := func(repo string, a *signer.CosignArtifact) (time.Duration, error) {
		start := time.Now()
		err := c.putManifestType(ctx, repo, a.Tag, a.MediaType, blob{digest: a.Digest.String(), data: a.Manifest})
		if err != nil {
			err = fmt.Errorf("bench: PUT the signed referrer %s in %s: %w", a.Tag, repo, err)
		}
		return time.Since(start), err
	}
	var timings []ReferrerTiming
	for _, kind := range referrerKinds {
		logf("making %d %s artifacts with the delegated key", len(subjects), kind.format)
		arts := make([]*signer.CosignArtifact, len(subjects))
		for i, im := range subjects {
			if arts[i], err = kind.make(pub.host+"/"+gateEnforced, digest.Digest(im.manifest.digest), key); err != nil {
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
			if _, err := put(repo, arts[0]); err != nil {
				return nil, err
			}
		}
		t := ReferrerTiming{Format: kind.format}
		for r := range gateReferrerRounds {
			batch := arts[1+r*per : 1+(r+1)*per]
			logf("%s round %d: timing %d signed-referrer PUTs against %d open ones, alternating", kind.format, r+1, per, per)
			enf, opn, err := alternating(per, func(i int, repo string) (time.Duration, error) { return put(repo, batch[i]) })
			if err != nil {
				return nil, err
			}
			e, o := percentile(enf, 0.50), percentile(opn, 0.50)
			t.Rounds = append(t.Rounds, ReferrerRound{Referrers: per, EnforcedP50: e, OpenP50: o, AddedP50: e - o})
		}
		added := make([]time.Duration, len(t.Rounds))
		for i, r := range t.Rounds {
			added[i] = r.AddedP50
		}
		t.AddedP50, t.AddedP50Min, t.AddedP50Max = medianDuration(added), slices.Min(added), slices.Max(added)
		timings = append(timings, t)
	}
	return timings, nil
}

// cosignAttestation makes the attestation artifact `cosign attest --key`
// pushes under subject's sha256-<hex>.att tag: an OCI manifest of one DSSE
// envelope layer, signed by key over an in-toto statement about subject
// named ref, with cosign's layer annotations and the config it derives.
func cosignAttestation(ref string, subject digest.Digest, key *signer.Key) (*signer.CosignArtifact, error) {
	return cosignAttestations(ref, subject, key, statement{"https://slsa.dev/provenance/v1",
		map[string]any{"buildDefinition": map[string]any{"buildType": "https://example.com/build/v1"}, "runDetails": map[string]any{"builder": map[string]any{"id": "https://example.com/builder"}}}})
}

// statement is one in-toto statement's predicate type and predicate.
type statement struct {
	predicateType string
	predicate     any
}

// cosignAttestations is cosignAttestation with one layer per statement, as
// cosign writes attestations of several predicate types under one tag.
func cosignAttestations(ref string, subject digest.Digest, key *signer.Key, statements ...statement) (*signer.CosignArtifact, error) {
	blobs := map[digest.Digest][]byte{}
	var layers []json.RawMessage
	for _, st := range statements {
		payload, err := json.Marshal(map[string]any{
			"_type":         "https://in-toto.io/Statement/v0.1",
			"predicateType": st.predicateType,
			"subject":       []any{map[string]any{"name": ref, "digest": map[string]string{subject.Algorithm().String(): subject.Encoded()}}},
			"predicate":     st.predicate,
		})
		if err != nil {
			return nil, err
		}
		envelope, err := signer.SignDSSE(key.Signer, verify.InTotoPayloadType, payload)
		if err != nil {
			return nil, err
		}
		layer, err := json.Marshal(ocispec.Descriptor{
			MediaType: verify.DSSEEnvelopeMediaType, Size: int64(len(envelope)), Digest: digest.FromBytes(envelope),
			Annotations: map[string]string{signer.CosignSignatureAnnotation: "", verify.PredicateTypeAnnotation: st.predicateType},
		})
		if err != nil {
			return nil, err
		}
		layers = append(layers, layer)
		blobs[digest.FromBytes(envelope)] = envelope
	}
	config, err := signer.CosignConfig(layers)
	if err != nil {
		return nil, err
	}
	blobs[digest.FromBytes(config)] = config
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest,
		"config": ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Size: int64(len(config)), Digest: digest.FromBytes(config)},
		"layers": layers,
	})
	if err != nil {
		return nil, err
	}
	return &signer.CosignArtifact{
		Tag: strings.TrimSuffix(signer.CosignSignatureTag(subject), ".sig") + ".att", MediaType: ocispec.MediaTypeImageManifest,
		Manifest: manifest, Digest: digest.FromBytes(manifest), Blobs: blobs,
	}, nil
}
