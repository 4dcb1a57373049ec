package verify_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/internal/cosigntest"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

// An ECDSA P-256 signature as cosign makes one: over the SHA-256 of the payload.
const cryptoHash = crypto.SHA256

func digestOf(b []byte) []byte {
	d := sha256.Sum256(b)
	return d[:]
}

// TestCosignFormatIsCosigns checks cosign's own artifacts pass Signet's check;
// signer's test of the same name checks Signet writes what cosign writes.
func TestCosignFormatIsCosigns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("cosign's own artifacts verify, with one and with two signatures", func(t *testing.T) {
		b := cosigntest.Blobs{digest.FromBytes(cosigntest.Fixture(t, "payload.json")): cosigntest.Fixture(t, "payload.json")}
		both := []*metadata.Key{cosigntest.Key(t, "test-cosign-1.pub"), cosigntest.Key(t, "test-cosign-2.pub")}
		if err := verify.CosignArtifact(ctx, cosigntest.Fixture(t, "one-signature.manifest.json"), b.Get, verify.NewKeys(both[:1]...), "acme/app", cosigntest.Digest); err != nil {
			t.Errorf("one signature: %v", err)
		}
		if err := verify.CosignArtifact(ctx, cosigntest.Fixture(t, "two-signatures.manifest.json"), b.Get, verify.NewKeys(both...), "acme/app", cosigntest.Digest); err != nil {
			t.Errorf("two signatures: %v", err)
		}
		if err := verify.CosignArtifact(ctx, cosigntest.Fixture(t, "two-signatures.manifest.json"), b.Get, verify.NewKeys(both[:1]...), "acme/app", cosigntest.Digest); err == nil {
			t.Error("two signatures verified with only the first signer's key")
		}
	})
}

func TestCosignSignAndVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const ref, repo = "registry.example:5000/acme/app", "acme/app"
	subject := digest.FromString("the signed manifest")
	for _, alg := range signer.Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			alice, err := signer.NewKey("alice", alg)
			if err != nil {
				t.Fatal(err)
			}
			bob, err := signer.NewKey("bob", alg)
			if err != nil {
				t.Fatal(err)
			}
			first, err := signer.SignCosign(ref, subject, alice, nil)
			if err != nil {
				t.Fatal(err)
			}
			b := cosigntest.Blobs{}.Add(first)
			if err := verify.CosignArtifact(ctx, first.Manifest, b.Get, verify.NewKeys(alice.TUF), repo, subject); err != nil {
				t.Fatalf("a signature does not verify: %v", err)
			}
			if err := verify.CosignArtifact(ctx, first.Manifest, b.Get, verify.NewKeys(bob.TUF), repo, subject); err == nil {
				t.Fatal("a signature verifies with another key")
			}
			again, err := signer.SignCosign(ref, subject, alice, first.Manifest)
			if err != nil {
				t.Fatal(err)
			}
			if !again.Unchanged || !bytes.Equal(again.Manifest, first.Manifest) {
				t.Error("signing again with the same key changed the artifact")
			}
			both, err := signer.SignCosign(ref, subject, bob, first.Manifest)
			if err != nil {
				t.Fatal(err)
			}
			b.Add(both)
			keys := []*metadata.Key{bob.TUF, alice.TUF}
			if err := verify.CosignArtifact(ctx, both.Manifest, b.Get, verify.NewKeys(keys...), repo, subject); err != nil {
				t.Fatalf("a co-signed artifact does not verify: %v", err)
			}
			if err := verify.CosignArtifact(ctx, both.Manifest, b.Get, verify.NewKeys(keys[:1]...), repo, subject); err == nil {
				t.Fatal("a co-signed artifact verifies although one signature's key is not given")
			}
		})
	}
}

func TestCosignArtifactRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const repo = "acme/app"
	subject := digest.FromString("the signed manifest")
	key, err := signer.NewKey("alice", "")
	if err != nil {
		t.Fatal(err)
	}
	keys := []*metadata.Key{key.TUF}
	// signed makes an artifact whose payload is payload, signed by key.
	signed := func(t *testing.T, payload []byte, edit func(layer map[string]any)) ([]byte, cosigntest.Blobs) {
		t.Helper()
		a, err := signer.SignCosign("h:1/x", subject, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := key.Signer.Sign(nil, digestOf(payload), cryptoHash)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(a.Manifest, &m)
		l := m["layers"].([]any)[0].(map[string]any)
		l["digest"], l["size"] = digest.FromBytes(payload), len(payload)
		l["annotations"].(map[string]any)[signer.CosignSignatureAnnotation] = base64.StdEncoding.EncodeToString(sig)
		if edit != nil {
			edit(l)
		}
		withDerivedConfig(t, m)
		b, _ := json.Marshal(m)
		return b, cosigntest.Blobs{digest.FromBytes(payload): payload}
	}
	payload := func(ref, d string) []byte { return signer.CosignPayload(ref, digest.Digest(d)) }
	cases := []struct {
		name     string
		manifest func(t *testing.T) ([]byte, cosigntest.Blobs)
		want     string
	}{
		{"a signature over another digest", func(t *testing.T) ([]byte, cosigntest.Blobs) {
			return signed(t, payload("h:1/acme/app", digest.FromString("other").String()), nil)
		}, "signs"},
		{"a payload naming another repository (cosign accepts it)", func(t *testing.T) ([]byte, cosigntest.Blobs) {
			return signed(t, payload("h:1/acme/other", subject.String()), nil)
		}, "names"},
		{"a payload naming a repository that only starts like this one", func(t *testing.T) ([]byte, cosigntest.Blobs) {
			return signed(t, payload("h:1/acme/app-corp", subject.String()), nil)
		}, "names"},
		{"a payload naming this repository under another organisation", func(t *testing.T) ([]byte, cosigntest.Blobs) {
			return signed(t, payload("h:1/x/acme/app", subject.String()), nil)
		}, "names"},
		{"a payload naming the repository by another digest", func(t *testing.T) ([]byte, cosigntest.Blobs) {
			return signed(t, payload("h:1/acme/app@"+digest.FromString("other").String(), subject.String()), nil)
		}, "names"},
		{"a payload of another type", func(t *testing.T) ([]byte, cosigntest.Blobs) {
			p := bytes.Replace(payload("h:1/acme/app", subject.String()), []byte("cosign container image signature"), []byte("atomic container signature"), 1)
			return signed(t, p, nil)
		}, "type"},
		{"a payload with a critical field it does not know", func(t *testing.T) ([]byte, cosigntest.Blobs) {
			p := bytes.Replace(payload("h:1/acme/app", subject.String()), []byte(`"type"`), []byte(`"expires":1,"type"`), 1)
			return signed(t, p, nil)
		}, "critical"},
		{"a signature made over other bytes", func(t *testing.T) ([]byte, cosigntest.Blobs) {
			m, b := signed(t, payload("h:1/acme/app", subject.String()), nil)
			var good []byte
			for _, v := range b {
				good = v
			}
			sig, _ := key.Signer.Sign(nil, digestOf(append(good, ' ')), cryptoHash)
			m, b = signed(t, good, func(l map[string]any) {
				l["annotations"].(map[string]any)[signer.CosignSignatureAnnotation] = base64.StdEncoding.EncodeToString(sig)
			})
			return m, b
		}, "does not verify"},
		{"a layer of another media type", func(t *testing.T) ([]byte, cosigntest.Blobs) {
			return signed(t, payload("h:1/acme/app", subject.String()), func(l map[string]any) { l["mediaType"] = "application/json" })
		}, "type"},
		{"a layer without a signature annotation", func(t *testing.T) ([]byte, cosigntest.Blobs) {
			return signed(t, payload("h:1/acme/app", subject.String()), func(l map[string]any) { l["annotations"] = map[string]any{} })
		}, "annotation"},
		{"a blob that is not the one the layer names", func(t *testing.T) ([]byte, cosigntest.Blobs) {
			m, b := signed(t, payload("h:1/acme/app", subject.String()), nil)
			for d := range b {
				b[d] = payload("h:1/acme/app", digest.FromString("x").String())
			}
			return m, b
		}, "not the one"},
		{"a manifest without layers", func(t *testing.T) ([]byte, cosigntest.Blobs) {
			return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}`), cosigntest.Blobs{}
		}, "no signature"},
		{"an index", func(t *testing.T) ([]byte, cosigntest.Blobs) {
			return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), cosigntest.Blobs{}
		}, "not an image manifest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, b := tc.manifest(t)
			err := verify.CosignArtifact(ctx, m, b.Get, verify.NewKeys(keys...), repo, subject)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CosignArtifact = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	t.Run("no keys", func(t *testing.T) {
		a, err := signer.SignCosign("h:1/acme/app", subject, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify.CosignArtifact(ctx, a.Manifest, cosigntest.Blobs{}.Add(a).Get, verify.Keys{}, repo, subject); err == nil {
			t.Error("verified with no keys")
		}
	})
}

// withDerivedConfig sets the config of a signature manifest (decoded into m) to
// the one cosign derives from its layers, after a test changed them.
func withDerivedConfig(t *testing.T, m map[string]any) {
	t.Helper()
	var layers []json.RawMessage
	for _, l := range m["layers"].([]any) {
		b, _ := json.Marshal(l)
		layers = append(layers, b)
	}
	config, err := signer.CosignConfig(layers)
	if err != nil {
		t.Fatal(err)
	}
	c := m["config"].(map[string]any)
	c["digest"], c["size"] = digest.FromBytes(config), len(config)
}

func TestCosignRepositoryNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	subject := digest.FromString("the signed manifest")
	key, err := signer.NewKey("alice", "")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ref, repo string
		ok        bool
	}{
		{"127.0.0.1:5000/acme/app", "acme/app", true},
		{"registry.example/acme/app", "acme/app", true},
		{"localhost/acme/app", "acme/app", true},
		{"acme/app", "acme/app", true},
		{"127.0.0.1:5000/acme/app:v1", "acme/app", true},
		{"127.0.0.1:5000/acme/app@" + subject.String(), "acme/app", true},
		{"127.0.0.1:5000/acme/app", "127.0.0.1:5000/acme/app", true},
		{"127.0.0.1:5001/acme/app", "127.0.0.1:5000/acme/app", false},
		{"127.0.0.1:5000/acme/app", "acme", false},
		{"127.0.0.1:5000/acme", "acme/app", false},
		{"127.0.0.1:5000/acme/app/sub", "acme/app", false},
		{"", "acme/app", false},
	}
	for _, tc := range cases {
		p := signer.CosignPayload(tc.ref, subject)
		sig, _ := key.Signer.Sign(nil, digestOf(p), cryptoHash)
		m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":%q},"layers":[{"mediaType":%q,"size":%d,"digest":%q,"annotations":{%q:%q}}]}`,
			digest.FromString("{}"), signer.CosignSimpleSigningMediaType, len(p), digest.FromBytes(p), signer.CosignSignatureAnnotation, base64.StdEncoding.EncodeToString(sig))
		err := verify.CosignArtifact(ctx, []byte(m), cosigntest.Blobs{digest.FromBytes(p): p}.Get, verify.NewKeys(key.TUF), tc.repo, subject)
		if (err == nil) != tc.ok {
			t.Errorf("docker-reference %q for repository %q: %v, want ok=%v", tc.ref, tc.repo, err, tc.ok)
		}
	}
}

// FuzzCosignArtifact feeds the verifier the untrusted bytes the registry's
// gate hands it: a manifest and a payload. It must never panic, and never accept
// what the fixture key did not sign.
func FuzzCosignArtifact(f *testing.F) {
	manifest := cosigntest.Fixture(f, "one-signature.manifest.json")
	payload := cosigntest.Fixture(f, "payload.json")
	key := cosigntest.Key(f, "test-cosign-1.pub")
	f.Add(manifest, payload)
	f.Add([]byte(`{"schemaVersion":2,"layers":[{"mediaType":"`+signer.CosignSimpleSigningMediaType+`"}]}`), []byte(`{"critical":null}`))
	f.Fuzz(func(t *testing.T, manifest, payload []byte) {
		blob := func(digest.Digest) ([]byte, error) { return payload, nil }
		err := verify.CosignArtifact(context.Background(), manifest, blob, verify.NewKeys(key), "acme/app", cosigntest.Digest)
		if err == nil && !bytes.Equal(payload, cosigntest.Fixture(t, "payload.json")) {
			t.Fatalf("accepted a payload the key never signed: %q", payload)
		}
	})
}
