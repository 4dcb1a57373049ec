package verify_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/internal/cosigntest"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

// statement is an in-toto statement as cosign writes it.
func statement(name string, subject digest.Digest, predicateType string) map[string]any {
	return map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": predicateType,
		"subject":       []any{map[string]any{"name": name, "digest": map[string]any{subject.Algorithm().String(): subject.Encoded()}}},
		"predicate":     map[string]any{"builder": map[string]any{"id": "https://example.com/builder"}},
	}
}

// envelope signs st with key in a DSSE envelope as cosign writes it.
func envelope(t *testing.T, key crypto.Signer, st any) []byte {
	t.Helper()
	body, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	out, err := signer.SignDSSE(key, verify.InTotoPayloadType, body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// testCosignKey is cosign's test-cosign-1 key, which signed the fixtures.
func testCosignKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := signer.ParseCosignPrivateKey(cosigntest.Fixture(t, "test-cosign-1.key"), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestCosignAttestation checks cosign's attestation artifacts as cosign
// v2.6.5 wrote them (internal/cosigntest's fixtures): each layer reports its
// key and predicate type; every variant cosign writes is admitted; a field
// cosign does not write, an envelope that does not verify with a delegated
// key, or a statement about another image or repository is refused.
func TestCosignAttestation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const repo = "acme/app"
	subject := cosigntest.AttestedDigest
	slsa, custom := cosigntest.Fixture(t, "slsa.envelope.json"), cosigntest.Fixture(t, "custom.envelope.json")
	blobs := cosigntest.Blobs{digest.FromBytes(slsa): slsa, digest.FromBytes(custom): custom}
	keys := verify.NewKeys(cosigntest.Key(t, "test-cosign-1.pub"))
	keyID, _ := cosigntest.Key(t, "test-cosign-1.pub").ID()
	priv := testCosignKey(t)
	cert, ca := certificateFor(t, priv.Public())
	otherCert, _ := certificateFor(t, ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))

	check := func(manifest []byte, b cosigntest.Blobs, keys verify.Keys, repo string, subject digest.Digest) (verify.Referrer, error) {
		return verify.CheckReferrer(ctx, verify.Artifact{MediaType: "application/vnd.oci.image.manifest.v1+json", Manifest: manifest, Blob: b.Get}, keys, repo, subject)
	}
	base := func() map[string]any {
		var m map[string]any
		if err := json.Unmarshal(cosigntest.Fixture(t, "one-attestation.manifest.json"), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	layer := func(m map[string]any, i int) map[string]any { return m["layers"].([]any)[i].(map[string]any) }
	annotate := func(k, v string) func(map[string]any) {
		return func(m map[string]any) { layer(m, 0)["annotations"].(map[string]any)[k] = v }
	}
	// withBlob makes layer 0 name blob b, and serves it.
	withBlob := func(b []byte) func(map[string]any, cosigntest.Blobs) {
		return func(m map[string]any, bs cosigntest.Blobs) {
			bs[digest.FromBytes(b)] = b
			layer(m, 0)["digest"], layer(m, 0)["size"] = digest.FromBytes(b).String(), len(b)
		}
	}
	// editEnvelope re-encodes the SLSA envelope with edit applied.
	editEnvelope := func(edit func(map[string]any)) []byte {
		var e map[string]any
		if err := json.Unmarshal(slsa, &e); err != nil {
			t.Fatal(err)
		}
		edit(e)
		b, _ := json.Marshal(e)
		return b
	}

	t.Run("cosign's attestations are admitted, each with its key and predicate type", func(t *testing.T) {
		for _, name := range []string{"one-attestation.manifest.json", "two-attestations.manifest.json"} {
			r, err := check(cosigntest.Fixture(t, name), blobs, keys, repo, subject)
			if err != nil || r.Format != verify.FormatCosignAttestation || r.Verified() != nil {
				t.Fatalf("%s: %+v, %v, verified: %v", name, r, err, r.Verified())
			}
			want := []string{"https://slsa.dev/provenance/v1", "https://example.com/custom/v1"}[:len(r.Signatures)]
			for i, s := range r.Signatures {
				if s.KeyID != keyID || s.PredicateType != want[i] || len(s.Signature) == 0 {
					t.Errorf("%s: attestation %d by %q of %q, want %q of %q", name, i, s.KeyID, s.PredicateType, keyID, want[i])
				}
			}
		}
		// The repository may be given with the host the statement names.
		if r, err := check(cosigntest.Fixture(t, "two-attestations.manifest.json"), blobs, keys, cosigntest.Ref, subject); err != nil || r.Verified() != nil {
			t.Errorf("with the host: %v, %v", err, r.Verified())
		}
	})

	t.Run("admitted variants", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			edit func(map[string]any, cosigntest.Blobs)
		}{
			{"in Docker's media types (COSIGN_DOCKER_MEDIA_TYPES=1)", func(m map[string]any, _ cosigntest.Blobs) {
				m["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json"
				m["config"].(map[string]any)["mediaType"] = "application/vnd.docker.container.image.v1+json"
			}},
			{"with a Rekor bundle", func(m map[string]any, _ cosigntest.Blobs) { annotate(verify.CosignBundleAnnotation, rekorBundle)(m) }},
			{"with an RFC 3161 timestamp", func(m map[string]any, _ cosigntest.Blobs) {
				annotate(verify.CosignTimestampAnnotation, tsaTimestamp)(m)
			}},
			{"with the key's certificate and its chain", func(m map[string]any, _ cosigntest.Blobs) {
				annotate(verify.CosignCertificateAnnotation, cert)(m)
				annotate(verify.CosignChainAnnotation, ca)(m)
			}},
			{"a statement v1 with the repository and a tag", func(m map[string]any, b cosigntest.Blobs) {
				st := statement(cosigntest.Ref+":v1", subject, "https://slsa.dev/provenance/v1")
				st["_type"] = "https://in-toto.io/Statement/v1"
				withBlob(envelope(t, priv, st))(m, b)
				withDerivedConfig(t, m)
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m, b := base(), cosigntest.Blobs{}
				for d, v := range blobs {
					b[d] = v
				}
				tc.edit(m, b)
				manifest, _ := json.Marshal(m)
				if r, err := check(manifest, b, keys, repo, subject); err != nil || r.Verified() != nil {
					t.Errorf("refused: %v, %v", err, r.Verified())
				}
			})
		}
	})

	t.Run("several attestations by one key, with an Ed25519 key", func(t *testing.T) {
		k, err := signer.NewKey("alice", signer.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		m, b := base(), cosigntest.Blobs{}
		withBlob(envelope(t, k.Signer, statement(cosigntest.Ref, subject, "https://slsa.dev/provenance/v1")))(m, b)
		second := map[string]any{}
		for k, v := range layer(m, 0) {
			second[k] = v
		}
		m["layers"] = append(m["layers"].([]any), second)
		withDerivedConfig(t, m)
		manifest, _ := json.Marshal(m)
		r, err := check(manifest, b, verify.NewKeys(k.TUF), repo, subject)
		if err != nil || r.Verified() != nil || len(r.Signatures) != 2 {
			t.Fatalf("%+v, %v, verified: %v", r, err, r.Verified())
		}
	})

	t.Run("refused", func(t *testing.T) {
		other := digest.FromString("another image")
		for _, tc := range []struct {
			name string
			edit func(map[string]any, cosigntest.Blobs)
			keys verify.Keys
			repo string
			want string
		}{
			{"checked with a key that is not delegated", nil, verify.NewKeys(cosigntest.Key(t, "test-cosign-2.pub")), "", "does not verify"},
			{"checked for another repository", nil, verify.Keys{}, "acme/other", `names "127.0.0.1:34259/acme/app"`},
			{"an envelope for another digest, placed as this image's", func(m map[string]any, b cosigntest.Blobs) {
				withBlob(envelope(t, priv, statement(cosigntest.Ref, other, "https://slsa.dev/provenance/v1")))(m, b)
				withDerivedConfig(t, m)
			}, verify.Keys{}, "", "not " + subject.String()},
			{"a statement about two images", func(m map[string]any, b cosigntest.Blobs) {
				st := statement(cosigntest.Ref, subject, "https://slsa.dev/provenance/v1")
				st["subject"] = append(st["subject"].([]any), map[string]any{"name": cosigntest.Ref, "digest": map[string]any{"sha256": other.Encoded()}})
				withBlob(envelope(t, priv, st))(m, b)
				withDerivedConfig(t, m)
			}, verify.Keys{}, "", "2 subjects"},
			{"a subject with a second digest", func(m map[string]any, b cosigntest.Blobs) {
				st := statement(cosigntest.Ref, subject, "https://slsa.dev/provenance/v1")
				st["subject"].([]any)[0].(map[string]any)["digest"].(map[string]any)["sha512"] = "00"
				withBlob(envelope(t, priv, st))(m, b)
				withDerivedConfig(t, m)
			}, verify.Keys{}, "", "not " + subject.String()},
			{"a payload that is not a statement", func(m map[string]any, b cosigntest.Blobs) {
				st := statement(cosigntest.Ref, subject, "https://slsa.dev/provenance/v1")
				st["_type"] = "https://example.com/not-a-statement"
				withBlob(envelope(t, priv, st))(m, b)
				withDerivedConfig(t, m)
			}, verify.Keys{}, "", "not an in-toto statement"},
			{"a predicateType annotation that is not the statement's", func(m map[string]any, _ cosigntest.Blobs) {
				annotate(verify.PredicateTypeAnnotation, "https://spdx.dev/Document")(m)
			}, verify.Keys{}, "", "is not its annotation's"},
			{"no predicateType annotation", func(m map[string]any, _ cosigntest.Blobs) {
				delete(layer(m, 0)["annotations"].(map[string]any), verify.PredicateTypeAnnotation)
			}, verify.Keys{}, "", "no predicateType annotation"},
			{"a signature in the signature annotation", func(m map[string]any, _ cosigntest.Blobs) {
				annotate(signer.CosignSignatureAnnotation, "AA==")(m)
			}, verify.Keys{}, "", "not empty"},
			{"a layer annotation cosign does not write", func(m map[string]any, _ cosigntest.Blobs) {
				annotate("org.opencontainers.image.title", "x")(m)
			}, verify.Keys{}, "", "which a signer does not write"},
			{"a certificate for another key", func(m map[string]any, _ cosigntest.Blobs) {
				annotate(verify.CosignCertificateAnnotation, otherCert)(m)
			}, verify.Keys{}, "", "another key"},
			{"a subject field", func(m map[string]any, _ cosigntest.Blobs) {
				m["subject"] = map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2, "digest": subject.String()}
			}, verify.Keys{}, "", `field "subject"`},
			{"manifest annotations", func(m map[string]any, _ cosigntest.Blobs) {
				m["annotations"] = map[string]any{"org.example": "x"}
			}, verify.Keys{}, "", `field "annotations"`},
			{"an extra layer that is an unsigned envelope", func(m map[string]any, b cosigntest.Blobs) {
				extra := editEnvelope(func(e map[string]any) { e["signatures"] = []any{} })
				b[digest.FromBytes(extra)] = extra
				m["layers"] = append(m["layers"].([]any), map[string]any{"mediaType": verify.DSSEEnvelopeMediaType, "size": len(extra), "digest": digest.FromBytes(extra).String(),
					"annotations": map[string]any{signer.CosignSignatureAnnotation: "", verify.PredicateTypeAnnotation: "https://slsa.dev/provenance/v1"}})
				withDerivedConfig(t, m)
			}, verify.Keys{}, "", "0 signatures"},
			{"an extra layer, the config kept", func(m map[string]any, _ cosigntest.Blobs) {
				m["layers"] = append(m["layers"].([]any), layer(m, 0))
			}, verify.Keys{}, "", "not the one cosign derives"},
			{"a config pointing at another blob", func(m map[string]any, _ cosigntest.Blobs) {
				m["config"].(map[string]any)["digest"] = digest.FromString("any blob").String()
			}, verify.Keys{}, "", "not the one cosign derives"},
			{"a blob that is not the one the layer names", func(_ map[string]any, b cosigntest.Blobs) {
				b[digest.FromBytes(slsa)] = custom
			}, verify.Keys{}, "", "not the one the layer names"},
			{"an envelope with a keyid", func(m map[string]any, b cosigntest.Blobs) {
				withBlob(editEnvelope(func(e map[string]any) { e["signatures"].([]any)[0].(map[string]any)["keyid"] = "chosen by the pusher" }))(m, b)
				withDerivedConfig(t, m)
			}, verify.Keys{}, "", "keyid"},
			{"an envelope with a field cosign does not write", func(m map[string]any, b cosigntest.Blobs) {
				withBlob(editEnvelope(func(e map[string]any) { e["extra"] = "x" }))(m, b)
				withDerivedConfig(t, m)
			}, verify.Keys{}, "", `field "extra"`},
			{"an envelope signed twice", func(m map[string]any, b cosigntest.Blobs) {
				withBlob(editEnvelope(func(e map[string]any) { e["signatures"] = append(e["signatures"].([]any), e["signatures"].([]any)[0]) }))(m, b)
				withDerivedConfig(t, m)
			}, verify.Keys{}, "", "2 signatures"},
			{"an envelope of another payload type", func(m map[string]any, b cosigntest.Blobs) {
				withBlob(editEnvelope(func(e map[string]any) { e["payloadType"] = "text/plain" }))(m, b)
				withDerivedConfig(t, m)
			}, verify.Keys{}, "", "not an in-toto statement"},
			{"an envelope whose payload was changed", func(m map[string]any, b cosigntest.Blobs) {
				st, _ := json.Marshal(statement(cosigntest.Ref, subject, "https://slsa.dev/provenance/v1"))
				withBlob(editEnvelope(func(e map[string]any) { e["payload"] = base64.StdEncoding.EncodeToString(st) }))(m, b)
				withDerivedConfig(t, m)
			}, verify.Keys{}, "", "does not verify"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m, b := base(), cosigntest.Blobs{}
				for d, v := range blobs {
					b[d] = v
				}
				if tc.edit != nil {
					tc.edit(m, b)
				}
				k, r := keys, repo
				if tc.keys.Len() > 0 {
					k = tc.keys
				}
				if tc.repo != "" {
					r = tc.repo
				}
				manifest, _ := json.Marshal(m)
				ref, err := check(manifest, b, k, r, subject)
				if err == nil {
					err = ref.Verified()
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("CheckReferrer = %v, want an error saying %q", err, tc.want)
				}
			})
		}
	})

	t.Run("checked for another image", func(t *testing.T) {
		r, err := check(cosigntest.Fixture(t, "one-attestation.manifest.json"), blobs, keys, repo, digest.FromString("another image"))
		if err == nil && r.Verified() == nil {
			t.Error("an attestation of one image admitted as another's")
		}
	})
}

// FuzzCosignAttestation feeds the attestation check the untrusted bytes the
// registry's gate hands it: a manifest and an envelope. It must never panic,
// and never accept a signature the fixture key did not make.
func FuzzCosignAttestation(f *testing.F) {
	key := cosigntest.Key(f, "test-cosign-1.pub")
	manifest, env := cosigntest.Fixture(f, "one-attestation.manifest.json"), cosigntest.Fixture(f, "slsa.envelope.json")
	check := func(manifest, env []byte) (verify.Referrer, error) {
		blob := func(digest.Digest) ([]byte, error) { return env, nil }
		return verify.CheckReferrer(context.Background(), verify.Artifact{Manifest: manifest, Blob: blob}, verify.NewKeys(key), "acme/app", cosigntest.AttestedDigest)
	}
	r, err := check(manifest, env)
	if err != nil || r.Verified() != nil {
		f.Fatalf("the seed does not verify: %v, %v", err, r.Verified())
	}
	signed := string(r.Signatures[0].Signature)
	f.Add(manifest, env)
	f.Add([]byte(`{"schemaVersion":2,"config":{},"layers":[{"mediaType":"`+verify.DSSEEnvelopeMediaType+`"}]}`), []byte(`{"payloadType":"","payload":"","signatures":[]}`))
	f.Fuzz(func(t *testing.T, manifest, env []byte) {
		r, err := check(manifest, env)
		if err != nil || r.Verified() != nil {
			return
		}
		for _, s := range r.Signatures {
			if string(s.Signature) != signed {
				t.Fatalf("accepted a signature the key never made: %q", env)
			}
		}
	})
}
