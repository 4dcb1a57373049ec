package verify_test

import (
	"context"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/internal/cosigntest"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

// TestCheckReferrerRoutes checks a manifest is checked in the format it is
// marked as, and one marked as none is ErrNotReferrer, not a verdict.
func TestCheckReferrerRoutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const ref, repo = "registry.example:5000/acme/app", "acme/app"
	subject := digest.FromString("the signed manifest")
	alice, err := signer.NewKey("alice", signer.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := signer.NewKey("bob", signer.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	art, err := signer.SignCosign(ref, subject, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := cosigntest.Blobs{}.Add(art)
	a := verify.Artifact{MediaType: "application/vnd.oci.image.manifest.v1+json", Manifest: art.Manifest, Blob: b.Get}

	if f, ok := verify.ReferrerFormat(a.MediaType, a.Manifest); !ok || f != verify.FormatCosign {
		t.Fatalf("routed as %q, %v; want cosign", f, ok)
	}
	r, err := verify.CheckReferrer(ctx, a, verify.NewKeys(alice.TUF), repo, subject)
	if err != nil || r.Format != verify.FormatCosign || r.Verified() != nil {
		t.Fatalf("alice's signature: %+v, %v, verified: %v", r, err, r.Verified())
	}
	if id, _ := alice.TUF.ID(); r.Signatures[0].KeyID != id {
		t.Errorf("signed by %q, want alice's key %q", r.Signatures[0].KeyID, id)
	}
	if r, err := verify.CheckReferrer(ctx, a, verify.NewKeys(bob.TUF), repo, subject); err != nil || r.Verified() == nil {
		t.Errorf("alice's signature checked with bob's key: %v, verified: %v", err, r.Verified())
	}
	if r, err := verify.CheckReferrer(ctx, a, verify.NewKeys(alice.TUF), repo, digest.FromString("another")); err != nil || r.Verified() == nil {
		t.Errorf("alice's signature checked for another subject: %v, verified: %v", err, r.Verified())
	}

	image := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}`)
	if _, ok := verify.ReferrerFormat("", image); ok {
		t.Error("a plain image is routed as a signed referrer")
	}
	if _, err := verify.CheckReferrer(ctx, verify.Artifact{Manifest: image, Blob: b.Get}, verify.NewKeys(alice.TUF), repo, subject); !errors.Is(err, verify.ErrNotReferrer) {
		t.Errorf("a plain image: %v, want ErrNotReferrer", err)
	}
	if _, err := verify.CheckReferrer(ctx, a, verify.NewKeys(alice.TUF), repo, "sha256:nothex"); err == nil {
		t.Error("a malformed subject was checked")
	}
}
