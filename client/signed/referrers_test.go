package signed_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/client/signed"
	"github.com/signet-oss/signet/registry"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

// startRegistry runs Signet's registry in the test process, open (no trust
// root, no auth): listing trusts nothing the registry says, so what a
// registry that admits anything serves is what it must sort out.
func startRegistry(t *testing.T) string {
	t.Helper()
	cfg := registry.Defaults()
	cfg.Data = t.TempDir()
	store, err := registry.OpenStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := registry.NewServer(store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return strings.TrimPrefix(ts.URL, "http://")
}

// pusher writes manifests and blobs into one repository.
type pusher struct {
	t    *testing.T
	ctx  context.Context
	repo *oci.Repository
}

func (p pusher) blob(b []byte) ocispec.Descriptor {
	p.t.Helper()
	if err := p.repo.PushBytes(p.ctx, "application/octet-stream", b); err != nil {
		p.t.Fatal(err)
	}
	return ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// manifest PUTs m under ref ("" for its digest) and returns its descriptor.
func (p pusher) manifest(ref, mediaType string, m any) ocispec.Descriptor {
	p.t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		p.t.Fatal(err)
	}
	d := digest.FromBytes(raw)
	if ref == "" {
		ref = d.String()
	}
	if err := p.repo.PutManifest(p.ctx, ref, mediaType, raw); err != nil {
		p.t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(raw))}
}

