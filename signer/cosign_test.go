package signer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/internal/cosigntest"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

func TestCosignFormatIsCosigns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("the payload is byte for byte the one cosign signed", func(t *testing.T) {
		if got, want := signer.CosignPayload(cosigntest.Ref, cosigntest.Digest), cosigntest.Fixture(t, "payload.json"); !bytes.Equal(got, want) {
			t.Errorf("payload\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("the signature tag is sha256-<hex>.sig", func(t *testing.T) {
		if got, want := signer.CosignSignatureTag(cosigntest.Digest), "sha256-"+cosigntest.Digest.Encoded()+".sig"; got != want {
			t.Errorf("tag %q, want %q", got, want)
		}
	})
	t.Run("co-signing cosign's artifact keeps its layer and writes cosign's config", func(t *testing.T) {
		key, err := signer.NewKey("cosigner", "")
		if err != nil {
			t.Fatal(err)
		}
		prev := cosigntest.Fixture(t, "one-signature.manifest.json")
		a, err := signer.SignCosign(cosigntest.Ref, cosigntest.Digest, key, prev)
		if err != nil {
			t.Fatal(err)
		}
		var m, pm ocispec.Manifest
		if err := json.Unmarshal(a.Manifest, &m); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(prev, &pm); err != nil {
			t.Fatal(err)
		}
		if len(m.Layers) != 2 || fmt.Sprint(m.Layers[0]) != fmt.Sprint(pm.Layers[0]) || m.Layers[1].Digest != pm.Layers[0].Digest {
			t.Fatalf("layers %+v, want cosign's layer and one more over the same payload", m.Layers)
		}
		// The config depends only on the layers' digests: cosign's for two.
		if got, want := a.Blobs[m.Config.Digest], cosigntest.Fixture(t, "two-signatures.config.json"); !bytes.Equal(got, want) {
			t.Errorf("config\n%s\nwant cosign's\n%s", got, want)
		}
		keys := []*metadata.Key{cosigntest.Key(t, "test-cosign-1.pub"), key.TUF}
		if err := verify.CosignArtifact(ctx, a.Manifest, cosigntest.Blobs{}.Add(a).Get, verify.NewKeys(keys...), "acme/app", cosigntest.Digest); err != nil {
			t.Error(err)
		}
	})
	t.Run("a first signature is laid out as cosign lays it out", func(t *testing.T) {
		key, err := signer.NewKey("first", "")
		if err != nil {
			t.Fatal(err)
		}
		a, err := signer.SignCosign(cosigntest.Ref, cosigntest.Digest, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ours, theirs map[string]any
		json.Unmarshal(a.Manifest, &ours)
		json.Unmarshal(cosigntest.Fixture(t, "one-signature.manifest.json"), &theirs)
		// Everything but the signature itself (ECDSA signatures are randomised).
		sig := func(m map[string]any) map[string]any {
			return m["layers"].([]any)[0].(map[string]any)["annotations"].(map[string]any)
		}
		sig(ours)[signer.CosignSignatureAnnotation], sig(theirs)[signer.CosignSignatureAnnotation] = "", ""
		if fmt.Sprint(ours) != fmt.Sprint(theirs) {
			t.Errorf("manifest %v\nwant cosign's %v", ours, theirs)
		}
		var m ocispec.Manifest
		json.Unmarshal(a.Manifest, &m)
		if !bytes.Equal(a.Blobs[m.Config.Digest], cosigntest.Fixture(t, "one-signature.config.json")) {
			t.Errorf("config %s, want cosign's", a.Blobs[m.Config.Digest])
		}
		if a.MediaType != ocispec.MediaTypeImageManifest || a.Digest != digest.FromBytes(a.Manifest) || a.Tag != signer.CosignSignatureTag(cosigntest.Digest) {
			t.Errorf("artifact %s %s %s", a.MediaType, a.Digest, a.Tag)
		}
		// Compact JSON, field order as go-containerregistry writes it.
		if !strings.HasPrefix(string(a.Manifest), `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":233,"digest":"sha256:`) {
			t.Errorf("manifest bytes %s", a.Manifest)
		}
	})
}

func TestParseCosignPrivateKey(t *testing.T) {
	t.Parallel()
	// One scrypt run only: a wrong password goes through the loader Load uses,
	// whose ErrWrongPassphrase TestFileKeyStoreFiles checks.
	t.Run("a key cosign generate-key-pair wrote decrypts with its password", func(t *testing.T) {
		priv, err := signer.ParseCosignPrivateKey(cosigntest.Fixture(t, "test-cosign-1.key"), []byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		k, err := signer.KeyFromSigner("imported", priv)
		if err != nil {
			t.Fatal(err)
		}
		if want := cosigntest.Key(t, "test-cosign-1.pub"); k.TUF.Value.PublicKey != want.Value.PublicKey || k.Algorithm != string(signer.ECDSAP256) {
			t.Errorf("key %s %s, want the fixture's P-256 public key", k.Algorithm, k.PublicPEM)
		}
	})
	for _, tc := range []struct{ name, pem, want string }{
		{"not PEM", "hello", "not a PEM file"},
		{"an unencrypted private key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a cosign key"},
		{"a public key", string(cosigntest.Fixture(t, "test-cosign-1.pub")), "not a cosign key"},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			if _, err := signer.ParseCosignPrivateKey([]byte(tc.pem), []byte("pw")); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseCosignPrivateKey = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCosignSignatureSubjectReadsTheSignatureTag(t *testing.T) {
	t.Parallel()
	d := digest.FromString("the signed manifest")
	if got, ok := signer.CosignSignatureSubject(signer.CosignSignatureTag(d)); !ok || got != d {
		t.Errorf("CosignSignatureSubject(CosignSignatureTag(%s)) = %s, %v", d, got, ok)
	}
	for _, tag := range []string{
		"latest",
		"sha256-" + d.Encoded(),              // no .sig
		"sha256" + d.Encoded() + ".sig",      // no dash
		"sha256-" + d.Encoded()[1:] + ".sig", // too short a digest
		"SHA256-" + d.Encoded() + ".sig",     // not an algorithm
		"sha256-" + d.Encoded() + ".att",     // an attestation, not a signature
	} {
		if got, ok := signer.CosignSignatureSubject(tag); ok {
			t.Errorf("CosignSignatureSubject(%q) = %s, want no subject", tag, got)
		}
	}
}
