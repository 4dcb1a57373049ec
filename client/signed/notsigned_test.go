package signed_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/client/signed"
	"github.com/signet-oss/signet/client/trust"
	"github.com/signet-oss/signet/internal/tuftest"
	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

// TestADigestIsSignedByTheTagsThatNameIt: a digest with no target of its own
// resolves through the signed tags of its repository that name it, never
// through another repository's; and a reference nothing vouches for is
// explained: the org does not exist, the repository is not delegated, or the
// tag or digest is not among its signed ones, which are listed.
func TestADigestIsSignedByTheTagsThatNameIt(t *testing.T) {
	ctx := context.Background()
	r := tuftest.NewRepo(t)
	app, other := trustnames.RoleForRepo("acme/app"), trustnames.RoleForRepo("acme/other")
	r.Delegate("targets", "org-acme", trustnames.OrgPaths("acme"), "org")
	r.Delegate("org-acme", app, trustnames.RepoPaths("acme/app"), "alice")
	r.Delegate("org-acme", other, trustnames.RepoPaths("acme/other"), "alice")
	// acme/revoked's role is signed by mallory, whose key is not delegated
	// for it (revoked): the tags it lists vouch for nothing.
	revoked := trustnames.RoleForRepo("acme/revoked")
	r.Delegate("org-acme", revoked, trustnames.RepoPaths("acme/revoked"), "alice")
	r.Keys["mallory"] = tuftest.NewKey(t)
	r.Signers[app], r.Signers[other], r.Signers[revoked] = []string{"alice"}, []string{"alice"}, []string{"mallory"}
	v1 := digest.Digest(r.AddTarget(app, "acme/app:v1", []byte(`{"v":1}`), ocispec.MediaTypeImageManifest))
	r.AddTarget(app, "acme/app:latest", []byte(`{"v":1}`), ocispec.MediaTypeImageManifest)
	v2 := digest.Digest(r.AddTarget(app, "acme/app:v2", []byte(`{"v":2}`), ocispec.MediaTypeImageManifest))
	elsewhere := digest.Digest(r.AddTarget(other, "acme/other:v1", []byte(`{"v":3}`), ocispec.MediaTypeImageManifest))
	forged := digest.Digest(r.AddTarget(revoked, "acme/revoked:v1", []byte(`{"v":4}`), ocispec.MediaTypeImageManifest))
	r.Publish("targets", "org-acme", app, other, revoked)
	vc, err := verify.New(verify.Config{TrustdURL: r.Srv.URL, Root: r.RootBytes(), CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ref := func(s string) trust.Ref {
		t.Helper()
		rf, err := trust.ParseRef("registry.test/" + s)
		if err != nil {
			t.Fatal(err)
		}
		return rf
	}

	for d, want := range map[digest.Digest][]string{v1: {"latest", "v1"}, v2: {"v2"}} {
		st, tags, err := signed.ResolveOrExplain(ctx, vc, "registry.test", ref("acme/app@"+d.String()))
		if err != nil || st.Target == nil || st.Target.Digest != d || !slices.Equal(tags, want) {
			t.Errorf("acme/app@%s: target %+v, tags %v (%v); want %s through %v", d, st.Target, tags, err, d, want)
		}
	}
	for s, want := range map[string][]string{
		"acme/app@" + elsewhere.String():  {"no signed tag or digest of acme/app is " + elsewhere.String(), "its signed tags: latest, v1, v2"},
		"acme/app:v9":                     {"acme/app has no tag v9 in the trust graph", "its signed tags: latest, v1, v2"},
		"acme/nodeleg:v1":                 {"acme/nodeleg is not delegated", "trustctl org delegate acme/nodeleg"},
		"nosuch/app@" + v1.String():       {"organisation nosuch does not exist on registry.test"},
		"acme/other@" + v2.String():       {"no signed tag or digest of acme/other", "its signed tags: v1"},
		"acme/revoked@" + forged.String(): {"acme/revoked@" + forged.String() + " is not signed"},
	} {
		_, tags, err := signed.ResolveOrExplain(ctx, vc, "registry.test", ref(s))
		if signed.Code(err) != signed.CodeNotSigned || len(tags) > 0 {
			t.Errorf("%s: code %d, tags %v (%v), want not signed", s, signed.Code(err), tags, err)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", s, err, w)
			}
		}
	}
}