// image pushes a one-layer image and returns its manifest's descriptor.
func (p pusher) image(name string) ocispec.Descriptor {
	cfg := p.blob([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"name":"` + name + `"}`))
	layer := p.blob([]byte("layer of " + name))
	cfg.MediaType, layer.MediaType = ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayer
	return p.manifest("", ocispec.MediaTypeImageManifest, map[string]any{
		"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest, "config": cfg, "layers": []ocispec.Descriptor{layer},
	})
}

// cosign pushes a cosign signature artifact's blobs and its manifest, under
// its tag or (byDigest) by digest only.
func (p pusher) cosign(a *signer.CosignArtifact, byDigest bool) ocispec.Descriptor {
	p.t.Helper()
	for _, b := range a.Blobs {
		p.blob(b)
	}
	ref := a.Tag
	if byDigest {
		ref = a.Digest.String()
	}
	if err := p.repo.PutManifest(p.ctx, ref, a.MediaType, a.Manifest); err != nil {
		p.t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: a.MediaType, Digest: a.Digest, Size: int64(len(a.Manifest))}
}

// attach pushes an unsigned artifact of artifactType whose subject is subject,
// as oras attach does.
func (p pusher) attach(artifactType string, subject ocispec.Descriptor, content string) ocispec.Descriptor {
	empty := p.blob([]byte("{}"))
	empty.MediaType = ocispec.MediaTypeEmptyJSON
	layer := p.blob([]byte(content))
	layer.MediaType = "application/json"
	subject = ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	return p.manifest("", ocispec.MediaTypeImageManifest, map[string]any{
		"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest, "artifactType": artifactType,
		"config": empty, "layers": []ocispec.Descriptor{layer}, "subject": subject,
	})
}

func newKey(t *testing.T, name string) *signer.Key {
	t.Helper()
	k, err := signer.NewKey(name, "")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestListReferrersFindsEveryAttachedArtifactAndChecksEachWithTheDelegatedKeys(t *testing.T) {
	ctx := context.Background()
	host := startRegistry(t)
	repo, err := oci.NewRepository(ctx, host, "acme/app", oci.Options{Push: true})
	if err != nil {
		t.Fatal(err)
	}
	p := pusher{t: t, ctx: ctx, repo: repo}
	alice, bob, mallory := newKey(t, "alice"), newKey(t, "bob"), newKey(t, "mallory")
	img, other := p.image("app"), p.image("other")
	name := host + "/acme/app"

	// alice signs cosign's way, bob co-signs into the same .sig artifact.
	byAlice, err := signer.SignCosign(name, img.Digest, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.cosign(byAlice, false)
	byBoth, err := signer.SignCosign(name, img.Digest, bob, byAlice.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	sig := p.cosign(byBoth, false)
	// An SBOM attached unsigned (found by the referrers API, and listed in
	// the referrers-tag-schema index too), one attached unsigned without a
	// target, mallory's signature, alice's signature of another image, and an
	// entry the registry does not have, all in the referrers-tag-schema index.
	sbom := p.attach("application/spdx+json", img, `{"spdxVersion":"SPDX-2.3"}`)
	stray := p.attach("application/vnd.example.notes", img, `{"note":"unvouched"}`)
	byMallory, err := signer.SignCosign(name, img.Digest, mallory, nil)
	if err != nil {
		t.Fatal(err)
	}
	forged := p.cosign(byMallory, true)
	ofOther, err := signer.SignCosign(name, other.Digest, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	copied := p.cosign(ofOther, true)
	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("never pushed"), Size: 12}
	indexTag := strings.TrimSuffix(signer.CosignSignatureTag(img.Digest), ".sig")
	p.manifest(indexTag, ocispec.MediaTypeImageIndex, map[string]any{
		"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageIndex,
		"manifests": []ocispec.Descriptor{sbom, forged, copied, missing},
	})

	chk := signed.ReferrerCheck{
		Repo: "acme/app", Subject: img.Digest,
		Keys:   verify.NewKeys(alice.TUF, bob.TUF),
		Names:  map[string]string{alice.ID: "alice", mallory.ID: "mallory"},
		Others: verify.NewKeys(mallory.TUF),
		Target: func(_ context.Context, d digest.Digest) (string, bool, error) {
			return "acme/app@" + d.String(), d == sbom.Digest, nil
		},
	}
	list, err := signed.ListReferrers(ctx, repo, chk)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		t.Logf("%+v", a)
	}
	got := map[digest.Digest]signed.Attached{}
	for _, a := range list {
		if _, dup := got[a.Digest]; dup {
			t.Errorf("%s is listed twice", a.Digest)
		}
		got[a.Digest] = a
	}
	if len(list) != 6 {
		t.Errorf("listed %d artifacts, want 6: %+v", len(list), list)
	}

	t.Run("the co-signed .sig lists both signatures, by name or by key ID", func(t *testing.T) {
		a := got[sig.Digest]
		if a.Format != verify.FormatCosign || !a.Verified || a.Reason != "" {
			t.Fatalf("%+v, want a verified cosign artifact", a)
		}
		if len(a.FoundBy) != 1 || a.FoundBy[0] != signer.CosignSignatureTag(img.Digest) {
			t.Errorf("found by %v, want the .sig tag", a.FoundBy)
		}
		if len(a.Signatures) != 2 {
			t.Fatalf("%d signatures, want alice's and bob's", len(a.Signatures))
		}
		want := []signed.AttachedSignature{
			{Key: "alice", KeyID: alice.ID, Delegated: true, Verified: true},
			{Key: bob.ID[:16], KeyID: bob.ID, Delegated: true, Verified: true},
		}
		for i, w := range want {
			if a.Signatures[i] != w {
				t.Errorf("signature %d: %+v, want %+v", i, a.Signatures[i], w)
			}
		}
	})
	t.Run("an unsigned SBOM with a target verifies by its target, found both ways", func(t *testing.T) {
		a := got[sbom.Digest]
		if a.Format != "" || !a.Verified || a.Target != "acme/app@"+sbom.Digest.String() || a.ArtifactType != "application/spdx+json" {
			t.Fatalf("%+v, want an unsigned SBOM verified by its target", a)
		}
		if strings.Join(a.FoundBy, ",") != "referrers,"+indexTag {
			t.Errorf("found by %v, want the referrers API and the referrers-tag-schema index", a.FoundBy)
		}
	})
	t.Run("an unsigned artifact without a target does not verify", func(t *testing.T) {
		a := got[stray.Digest]
		if a.Verified || !strings.Contains(a.Reason, "no target") {
			t.Errorf("%+v, want not verified: no target", a)
		}
	})
	t.Run("mallory's signature is named and does not verify: mallory is not delegated", func(t *testing.T) {
		a := got[forged.Digest]
		if a.Format != verify.FormatCosign || a.Verified || len(a.Signatures) != 1 {
			t.Fatalf("%+v, want one cosign signature that does not verify", a)
		}
		s := a.Signatures[0]
		if s.Key != "mallory" || s.KeyID != mallory.ID || s.Delegated || s.Verified || !strings.Contains(s.Reason, "not delegated for acme/app") {
			t.Errorf("%+v, want mallory's signature, not delegated", s)
		}
	})
	t.Run("alice's signature of another image does not verify for this one", func(t *testing.T) {
		a := got[copied.Digest]
		if a.Verified || !strings.Contains(a.Reason, other.Digest.String()) {
			t.Errorf("%+v, want not verified: it signs %s", a, other.Digest)
		}
	})
	t.Run("an index entry the registry does not serve is listed as not verifying", func(t *testing.T) {
		a := got[missing.Digest]
		if a.Verified || !strings.Contains(a.Reason, "does not serve") {
			t.Errorf("%+v, want not verified: not served", a)
		}
	})
	t.Run("with no delegated keys, nothing signed verifies", func(t *testing.T) {
		chk := chk
		chk.Keys = verify.Keys{}
		list, err := signed.ListReferrers(ctx, repo, chk)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range list {
			if a.Format != "" && a.Verified {
				t.Errorf("%s verified with no key delegated: %+v", a.Digest, a)
			}
		}
	})
}
