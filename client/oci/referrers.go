package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrNoReferrersAPI: the registry does not serve the referrers API (it answers
// 404 for it, as registries older than OCI distribution 1.1 do); clients then
// read the referrers-tag-schema index at tag sha256-<hex> instead.
var ErrNoReferrersAPI = errors.New("the registry has no referrers API")

// Referrers asks the referrers API (GET /v2/<name>/referrers/<digest>) for the
// manifests whose subject is d: the descriptors of the index it answers, which
// say nothing the caller may trust (each manifest is fetched by digest and
// checked). A registry without the API gives ErrNoReferrersAPI.
func (r *Repository) Referrers(ctx context.Context, d digest.Digest) ([]ocispec.Descriptor, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url("referrers", d.String()), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageIndex)
	resp, err := r.do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		// An unknown subject answers an empty index; a 404 is a registry
		// without the API.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %w", r.Host, ErrNoReferrersAPI)
	}
	if err := expect(resp, http.StatusOK); err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifest+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxManifest {
		return nil, &MismatchError{What: "referrers of " + r.Name + "@" + d.String(), Reason: fmt.Sprintf("an index of more than %d bytes", MaxManifest)}
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("referrers of %s@%s: not an OCI index: %w", r.Name, d, err)
	}
	return idx.Manifests, nil
}
