package registry

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/internal/notationtest"
	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

// notary is a gated registry whose acme/app is delegated to alice and bob,
// with a signed image at acme/app:v1 that notation signatures are made for.
type notary struct {
	*signing
	img ocispec.Descriptor
}

func newNotary(t *testing.T) *notary {
	t.Helper()
	s := newSigning(t)
	r := do(t, s.srv, "GET", "/v2/acme/app/manifests/v1", nil, nil)
	if r.status != 200 {
		t.Fatalf("GET acme/app:v1: %d", r.status)
	}
	return &notary{signing: s, img: ocispec.Descriptor{MediaType: storage.MediaTypeOCIManifest, Digest: s.subject, Size: int64(len(r.body))}}
}

// notate signs the image with key as `notation sign` does, and pushes the
// signature's blobs.
func (n *notary) notate(t *testing.T, key *signer.Key, envelopeType string, o notationtest.Options) *notationtest.Signature {
	t.Helper()
	sig := notationtest.Sign(t, key, envelopeType, n.img, o)
	for _, b := range sig.Blobs() {
		pushBlob(t, n.srv, "acme/app", b)
	}
	return sig
}

// referrer is the descriptor of a notation signature manifest as the referrers
// API lists it, and as oras-go writes it into a referrers index.
func referrer(t *testing.T, manifest []byte) ocispec.Descriptor {
	t.Helper()
	var m ocispec.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: storage.MediaTypeOCIManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest)), ArtifactType: m.Config.MediaType, Annotations: m.Annotations}
}

// indexOf is the index oras-go pushes under the referrers tag.
func indexOf(t *testing.T, entries ...ocispec.Descriptor) []byte {
	t.Helper()
	b, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: storage.MediaTypeOCIIndex, Manifests: entries})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (n *notary) referrersTag() string { return "sha256-" + n.img.Digest.Encoded() }

func (n *notary) putIndex(t *testing.T, index []byte) response {
	t.Helper()
	return do(t, n.srv, "PUT", "/v2/acme/app/manifests/"+n.referrersTag(), map[string]string{"Content-Type": storage.MediaTypeOCIIndex}, index)
}

