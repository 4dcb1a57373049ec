package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Referrers lists the manifests that refer to subject (by their subject
// field), with artifactType when it is not "": the registry's referrers API
// (GET /v2/<name>/referrers/<digest>), or, where the registry has none (404),
// the index clients keep under the referrers tag "<alg>-<hex>" instead. The
// descriptors are the registry's word: a caller checks each manifest it reads.
func (r *Repository) Referrers(ctx context.Context, subject digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	if err := subject.Validate(); err != nil {
		return nil, fmt.Errorf("referrers of %q: %w", subject, err)
	}
	u := r.url("referrers", subject.String())
	if artifactType != "" {
		u += "?artifactType=" + url.QueryEscape(artifactType)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageIndex)
	resp, err := r.do(req)
	if err != nil {
		return nil, err
	}
	var raw []byte
	if err := expect(resp, http.StatusOK); errors.Is(err, ErrNotFound) {
		raw, _, err = r.GetManifest(ctx, subject.Algorithm().String()+"-"+subject.Encoded(), MaxManifest)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	} else {
		defer resp.Body.Close()
		if raw, err = io.ReadAll(io.LimitReader(resp.Body, MaxManifest+1)); err != nil {
			return nil, err
		}
		if len(raw) > MaxManifest {
			return nil, &MismatchError{What: "referrers of " + r.Name + "@" + subject.String(), Reason: fmt.Sprintf("more than %d bytes", MaxManifest)}
		}
	}
	var index ocispec.Index
	if err := json.Unmarshal(raw, &index); err != nil {
		return nil, fmt.Errorf("referrers of %s@%s: %w", r.Name, subject, err)
	}
	var out []ocispec.Descriptor
	for _, d := range index.Manifests {
		if artifactType == "" || d.ArtifactType == artifactType {
			out = append(out, d)
		}
	}
	return out, nil
}
