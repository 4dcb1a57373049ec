package verify_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/internal/cosigntest"
	"github.com/signet-oss/signet/internal/notationtest"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

// notationCase is a notation signature as a test presents it to CheckReferrer.
type notationCase struct {
	manifest []byte
	blobs    cosigntest.Blobs
	subject  digest.Digest
	now      func() time.Time
}

// editJSON decodes a JSON object, changes it and encodes it again.
func editJSON(t *testing.T, b []byte, change func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNotationSignaturesAreAdmittedOnlyInNotationsShapeByADelegatedKey checks
// real JWS and COSE envelopes made by notation-core-go: alice's, in the
// manifest notation pushes, verifies with her key's TUF ID; every forged
// variant, and a signature by a key not delegated, does not.
func TestNotationSignaturesAreAdmittedOnlyInNotationsShapeByADelegatedKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const repo = "acme/app"
	alice, err := signer.NewKey("alice", signer.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := signer.NewKey("bob", signer.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	aliceID, _ := alice.TUF.ID()
	keys := verify.NewKeys(alice.TUF)
	image := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("the signed image"), Size: 1234}
	other := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("another image"), Size: 1234}

	for _, envelopeType := range []string{notationtest.JWS, notationtest.COSE} {
		t.Run(envelopeType, func(t *testing.T) {
			t.Parallel()
			sig := notationtest.Sign(t, alice, envelopeType, image, notationtest.Options{})
			blobs := func(s *notationtest.Signature) cosigntest.Blobs { return cosigntest.Blobs(s.Blobs()) }
			good := notationCase{manifest: sig.Manifest, blobs: blobs(sig), subject: image.Digest}
			check := func(c notationCase) (verify.Referrer, error) {
				mt := ocispec.MediaTypeImageManifest
				return verify.CheckReferrer(ctx, verify.Artifact{MediaType: mt, Manifest: c.manifest, Blob: c.blobs.Get, Now: c.now}, keys, repo, c.subject)
			}

			if f, ok := verify.ReferrerFormat(ocispec.MediaTypeImageManifest, sig.Manifest); !ok || f != verify.FormatNotation {
				t.Fatalf("routed as %q, %v; want notation", f, ok)
			}
			r, err := check(good)
			if err != nil || r.Verified() != nil {
				t.Fatalf("alice's signature: %v, verified: %v", err, r.Verified())
			}
			if r.Format != verify.FormatNotation || len(r.Signatures) != 1 || r.Signatures[0].KeyID != aliceID || r.Signatures[0].Layer.Digest != sig.EnvelopeDigest {
				t.Errorf("alice's signature read as %+v, want one by key %s in layer %s", r, aliceID, sig.EnvelopeDigest)
			}

			withEnvelope := func(envelope []byte) notationCase {
				m := notationtest.Manifest(t, envelopeType, envelope, image, sig.Chain, sig.SigningTime)
				b := blobs(sig)
				b[digest.FromBytes(envelope)] = envelope
				return notationCase{manifest: m, blobs: b, subject: image.Digest}
			}
			edited := func(change func(m map[string]any)) notationCase {
				c := good
				c.manifest = editJSON(t, sig.Manifest, change)
				return c
			}
			forOther := notationtest.Sign(t, alice, envelopeType, image, notationtest.Options{Target: &other})
			bobs := notationtest.Sign(t, bob, envelopeType, image, notationtest.Options{})
			expiring := notationtest.Sign(t, alice, envelopeType, image, notationtest.Options{Expiry: time.Hour})
			bigger := image
			bigger.Size++
			biggerTarget := notationtest.Sign(t, alice, envelopeType, image, notationtest.Options{Target: &bigger})
			userMetadata := image
			userMetadata.Annotations = map[string]string{"buildID": "42"}
			withMetadata := notationtest.Sign(t, alice, envelopeType, image, notationtest.Options{Target: &userMetadata})

			cases := []struct {
				name string
				c    notationCase
				want string // in the error, or in Verified's; "" when it verifies
			}{
				{"one with user metadata in its payload verifies", notationCase{manifest: withMetadata.Manifest, blobs: blobs(withMetadata), subject: image.Digest}, ""},
				{"one that has not expired yet verifies", notationCase{manifest: expiring.Manifest, blobs: blobs(expiring), subject: image.Digest, now: func() time.Time { return expiring.SigningTime.Add(59 * time.Minute) }}, ""},
				{"one whose expiry has passed is refused", notationCase{manifest: expiring.Manifest, blobs: blobs(expiring), subject: image.Digest, now: func() time.Time { return expiring.SigningTime.Add(time.Hour) }}, "expired"},
				{"an envelope for another digest under this subject is refused", notationCase{manifest: notationtest.Manifest(t, envelopeType, forOther.Envelope, image, forOther.Chain, forOther.SigningTime), blobs: blobs(forOther), subject: image.Digest}, "the envelope signs"},
				{"an envelope whose target size is not the subject's is refused", notationCase{manifest: notationtest.Manifest(t, envelopeType, biggerTarget.Envelope, image, biggerTarget.Chain, biggerTarget.SigningTime), blobs: blobs(biggerTarget), subject: image.Digest}, "the envelope signs"},
				{"a signature checked for another subject is refused", notationCase{manifest: sig.Manifest, blobs: blobs(sig), subject: other.Digest}, "has the subject"},
				{"a swapped subject is refused", edited(func(m map[string]any) {
					m["subject"].(map[string]any)["digest"] = other.Digest.String()
				}), "has the subject"},
				{"a swapped subject checked for that subject is refused", func() notationCase {
					c := edited(func(m map[string]any) { m["subject"].(map[string]any)["digest"] = other.Digest.String() })
					c.subject = other.Digest
					return c
				}(), "the envelope signs"},
				{"an extra layer is refused", edited(func(m map[string]any) {
					m["layers"] = append(m["layers"].([]any), map[string]any{"mediaType": "application/octet-stream", "digest": digest.FromString("any").String(), "size": 3})
				}), "2 layers"},
				{"a config blob of the pusher's is refused", edited(func(m map[string]any) {
					m["config"].(map[string]any)["digest"] = digest.FromString("any").String()
				}), "the config"},
				{"an extra manifest annotation is refused", edited(func(m map[string]any) {
					m["annotations"].(map[string]any)["org.example.note"] = "unsigned"
				}), "org.example.note"},
				{"an artifactType is refused", edited(func(m map[string]any) { m["artifactType"] = "application/vnd.cncf.notary.signature" }), "artifactType"},
				{"a layer annotation is refused", edited(func(m map[string]any) {
					m["layers"].([]any)[0].(map[string]any)["annotations"] = map[string]any{"a": "b"}
				}), "annotations"},
				{"a thumbprint that is not the chain's is refused", edited(func(m map[string]any) {
					m["annotations"].(map[string]any)[verify.NotationThumbprintAnnotation] = `["` + strings.Repeat("ab", 32) + `"]`
				}), "thumbprint"},
				{"a creation time that is not the signing time is refused", edited(func(m map[string]any) {
					m["annotations"].(map[string]any)[ocispec.AnnotationCreated] = sig.SigningTime.Add(time.Hour).UTC().Format(time.RFC3339)
				}), "signing time"},
				{"a key given twice is refused", notationCase{manifest: []byte(strings.Replace(string(sig.Manifest), `"schemaVersion":2,`, `"schemaVersion":2,"schemaVersion":2,`, 1)), blobs: blobs(sig), subject: image.Digest}, "twice"},
				{"an envelope blob that is not the layer's is refused", notationCase{manifest: sig.Manifest, blobs: cosigntest.Blobs{sig.EnvelopeDigest: append([]byte(" "), sig.Envelope...)}, subject: image.Digest}, "not the one the layer names"},
				{"a signature by a key not delegated is refused", notationCase{manifest: bobs.Manifest, blobs: blobs(bobs), subject: image.Digest}, "not one of the 1 keys delegated"},
			}
			if envelopeType == notationtest.JWS {
				cases = append(cases, struct {
					name string
					c    notationCase
					want string
				}{"a JWS envelope with a member of the pusher's own is refused", withEnvelope(editJSON(t, sig.Envelope, func(m map[string]any) { m["note"] = "unsigned" })), `"note"`},
					struct {
						name string
						c    notationCase
						want string
					}{"a JWS envelope with its key in another case is refused", withEnvelope(editJSON(t, sig.Envelope, func(m map[string]any) { m["Payload"] = m["payload"]; delete(m, "payload") })), `"Payload"`},
				)
			}
			for _, c := range cases {
				r, err := check(c.c)
				if err == nil {
					err = r.Verified()
				}
				switch {
				case c.want == "" && err != nil:
					t.Errorf("%s: %v", c.name, err)
				case c.want != "" && err == nil:
					t.Errorf("%s: it verifies", c.name)
				case c.want != "" && !strings.Contains(err.Error(), c.want):
					t.Errorf("%s: %v, want an error about %q", c.name, err, c.want)
				}
			}
		})
	}
}