// listed returns the digests the referrers API lists for the image.
func (n *notary) listed(t *testing.T) map[digest.Digest]ocispec.Descriptor {
	t.Helper()
	r := do(t, n.srv, "GET", "/v2/acme/app/referrers/"+n.img.Digest.String(), nil, nil)
	if r.status != 200 {
		t.Fatalf("the referrers of the image: %d %s", r.status, r.body)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(r.body, &idx); err != nil {
		t.Fatal(err)
	}
	out := map[digest.Digest]ocispec.Descriptor{}
	for _, d := range idx.Manifests {
		out[d.Digest] = d
	}
	return out
}

// TestANotationSignatureIsAdmittedByDigestOnlyWhenADelegatedKeySignedTheSubject
// pushes notation signatures as notation does with the referrers API: by
// digest, with a subject. Alice's JWS and COSE signatures are admitted, with
// OCI-Subject in the answer, listed by the referrers API and served with their
// envelopes; one under a cosign tag, one by an undelegated certificate and
// each forged shape are refused and neither stored nor listed.
func TestANotationSignatureIsAdmittedByDigestOnlyWhenADelegatedKeySignedTheSubject(t *testing.T) {
	t.Parallel()
	n := newNotary(t)
	for _, envelopeType := range []string{notationtest.JWS, notationtest.COSE} {
		sig := n.notate(t, n.alice, envelopeType, notationtest.Options{})
		r := n.put(t, sig.Digest.String(), sig.Manifest)
		if r.status != 201 || r.header.Get("OCI-Subject") != n.img.Digest.String() {
			t.Fatalf("alice's %s signature: %d %s, OCI-Subject %q", envelopeType, r.status, r.body, r.header.Get("OCI-Subject"))
		}
		if got, ok := n.listed(t)[sig.Digest]; !ok || got.ArtifactType != verify.NotationArtifactType {
			t.Errorf("the referrers API lists alice's %s signature as %+v, %v", envelopeType, got, ok)
		}
		if r := do(t, n.srv, "GET", "/v2/acme/app/manifests/"+sig.Digest.String(), nil, nil); r.status != 200 {
			t.Errorf("GET of alice's %s signature: %d", envelopeType, r.status)
		}
		if r := do(t, n.srv, "GET", "/v2/acme/app/blobs/"+sig.EnvelopeDigest.String(), nil, nil); r.status != 200 || string(r.body) != string(sig.Envelope) {
			t.Errorf("GET of alice's %s envelope: %d", envelopeType, r.status)
		}
	}

	// A subject field's size and media type are the stored subject's: a signer
	// may sign the digest with other ones, but the registry does not serve them.
	wrong := n.img
	wrong.Size++
	misdescribed := notationtest.Sign(t, n.alice, notationtest.JWS, wrong, notationtest.Options{})
	for _, b := range misdescribed.Blobs() {
		pushBlob(t, n.srv, "acme/app", b)
	}
	if r := n.put(t, misdescribed.Digest.String(), misdescribed.Manifest); r.status != 403 || errorCode(t, r) != "DENIED" {
		t.Errorf("a signature describing the subject with another size: %d %s, want 403 DENIED", r.status, r.body)
	}

	// Nor is it pushed under a cosign tag, where cosign looks for its own
	// formats; nor a cosign signature under ".att".
	underTag := n.notate(t, n.alice, notationtest.JWS, notationtest.Options{})
	cosigned := n.cosign(t, n.alice, nil)
	att := strings.TrimSuffix(n.sigTag(), ".sig") + ".att"
	for name, c := range map[string]struct {
		tag      string
		manifest []byte
	}{
		"a notation signature under .sig": {n.sigTag(), underTag.Manifest},
		"a notation signature under .att": {att, underTag.Manifest},
		"a cosign signature under .att":   {att, cosigned.Manifest},
	} {
		if r := n.put(t, c.tag, c.manifest); r.status != 403 || errorCode(t, r) != "DENIED" {
			t.Errorf("%s: %d %s, want 403 DENIED", name, r.status, r.body)
		}
	}

	// A second signed image, to swap subjects with.
	m2 := n.image2(t)
	carol := newSignerKey(t, "carol")
	sig := n.notate(t, n.alice, notationtest.JWS, notationtest.Options{})
	forOther := n.notate(t, n.alice, notationtest.JWS, notationtest.Options{Target: &m2})
	extra := pushBlob(t, n.srv, "acme/app", []byte("any bytes at all, served as if signed"))
	forged := map[string][]byte{
		"a signature by a certificate whose key is not delegated": n.notate(t, carol, notationtest.JWS, notationtest.Options{}).Manifest,
		"an extra blob": edit(t, sig.Manifest, func(m map[string]any) {
			m["layers"] = append(m["layers"].([]any), map[string]any{"mediaType": "application/octet-stream", "digest": extra.String(), "size": 37})
		}),
		"a swapped subject": edit(t, sig.Manifest, func(m map[string]any) {
			m["subject"] = map[string]any{"mediaType": m2.MediaType, "digest": m2.Digest.String(), "size": m2.Size}
		}),
		"an envelope for another digest": notationtest.Manifest(t, notationtest.JWS, forOther.Envelope, n.img, forOther.Chain, forOther.SigningTime),
	}
	for name, m := range forged {
		d := digest.FromBytes(m)
		if r := n.put(t, d.String(), m); r.status != 403 || errorCode(t, r) != "DENIED" {
			t.Errorf("%s: %d %s, want 403 DENIED", name, r.status, r.body)
		}
		if _, err := n.store.GetManifest(context.Background(), "acme/app", d.String()); err == nil {
			t.Errorf("%s was stored", name)
		}
		if _, ok := n.listed(t)[d]; ok {
			t.Errorf("%s is listed by the referrers API", name)
		}
	}
	if r := do(t, n.srv, "GET", "/v2/acme/app/blobs/"+extra.String(), nil, nil); r.status != 404 {
		t.Errorf("GET of the extra blob: %d, want 404", r.status)
	}
}

// image2 pushes and signs a second image, acme/app:v2, and returns it.
func (n *notary) image2(t *testing.T) ocispec.Descriptor {
	t.Helper()
	m := n.image(t, "acme/app", "second")
	n.sign("acme/app:v2", m)
	n.clock.Advance(1100 * time.Millisecond)
	if err := n.index.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := putManifest(t, n.srv, "acme/app", "v2", m); r.status != 201 {
		t.Fatalf("the second signed push: %d %s", r.status, r.body)
	}
	return ocispec.Descriptor{MediaType: storage.MediaTypeOCIManifest, Digest: digest.FromBytes(m), Size: int64(len(m))}
}

// TestTheReferrersTagIndexListsOnlyWhatTheReferrersAPIServes follows
// notation's default flow (the referrers tag schema): an index of admitted
// signatures is admitted and served under the tag; one with an unsigned
// referrer slipped in, or with a descriptor that is not the stored one, is
// refused; the superseded index may be deleted, the current one may not.
func TestTheReferrersTagIndexListsOnlyWhatTheReferrersAPIServes(t *testing.T) {
	t.Parallel()
	n := newNotary(t)
	ctx := context.Background()
	first := n.notate(t, n.alice, notationtest.JWS, notationtest.Options{})
	if r := n.put(t, first.Digest.String(), first.Manifest); r.status != 201 {
		t.Fatalf("alice's signature: %d %s", r.status, r.body)
	}
	if r := do(t, n.srv, "GET", "/v2/acme/app/manifests/"+n.referrersTag(), nil, nil); r.status != 404 {
		t.Fatalf("the referrers tag before any index: %d, want 404", r.status)
	}
	index1 := indexOf(t, referrer(t, first.Manifest))
	if r := n.putIndex(t, index1); r.status != 201 {
		t.Fatalf("the index of alice's signature: %d %s", r.status, r.body)
	}
	if r := do(t, n.srv, "GET", "/v2/acme/app/manifests/"+n.referrersTag(), nil, nil); r.status != 200 || string(r.body) != string(index1) {
		t.Fatalf("the referrers tag: %d %s, want the index", r.status, r.body)
	}
	if r := do(t, n.srv, "GET", "/v2/acme/app/tags/list", nil, nil); !strings.Contains(string(r.body), `"`+n.referrersTag()+`"`) {
		t.Errorf("the tag list: %s, want the referrers tag", r.body)
	}

	// An unsigned referrer, stored as the gate before this one would have
	// stored nothing else: the referrers API does not list it.
	sbom := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/spdx+json","digest":"` + pushBlob(t, n.srv, "acme/app", []byte(`{"spdx":"unsigned"}`)).String() + `","size":19}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + n.img.Digest.String() + `","size":` + itoa(int(n.img.Size)) + `}}`)
	if _, err := n.store.PutManifest(ctx, "acme/app", digest.FromBytes(sbom).String(), storage.MediaTypeOCIManifest, sbom, nil); err != nil {
		t.Fatal(err)
	}
	sbomDesc := ocispec.Descriptor{MediaType: storage.MediaTypeOCIManifest, Digest: digest.FromBytes(sbom), Size: int64(len(sbom)), ArtifactType: "application/spdx+json"}
	second := n.notate(t, n.bob, notationtest.COSE, notationtest.Options{})
	if r := n.put(t, second.Digest.String(), second.Manifest); r.status != 201 {
		t.Fatalf("bob's signature: %d %s", r.status, r.body)
	}
	changed := referrer(t, second.Manifest)
	changed.Annotations = map[string]string{"org.example.note": "not what was pushed"}
	for name, index := range map[string][]byte{
		"an unsigned referrer slipped in":         indexOf(t, referrer(t, first.Manifest), referrer(t, second.Manifest), sbomDesc),
		"a descriptor that is not the stored one": indexOf(t, referrer(t, first.Manifest), changed),
		"a referrer listed twice":                 indexOf(t, referrer(t, first.Manifest), referrer(t, first.Manifest)),
		"a field oras does not write":             edit(t, indexOf(t, referrer(t, first.Manifest)), func(m map[string]any) { m["annotations"] = map[string]any{"a": "b"} }),
	} {
		if r := n.putIndex(t, index); r.status != 403 || errorCode(t, r) != "DENIED" {
			t.Errorf("an index with %s: %d %s, want 403 DENIED", name, r.status, r.body)
		}
	}
	if r := do(t, n.srv, "GET", "/v2/acme/app/manifests/"+n.referrersTag(), nil, nil); r.status != 200 || string(r.body) != string(index1) {
		t.Fatalf("the referrers tag after the refusals: %d %s, want the first index", r.status, r.body)
	}

	// Notation's next signature: the index with both, then the DELETE of the
	// one it read.
	index2 := indexOf(t, referrer(t, first.Manifest), referrer(t, second.Manifest))
	if r := n.putIndex(t, index2); r.status != 201 {
		t.Fatalf("the index of both signatures: %d %s", r.status, r.body)
	}
	if r := do(t, n.srv, "DELETE", "/v2/acme/app/manifests/"+digest.FromBytes(index2).String(), nil, nil); r.status != 403 {
		t.Errorf("DELETE of the current index: %d %s, want 403", r.status, r.body)
	}
	if r := do(t, n.srv, "DELETE", "/v2/acme/app/manifests/"+digest.FromBytes(index1).String(), nil, nil); r.status != 202 {
		t.Errorf("DELETE of the superseded index: %d %s, want 202", r.status, r.body)
	}
	if r := do(t, n.srv, "GET", "/v2/acme/app/manifests/"+n.referrersTag(), nil, nil); r.status != 200 || string(r.body) != string(index2) {
		t.Errorf("the referrers tag: %d %s, want the index of both", r.status, r.body)
	}
}

// TestNothingOfAnUndelegatedNotationSignerIsServed: once alice's key is no
// longer delegated, neither her signature, its envelope, nor the referrers
// index that lists it is served, by digest, in the referrers list or under the
// referrers tag; a signature past its signed expiry is not served either.
func TestNothingOfAnUndelegatedNotationSignerIsServed(t *testing.T) {
	t.Parallel()
	n := newNotary(t)
	sig := n.notate(t, n.alice, notationtest.COSE, notationtest.Options{})
	expiring := n.notate(t, n.bob, notationtest.JWS, notationtest.Options{Expiry: time.Hour})
	for _, s := range []*notationtest.Signature{sig, expiring} {
		if r := n.put(t, s.Digest.String(), s.Manifest); r.status != 201 {
			t.Fatalf("a signature: %d %s", r.status, r.body)
		}
	}
	if r := n.putIndex(t, indexOf(t, referrer(t, sig.Manifest))); r.status != 201 {
		t.Fatalf("the index: %d %s", r.status, r.body)
	}
	served := func(what, path string) bool {
		t.Helper()
		r := do(t, n.srv, "GET", path, nil, nil)
		if r.status != 200 && r.status != 404 {
			t.Fatalf("GET %s: %d %s", what, r.status, r.body)
		}
		return r.status == 200
	}
	if !served("alice's signature", "/v2/acme/app/manifests/"+sig.Digest.String()) || !served("bob's", "/v2/acme/app/manifests/"+expiring.Digest.String()) {
		t.Fatal("the signatures are not served while delegated")
	}

	n.clock.Advance(time.Hour)
	if served("bob's signature past its expiry", "/v2/acme/app/manifests/"+expiring.Digest.String()) {
		t.Error("bob's signature is served past its expiry")
	}
	if _, ok := n.listed(t)[expiring.Digest]; ok {
		t.Error("the referrers API lists bob's signature past its expiry")
	}
	n.clock.Advance(1100 * time.Millisecond) // the blob set is made again at most once a second
	if served("bob's envelope past its expiry", "/v2/acme/app/blobs/"+expiring.EnvelopeDigest.String()) {
		t.Error("bob's envelope is served past his signature's expiry")
	}

	n.tuf.Delegate("org-acme", trustnames.RoleForRepo("acme/app"), trustnames.RepoPaths("acme/app"), "bob")
	n.tuf.Publish("org-acme")
	n.clock.Advance(1100 * time.Millisecond)
	if err := n.index.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for what, path := range map[string]string{
		"alice's signature": "/v2/acme/app/manifests/" + sig.Digest.String(),
		"her envelope":      "/v2/acme/app/blobs/" + sig.EnvelopeDigest.String(),
		"the referrers tag": "/v2/acme/app/manifests/" + n.referrersTag(),
		"the image, still":  "/v2/acme/app/manifests/v1",
	} {
		if got, want := served(what, path), what == "the image, still"; got != want {
			t.Errorf("after alice's key was undelegated, %s served: %v, want %v", what, got, want)
		}
	}
	if _, ok := n.listed(t)[sig.Digest]; ok {
		t.Error("the referrers API lists alice's signature after her key was undelegated")
	}
	if r := do(t, n.srv, "GET", "/v2/acme/app/tags/list", nil, nil); strings.Contains(string(r.body), n.referrersTag()) {
		t.Errorf("the tag list after alice's key was undelegated: %s", r.body)
	}
}

// attest makes the artifact `cosign attest --key` pushes under the image's
// ".att" tag, one layer per predicate type, each signed by key, and pushes
// its blobs.
func (n *notary) attest(t *testing.T, key *signer.Key, predicateTypes ...string) []byte {
	t.Helper()
	return n.attestWith(t, key, map[string]any{"builder": map[string]any{"id": "https://example.com/builder"}}, predicateTypes...)
}

// attestWith is attest with predicate as every statement's predicate.
func (n *notary) attestWith(t *testing.T, key *signer.Key, predicate map[string]any, predicateTypes ...string) []byte {
	t.Helper()
	return attestation(t, n.srv, "acme/app", n.img.Digest, key, predicate, predicateTypes...)
}

// attestation makes the artifact `cosign attest --key` pushes under subject's
// ".att" tag in repo, one layer per predicate type, each signed by key with
// predicate, and pushes its blobs.
func attestation(t *testing.T, srv *httptest.Server, repo string, subject digest.Digest, key *signer.Key, predicate map[string]any, predicateTypes ...string) []byte {
	t.Helper()
	var layers []json.RawMessage
	for _, pt := range predicateTypes {
		st, err := json.Marshal(map[string]any{
			"_type":         "https://in-toto.io/Statement/v0.1",
			"predicateType": pt,
			"subject":       []any{map[string]any{"name": strings.TrimPrefix(srv.URL, "http://") + "/" + repo, "digest": map[string]any{"sha256": subject.Encoded()}}},
			"predicate":     predicate,
		})
		if err != nil {
			t.Fatal(err)
		}
		eb, err := signer.SignDSSE(key.Signer, verify.InTotoPayloadType, st)
		if err != nil {
			t.Fatal(err)
		}
		pushBlob(t, srv, repo, eb)
		l, err := json.Marshal(map[string]any{"mediaType": "application/vnd.dsse.envelope.v1+json", "size": len(eb), "digest": digest.FromBytes(eb),
			"annotations": map[string]any{signer.CosignSignatureAnnotation: "", "predicateType": pt}})
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	config, err := signer.CosignConfig(layers)
	if err != nil {
		t.Fatal(err)
	}
	pushBlob(t, srv, repo, config)
	m, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": storage.MediaTypeOCIManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config), "digest": digest.FromBytes(config)},
		"layers": layers})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestACosignAttestationIsAdmittedUnderItsTagByADelegatedKey: alice's
// attestation is admitted under the image's ".att" tag and served; she may
// replace it with two predicates signed by her one key; carol's, not
// delegated, is refused; the artifact under the tag is not deleted; once
// alice is undelegated, neither it nor its envelopes are served.
func TestACosignAttestationIsAdmittedUnderItsTagByADelegatedKey(t *testing.T) {
	t.Parallel()
	n := newNotary(t)
	att := strings.TrimSuffix(n.sigTag(), ".sig") + ".att"
	const slsa, spdx = "https://slsa.dev/provenance/v1", "https://spdx.dev/Document"
	if r := n.put(t, att, n.attest(t, n.alice, slsa)); r.status != 201 {
		t.Fatalf("alice's attestation: %d %s", r.status, r.body)
	}
	both := n.attest(t, n.alice, slsa, spdx)
	if r := n.put(t, att, both); r.status != 201 {
		t.Fatalf("alice's two attestations by one key: %d %s", r.status, r.body)
	}
	if r := n.put(t, att, n.attest(t, newSignerKey(t, "carol"), slsa)); r.status != 403 || errorCode(t, r) != "DENIED" {
		t.Errorf("carol's attestation: %d %s, want 403 DENIED", r.status, r.body)
	}
	if r := do(t, n.srv, "GET", "/v2/acme/app/manifests/"+att, nil, nil); r.status != 200 || string(r.body) != string(both) {
		t.Fatalf("GET of the attestation tag: %d, want alice's two attestations", r.status)
	}
	if r := do(t, n.srv, "DELETE", "/v2/acme/app/manifests/"+digest.FromBytes(both).String(), nil, nil); r.status != 403 {
		t.Errorf("DELETE of the artifact under the attestation tag: %d %s, want 403", r.status, r.body)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(both, &m); err != nil {
		t.Fatal(err)
	}

	// An SBOM is often larger than a signature payload may be: its envelope
	// is read up to verify.MaxReferrerBlob.
	sbom := n.attestWith(t, n.alice, map[string]any{"packages": strings.Repeat("p", 3<<20)}, slsa, spdx)
	if r := n.put(t, att, sbom); r.status != 201 {
		t.Fatalf("alice's 3 MiB SBOM attestation: %d %s", r.status, r.body)
	}
	both = sbom
	if err := json.Unmarshal(both, &m); err != nil {
		t.Fatal(err)
	}

	n.tuf.Delegate("org-acme", trustnames.RoleForRepo("acme/app"), trustnames.RepoPaths("acme/app"), "bob")
	n.tuf.Publish("org-acme")
	n.clock.Advance(1100 * time.Millisecond)
	if err := n.index.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := do(t, n.srv, "GET", "/v2/acme/app/manifests/"+att, nil, nil); r.status != 404 {
		t.Errorf("GET of the attestation tag after alice was undelegated: %d, want 404", r.status)
	}
	for _, l := range m.Layers {
		if r := do(t, n.srv, "GET", "/v2/acme/app/blobs/"+l.Digest.String(), nil, nil); r.status != 404 {
			t.Errorf("GET of an envelope of alice's after she was undelegated: %d, want 404", r.status)
		}
	}
}
