package oci_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/client/oci"
)

func TestReferrers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const notary = "application/vnd.cncf.notary.signature"
	// push stores a manifest of one blob, with subject when it is not nil,
	// and returns its descriptor.
	push := func(t *testing.T, r *oci.Repository, artifactType string, subject *ocispec.Descriptor) ocispec.Descriptor {
		t.Helper()
		blob := randomBlob(t, 64)
		if err := r.PushBytes(ctx, "application/octet-stream", blob); err != nil {
			t.Fatal(err)
		}
		if err := r.PushBytes(ctx, ocispec.MediaTypeEmptyJSON, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: artifactType, Config: ocispec.DescriptorEmptyJSON,
			Layers:  []ocispec.Descriptor{{MediaType: "application/octet-stream", Digest: digest.FromBytes(blob), Size: 64}},
			Subject: subject}
		m.SchemaVersion = 2
		raw, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		d := digest.FromBytes(raw)
		if err := r.PutManifest(ctx, d.String(), ocispec.MediaTypeImageManifest, raw); err != nil {
			t.Fatal(err)
		}
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: artifactType, Digest: d, Size: int64(len(raw))}
	}

	for _, c := range []struct {
		name string
		wrap func(http.Handler) http.Handler
	}{
		{"through the referrers API", nil},
		{"from the referrers tag, where the registry has no referrers API", func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Path, "/referrers/") {
					http.NotFound(w, r)
					return
				}
				h.ServeHTTP(w, r)
			})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			host := startRegistry(t, c.wrap)
			r, err := oci.NewRepository(ctx, host, "acme/app", oci.Options{Push: true})
			if err != nil {
				t.Fatal(err)
			}
			subject := push(t, r, "", nil)
			sig := push(t, r, notary, &subject)
			sbom := push(t, r, "application/spdx+json", &subject)
			if c.wrap != nil {
				// What clients write instead: an index of the referrers under
				// the tag sha256-<hex>.
				ix := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{sig, sbom}}
				ix.SchemaVersion = 2
				raw, _ := json.Marshal(ix)
				if err := r.PutManifest(ctx, "sha256-"+subject.Digest.Encoded(), ocispec.MediaTypeImageIndex, raw); err != nil {
					t.Fatal(err)
				}
			}
			got, err := r.Referrers(ctx, subject.Digest, notary)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Digest != sig.Digest {
				t.Errorf("notation referrers %+v, want the signature alone", got)
			}
			all, err := r.Referrers(ctx, subject.Digest, "")
			if err != nil || len(all) != 2 {
				t.Errorf("every referrer: %+v (%v), want the signature and the SBOM", all, err)
			}
			none, err := r.Referrers(ctx, sig.Digest, "")
			if err != nil || len(none) != 0 {
				t.Errorf("referrers of a manifest nothing refers to: %+v (%v)", none, err)
			}
		})
	}
}