// FuzzNotation feeds the notation check the untrusted bytes the registry's
// gate hands it: a manifest and an envelope. It must never panic, and never
// accept a signature the key did not make.
func FuzzNotation(f *testing.F) {
	alice, err := signer.NewKey("alice", signer.ECDSAP256)
	if err != nil {
		f.Fatal(err)
	}
	image := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("the signed image"), Size: 1234}
	signed := map[string]bool{}
	for _, envelopeType := range []string{notationtest.JWS, notationtest.COSE} {
		sig := notationtest.Sign(f, alice, envelopeType, image, notationtest.Options{})
		r, err := verify.CheckReferrer(context.Background(), verify.Artifact{Manifest: sig.Manifest, Blob: cosigntest.Blobs(sig.Blobs()).Get}, verify.NewKeys(alice.TUF), "acme/app", image.Digest)
		if err != nil || r.Verified() != nil {
			f.Fatalf("the seed does not verify: %v, %v", err, r.Verified())
		}
		signed[string(r.Signatures[0].Signature)] = true
		f.Add(sig.Manifest, sig.Envelope)
	}
	f.Fuzz(func(t *testing.T, manifest, envelope []byte) {
		blob := func(digest.Digest) ([]byte, error) { return envelope, nil }
		r, err := verify.CheckReferrer(context.Background(), verify.Artifact{Manifest: manifest, Blob: blob}, verify.NewKeys(alice.TUF), "acme/app", image.Digest)
		if err == nil && r.Verified() == nil && !signed[string(r.Signatures[0].Signature)] {
			t.Fatalf("accepted a signature alice never made: %q", envelope)
		}
	})
}

// FuzzReferrersIndex reads untrusted referrers indexes: never a panic, and
// every entry it returns has a valid digest.
func FuzzReferrersIndex(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"artifactType":"application/vnd.cncf.notary.signature","annotations":{"a":"b"}}]}`))
	f.Fuzz(func(t *testing.T, index []byte) {
		entries, err := verify.ReferrersIndex(index)
		for _, e := range entries {
			if err == nil && e.Digest.Validate() != nil {
				t.Fatalf("an entry with the digest %q", e.Digest)
			}
		}
	})
}
