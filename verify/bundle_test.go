package verify_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/internal/cosigntest"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

// bundleOf re-encodes a DSSE envelope as the bundle cosign v3 writes for key.
func bundleOf(t *testing.T, pub crypto.PublicKey, env []byte) []byte {
	t.Helper()
	var e struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []struct {
			Sig string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(der)
	b, err := json.Marshal(map[string]any{
		"mediaType":            verify.SigstoreBundleMediaType,
		"verificationMaterial": map[string]any{"publicKey": map[string]any{"hint": base64.StdEncoding.EncodeToString(h[:])}},
		"dsseEnvelope":         map[string]any{"payload": e.Payload, "payloadType": e.PayloadType, "signatures": []any{map[string]any{"sig": e.Signatures[0].Sig}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSigstoreBundle checks the Sigstore bundle referrers cosign v3.1.3 wrote
// (internal/cosigntest's fixtures), verified against the delegated keys: its
// signature and its attestation are admitted with their key and predicate
// type; a field cosign does not write, a bundle that does not verify with a
// delegated key, or one about another image is refused.
func TestSigstoreBundle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const repo = "acme/app"
	subject := cosigntest.BundledDigest
	keys := verify.NewKeys(cosigntest.Key(t, "test-cosign-1.pub"))
	keyID, _ := cosigntest.Key(t, "test-cosign-1.pub").ID()
	priv := testCosignKey(t)
	fixtures := cosigntest.Blobs{}
	for _, name := range []string{"sign", "attest"} {
		b := cosigntest.Fixture(t, "cosign-v3.1.3/"+name+".bundle.json")
		fixtures[digest.FromBytes(b)] = b
	}
	check := func(manifest []byte, b cosigntest.Blobs, keys verify.Keys, repo string, subject digest.Digest) (verify.Referrer, error) {
		return verify.CheckReferrer(ctx, verify.Artifact{MediaType: "application/vnd.oci.image.manifest.v1+json", Manifest: manifest, Blob: b.Get}, keys, repo, subject)
	}
	manifestOf := func(name string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(cosigntest.Fixture(t, "cosign-v3.1.3/"+name+".manifest.json"), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	layer := func(m map[string]any) map[string]any { return m["layers"].([]any)[0].(map[string]any) }
	annotations := func(m map[string]any) map[string]any { return m["annotations"].(map[string]any) }
	// withBundle makes m's layer bundle b, and serves it.
	withBundle := func(b []byte) func(map[string]any, cosigntest.Blobs) {
		return func(m map[string]any, bs cosigntest.Blobs) {
			bs[digest.FromBytes(b)] = b
			layer(m)["digest"], layer(m)["size"] = digest.FromBytes(b).String(), len(b)
		}
	}
	// editBundle re-encodes the signature's bundle with edit applied.
	editBundle := func(edit func(map[string]any)) []byte {
		var b map[string]any
		if err := json.Unmarshal(cosigntest.Fixture(t, "cosign-v3.1.3/sign.bundle.json"), &b); err != nil {
			t.Fatal(err)
		}
		edit(b)
		out, _ := json.Marshal(b)
		return out
	}
	envelopeOf := func(b map[string]any) map[string]any { return b["dsseEnvelope"].(map[string]any) }

	t.Run("cosign's signature and attestation are admitted, with their key and predicate type", func(t *testing.T) {
		for name, predicateType := range map[string]string{"sign": "https://sigstore.dev/cosign/sign/v1", "attest": "https://slsa.dev/provenance/v1"} {
			m := cosigntest.Fixture(t, "cosign-v3.1.3/"+name+".manifest.json")
			if f, ok := verify.ReferrerFormat("", m); !ok || f != verify.FormatSigstoreBundle {
				t.Errorf("%s: routed as %q, %v", name, f, ok)
			}
			if s, ok := verify.ReferrerSubject(m); !ok || s != subject {
				t.Errorf("%s: subject %s, %v", name, s, ok)
			}
			r, err := check(m, fixtures, keys, repo, subject)
			if err != nil || r.Format != verify.FormatSigstoreBundle || r.Verified() != nil || len(r.Signatures) != 1 {
				t.Fatalf("%s: %+v, %v, verified: %v", name, r, err, r.Verified())
			}
			if s := r.Signatures[0]; s.KeyID != keyID || s.PredicateType != predicateType || len(s.Signature) == 0 {
				t.Errorf("%s: by %q of %q, want %q of %q", name, s.KeyID, s.PredicateType, keyID, predicateType)
			}
		}
	})

	t.Run("a signature bundle binds the digest only: it is admitted in another repository", func(t *testing.T) {
		r, err := check(cosigntest.Fixture(t, "cosign-v3.1.3/sign.manifest.json"), fixtures, keys, "acme/other", subject)
		if err != nil || r.Verified() != nil {
			t.Errorf("%v, %v", err, r.Verified())
		}
	})

	t.Run("a bundle signed with an Ed25519 key", func(t *testing.T) {
		k, err := signer.NewKey("alice", signer.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		st := statement(cosigntest.Ref, subject, "https://slsa.dev/provenance/v1")
		m, b := manifestOf("attest"), cosigntest.Blobs{}
		withBundle(bundleOf(t, k.Signer.Public(), envelope(t, k.Signer, st)))(m, b)
		manifest, _ := json.Marshal(m)
		r, err := check(manifest, b, verify.NewKeys(k.TUF), repo, subject)
		if err != nil || r.Verified() != nil {
			t.Fatalf("%+v, %v, verified: %v", r, err, r.Verified())
		}
	})

	t.Run("refused", func(t *testing.T) {
		other := digest.FromString("another image")
		for _, tc := range []struct {
			name     string
			manifest string // the fixture edited: sign or attest
			edit     func(map[string]any, cosigntest.Blobs)
			keys     verify.Keys
			repo     string
			want     string
		}{
			{"checked with a key that is not delegated", "sign", nil, verify.NewKeys(cosigntest.Key(t, "test-cosign-2.pub")), "", "does not verify"},
			{"an attestation checked for another repository", "attest", nil, verify.Keys{}, "acme/other", `names "127.0.0.1:34259/acme/app"`},
			{"a swapped subject", "sign", func(m map[string]any, _ cosigntest.Blobs) {
				m["subject"].(map[string]any)["digest"] = other.String()
			}, verify.Keys{}, "", "subject is " + other.String()},
			{"a bundle for another digest, placed as this image's", "attest", func(m map[string]any, b cosigntest.Blobs) {
				withBundle(bundleOf(t, priv.Public(), envelope(t, priv, statement(cosigntest.Ref, other, "https://slsa.dev/provenance/v1"))))(m, b)
			}, verify.Keys{}, "", "does not verify"},
			{"an extra layer", "sign", func(m map[string]any, _ cosigntest.Blobs) {
				m["layers"] = append(m["layers"].([]any), layer(m))
			}, verify.Keys{}, "", "2 layers"},
			{"an extra blob as a layer of another type", "sign", func(m map[string]any, _ cosigntest.Blobs) {
				m["layers"] = append(m["layers"].([]any), map[string]any{"mediaType": "application/octet-stream", "size": 2, "digest": digest.FromString("{}").String()})
			}, verify.Keys{}, "", "2 layers"},
			{"a layer annotation", "sign", func(m map[string]any, _ cosigntest.Blobs) {
				layer(m)["annotations"] = map[string]any{"org.opencontainers.image.title": "x"}
			}, verify.Keys{}, "", `field "annotations"`},
			{"a config that is a blob", "sign", func(m map[string]any, _ cosigntest.Blobs) {
				m["config"].(map[string]any)["digest"] = digest.FromString("any blob").String()
			}, verify.Keys{}, "", "not the OCI empty config"},
			{"a config without its artifactType", "sign", func(m map[string]any, _ cosigntest.Blobs) {
				delete(m["config"].(map[string]any), "artifactType")
			}, verify.Keys{}, "", "no artifactType"},
			{"another artifactType", "sign", func(m map[string]any, _ cosigntest.Blobs) {
				m["artifactType"] = "application/vnd.example"
			}, verify.Keys{}, "", "artifactType"},
			{"an annotation cosign does not write", "sign", func(m map[string]any, _ cosigntest.Blobs) {
				annotations(m)["org.example"] = "x"
			}, verify.Keys{}, "", `field "org.example"`},
			{"a creation time that is not a time", "sign", func(m map[string]any, _ cosigntest.Blobs) {
				annotations(m)["org.opencontainers.image.created"] = "yesterday"
			}, verify.Keys{}, "", "RFC 3339"},
			{"another bundle content", "sign", func(m map[string]any, _ cosigntest.Blobs) {
				annotations(m)[verify.BundleContentAnnotation] = "message-signature"
			}, verify.Keys{}, "", "dsse-envelope"},
			{"a predicate type annotation that is not the statement's", "attest", func(m map[string]any, _ cosigntest.Blobs) {
				annotations(m)[verify.BundlePredicateTypeAnnotation] = "https://spdx.dev/Document"
			}, verify.Keys{}, "", "not the manifest's"},
			{"no subject", "sign", func(m map[string]any, _ cosigntest.Blobs) { delete(m, "subject") }, verify.Keys{}, "", "no subject"},
			{"a subject that is not a manifest", "sign", func(m map[string]any, _ cosigntest.Blobs) {
				m["subject"].(map[string]any)["mediaType"] = "application/octet-stream"
			}, verify.Keys{}, "", "not a manifest"},
			{"a bundle that is not the blob the layer names", "sign", func(m map[string]any, b cosigntest.Blobs) {
				b[digest.Digest(layer(m)["digest"].(string))] = cosigntest.Fixture(t, "cosign-v3.1.3/attest.bundle.json")
			}, verify.Keys{}, "", "not the one the layer names"},
			{"a bundle with a hint for another key", "sign", func(m map[string]any, b cosigntest.Blobs) {
				withBundle(editBundle(func(bu map[string]any) {
					bu["verificationMaterial"].(map[string]any)["publicKey"].(map[string]any)["hint"] = "chosen by the pusher"
				}))(m, b)
			}, verify.Keys{}, "", "hint"},
			{"a bundle with a certificate", "sign", func(m map[string]any, b cosigntest.Blobs) {
				withBundle(editBundle(func(bu map[string]any) {
					bu["verificationMaterial"].(map[string]any)["certificate"] = map[string]any{"rawBytes": "AA=="}
				}))(m, b)
			}, verify.Keys{}, "", "certificate"},
			{"a bundle with a field cosign does not write", "sign", func(m map[string]any, b cosigntest.Blobs) {
				withBundle(editBundle(func(bu map[string]any) { bu["messageSignature"] = map[string]any{} }))(m, b)
			}, verify.Keys{}, "", `field "messageSignature"`},
			{"a bundle field in protobuf's other spelling", "sign", func(m map[string]any, b cosigntest.Blobs) {
				withBundle(editBundle(func(bu map[string]any) {
					bu["dsse_envelope"] = bu["dsseEnvelope"]
					delete(bu, "dsseEnvelope")
				}))(m, b)
			}, verify.Keys{}, "", `field "dsse_envelope"`},
			{"an envelope with a keyid", "sign", func(m map[string]any, b cosigntest.Blobs) {
				withBundle(editBundle(func(bu map[string]any) {
					envelopeOf(bu)["signatures"].([]any)[0].(map[string]any)["keyid"] = "chosen by the pusher"
				}))(m, b)
			}, verify.Keys{}, "", `field "keyid"`},
			{"an envelope signed twice", "sign", func(m map[string]any, b cosigntest.Blobs) {
				withBundle(editBundle(func(bu map[string]any) {
					envelopeOf(bu)["signatures"] = append(envelopeOf(bu)["signatures"].([]any), envelopeOf(bu)["signatures"].([]any)[0])
				}))(m, b)
			}, verify.Keys{}, "", "2 signatures"},
			{"an envelope whose payload was changed", "sign", func(m map[string]any, b cosigntest.Blobs) {
				st, _ := json.Marshal(statement("", subject, "https://sigstore.dev/cosign/sign/v1"))
				withBundle(editBundle(func(bu map[string]any) { envelopeOf(bu)["payload"] = base64.StdEncoding.EncodeToString(st) }))(m, b)
			}, verify.Keys{}, "", "does not verify"},
			{"a bundle of another version", "sign", func(m map[string]any, b cosigntest.Blobs) {
				withBundle(editBundle(func(bu map[string]any) { bu["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2" }))(m, b)
			}, verify.Keys{}, "", "not application/vnd.dev.sigstore.bundle.v0.3+json"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m, b := manifestOf(tc.manifest), cosigntest.Blobs{}
				for d, v := range fixtures {
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
		r, err := check(cosigntest.Fixture(t, "cosign-v3.1.3/sign.manifest.json"), fixtures, keys, repo, digest.FromString("another image"))
		if err == nil && r.Verified() == nil {
			t.Error("a bundle of one image admitted as another's")
		}
	})
}

// FuzzSigstoreBundle feeds the bundle check the untrusted bytes the registry's
// gate hands it: a manifest and a bundle. It must never panic, and never
// accept a signature the fixture key did not make.
func FuzzSigstoreBundle(f *testing.F) {
	key := cosigntest.Key(f, "test-cosign-1.pub")
	check := func(manifest, bundle []byte) (verify.Referrer, error) {
		blob := func(digest.Digest) ([]byte, error) { return bundle, nil }
		return verify.CheckReferrer(context.Background(), verify.Artifact{Manifest: manifest, Blob: blob}, verify.NewKeys(key), "acme/app", cosigntest.BundledDigest)
	}
	signed := map[string]bool{}
	for _, name := range []string{"sign", "attest"} {
		manifest, bundle := cosigntest.Fixture(f, "cosign-v3.1.3/"+name+".manifest.json"), cosigntest.Fixture(f, "cosign-v3.1.3/"+name+".bundle.json")
		r, err := check(manifest, bundle)
		if err != nil || r.Verified() != nil {
			f.Fatalf("the seed %s does not verify: %v, %v", name, err, r.Verified())
		}
		signed[string(r.Signatures[0].Signature)] = true
		f.Add(manifest, bundle)
	}
	f.Fuzz(func(t *testing.T, manifest, bundle []byte) {
		r, err := check(manifest, bundle)
		if err == nil && r.Verified() == nil && !signed[string(r.Signatures[0].Signature)] {
			t.Fatalf("accepted a signature the key never made: %q", bundle)
		}
	})
}

// TestSigstoreBundleLogEntriesAndTimestamps checks what a bundle may carry
// besides its key's signature: transparency log entries and RFC 3161
// timestamps, parsed for their form and never trusted. A bundle carrying
// well-formed ones is admitted, though they are made up and verify against
// nothing; entries or timestamps not in their form are refused, as is a
// signed payload that is not an in-toto statement by in-toto's own type.
func TestSigstoreBundleLogEntriesAndTimestamps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const repo = "acme/app"
	subject := cosigntest.BundledDigest
	keys := verify.NewKeys(cosigntest.Key(t, "test-cosign-1.pub"))
	priv := testCosignKey(t)
	b64 := base64.StdEncoding.EncodeToString
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return b64(h[:]) }
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	// check checks cosign's signature bundle with edit applied.
	check := func(t *testing.T, edit func(b map[string]any)) error {
		t.Helper()
		var b, m map[string]any
		if err := json.Unmarshal(cosigntest.Fixture(t, "cosign-v3.1.3/sign.bundle.json"), &b); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(cosigntest.Fixture(t, "cosign-v3.1.3/sign.manifest.json"), &m); err != nil {
			t.Fatal(err)
		}
		edit(b)
		raw, _ := json.Marshal(b)
		l := m["layers"].([]any)[0].(map[string]any)
		l["digest"], l["size"] = digest.FromBytes(raw).String(), len(raw)
		manifest, _ := json.Marshal(m)
		r, err := verify.CheckReferrer(ctx, verify.Artifact{Manifest: manifest, Blob: cosigntest.Blobs{digest.FromBytes(raw): raw}.Get}, keys, repo, subject)
		if err == nil {
			err = r.Verified()
		}
		return err
	}
	// logEntry is a Rekor v2 entry in the form a log returns it; no log made it.
	logEntry := func() map[string]any {
		body, _ := json.Marshal(map[string]any{"kind": "hashedrekord", "apiVersion": "0.0.2", "spec": map[string]any{"hashedRekordV002": map[string]any{
			"data": map[string]any{"algorithm": "SHA2_256", "digest": hash("an artifact")},
			"signature": map[string]any{
				"content":  b64([]byte("a signature")),
				"verifier": map[string]any{"publicKey": map[string]any{"rawBytes": b64(der)}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"},
			},
		}}})
		return map[string]any{
			"logIndex":       "7",
			"logId":          map[string]any{"keyId": hash("a log")},
			"kindVersion":    map[string]any{"kind": "hashedrekord", "version": "0.0.2"},
			"integratedTime": "1764720000",
			"inclusionProof": map[string]any{
				"logIndex":   "7",
				"rootHash":   hash("a root"),
				"treeSize":   "8",
				"hashes":     []any{hash("a sibling")},
				"checkpoint": map[string]any{"envelope": "log.example\n8\n" + hash("a root") + "\n"},
			},
			"canonicalizedBody": b64(body),
		}
	}
	timestamps := func() map[string]any {
		return map[string]any{"rfc3161Timestamps": []any{map[string]any{"signedTimestamp": b64([]byte("not checked"))}}}
	}
	// carrying makes a bundle carry entries (nil: none) and timestamps.
	carrying := func(entries []map[string]any, ts map[string]any) func(map[string]any) {
		return func(b map[string]any) {
			vm := b["verificationMaterial"].(map[string]any)
			if entries != nil {
				list := []any{}
				for _, e := range entries {
					list = append(list, e)
				}
				vm["tlogEntries"] = list
			}
			if ts != nil {
				vm["timestampVerificationData"] = ts
			}
		}
	}
	// signing makes a bundle's envelope one of st signed with the fixture key.
	signing := func(st map[string]any) func(map[string]any) {
		return func(b map[string]any) {
			var nb map[string]any
			if err := json.Unmarshal(bundleOf(t, priv.Public(), envelope(t, priv, st)), &nb); err != nil {
				t.Fatal(err)
			}
			b["dsseEnvelope"] = nb["dsseEnvelope"]
		}
	}
	signStatement := func() map[string]any {
		return statement(cosigntest.Ref, subject, "https://sigstore.dev/cosign/sign/v1")
	}

	t.Run("admitted", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			edit func(map[string]any)
		}{
			{"a log entry and a timestamp, neither trusted", carrying([]map[string]any{logEntry()}, timestamps())},
			{"a log entry without a proof beside one with it", carrying([]map[string]any{logEntry(), func() map[string]any {
				e := logEntry()
				delete(e, "inclusionProof")
				return e
			}()}, nil)},
			{"no log entry and no timestamp", carrying([]map[string]any{}, map[string]any{})},
			{"a statement signed with the key", signing(signStatement())},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := check(t, tc.edit); err != nil {
					t.Errorf("CheckReferrer = %v, want it admitted", err)
				}
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		entry := func(edit func(e map[string]any)) func(map[string]any) {
			e := logEntry()
			edit(e)
			return carrying([]map[string]any{e}, nil)
		}
		for _, tc := range []struct {
			name string
			edit func(map[string]any)
			want string
		}{
			{"a log entry without an inclusion proof", entry(func(e map[string]any) { delete(e, "inclusionProof") }), "inclusion proof"},
			{"an inclusion proof without its checkpoint", entry(func(e map[string]any) {
				delete(e["inclusionProof"].(map[string]any), "checkpoint")
			}), "checkpoint"},
			{"a log entry without its log ID", entry(func(e map[string]any) { delete(e, "logId") }), "log entry"},
			{"a log entry whose body is not one", entry(func(e map[string]any) { e["canonicalizedBody"] = b64([]byte(`"a body"`)) }), "body is not a"},
			{"a log entry with a field its type does not have", entry(func(e map[string]any) { e["logUrl"] = "https://log.example" }), `unknown field "logUrl"`},
			{"a log entry of the wrong type", entry(func(e map[string]any) { e["logIndex"] = "seven" }), "logIndex"},
			{"33 log entries", carrying(func() []map[string]any {
				var es []map[string]any
				for range 33 {
					es = append(es, logEntry())
				}
				return es
			}(), nil), "33"},
			{"a timestamp with a field its type does not have", carrying(nil, map[string]any{"rfc3161Timestamps": []any{map[string]any{"signedTimestamp": "AA==", "tsaUrl": "x"}}}), `unknown field "tsaUrl"`},
			{"a signed statement with a field in-toto's Statement does not have", signing(func() map[string]any {
				st := signStatement()
				st["chosenBySigner"] = true
				return st
			}()), "does not verify"},
			{"a signed statement whose predicate is not an object", signing(func() map[string]any {
				st := signStatement()
				st["predicate"] = "a string"
				return st
			}()), "does not verify"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := check(t, tc.edit); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("CheckReferrer = %v, want an error saying %q", err, tc.want)
				}
			})
		}
	})
}
