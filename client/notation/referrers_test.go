package notation_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/client/notation"
	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/registry"
)

// startRegistry runs Signet's registry in the test process (no auth), behind
// wrap, and returns its host:port.
func startRegistry(t *testing.T, wrap func(http.Handler) http.Handler) string {
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
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(srv)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return strings.TrimPrefix(ts.URL, "http://")
}

func TestReferrersFallBackToTheReferrersTag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	notary := notation.ArtifactType
	// push stores a manifest of one blob, with subject when it is not nil,
	// and returns its descriptor.
	push := func(t *testing.T, r *oci.Repository, artifactType string, subject *ocispec.Descriptor) ocispec.Descriptor {
		t.Helper()
		blob := make([]byte, 64)
		rand.Read(blob)
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
			got, err := notation.Referrers(ctx, r, subject.Digest, notary)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Digest != sig.Digest {
				t.Errorf("notation referrers %+v, want the signature alone", got)
			}
			all, err := notation.Referrers(ctx, r, subject.Digest, "")
			if err != nil || len(all) != 2 {
				t.Errorf("every referrer: %+v (%v), want the signature and the SBOM", all, err)
			}
			none, err := notation.Referrers(ctx, r, sig.Digest, "")
			if err != nil || len(none) != 0 {
				t.Errorf("referrers of a manifest nothing refers to: %+v (%v)", none, err)
			}
		})
	}
}
