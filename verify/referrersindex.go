package verify

import (
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ReferrersIndex reads an index a client pushes under the referrers tag schema
// ("sha256-<hex>", distribution-spec 1.1, for registries without the referrers
// API; notation v1.3.2 writes one by default, through oras-go), strictly, in
// the shape oras-go writes it: exactly schemaVersion 2, the OCI index media
// type and manifests, each entry exactly a media type, digest and size, with
// the artifact type and annotations the referrers API lists. The index is not
// signed: the registry's gate compares each entry with what it admitted.
func ReferrersIndex(manifest []byte) ([]ocispec.Descriptor, error) {
	const what = "the referrers index"
	fields, err := strictObject(manifest, what, "schemaVersion", "mediaType", "manifests")
	if err != nil {
		return nil, err
	}
	var version int
	if err := decodeField(fields, "schemaVersion", &version); err != nil || version != 2 {
		return nil, fmt.Errorf("%s has schemaVersion %d, not 2 (%v)", what, version, err)
	}
	var mediaType string
	if err := decodeField(fields, "mediaType", &mediaType); err != nil || mediaType != ocispec.MediaTypeImageIndex {
		return nil, fmt.Errorf("%s is a %q, not an %s", what, mediaType, ocispec.MediaTypeImageIndex)
	}
	var entries []json.RawMessage
	if err := decodeField(fields, "manifests", &entries); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := make([]ocispec.Descriptor, 0, len(entries))
	for i, raw := range entries {
		d, err := decodeIndexEntry(raw, fmt.Sprintf("entry %d of %s", i, what))
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// decodeIndexEntry decodes a referrer's descriptor strictly: decodeDescriptor's
// fields, and an artifact type.
func decodeIndexEntry(raw []byte, what string) (ocispec.Descriptor, error) {
	fields, err := strictObject(raw, what, "mediaType", "size", "digest", "artifactType", "annotations")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var artifactType string
	if _, ok := fields["artifactType"]; ok {
		if err := decodeField(fields, "artifactType", &artifactType); err != nil || artifactType == "" {
			return ocispec.Descriptor{}, fmt.Errorf("%s: artifactType is not a media type (%v)", what, err)
		}
		delete(fields, "artifactType")
	}
	rest, err := json.Marshal(fields) // keys already checked: each once, exactly
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d, err := decodeDescriptor(rest, what, true)
	d.ArtifactType = artifactType
	return d, err
}
