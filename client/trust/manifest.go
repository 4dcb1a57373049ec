package trust

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/client"
)

// Manifest is a manifest to sign: its bytes' digest and length, its media type,
// and, for an index, the child manifests its signature also vouches for.
type Manifest struct {
	Digest    digest.Digest
	Length    int64
	MediaType string
	Closure   []digest.Digest
}

// maxManifest bounds a manifest read for signing (the registry's own limit is 4 MiB).
const maxManifest = 4 << 20

// manifestAccept is every manifest type a registry may serve.
var manifestAccept = []string{
	ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}

// indexTypes are the media types whose children form a closure.
var indexTypes = map[string]bool{
	ocispec.MediaTypeImageIndex:                                 true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
}

// parsed is what signing needs from a manifest's bytes.
type parsed struct {
	MediaType string               `json:"mediaType"`
	Manifests []ocispec.Descriptor `json:"manifests"`
}

// describe builds a Manifest from raw bytes and the media type they were served
// or listed with; children returns the raw bytes and type of a child (for
// nested indexes), or an error.
func describe(raw []byte, mediaType string, children func(ocispec.Descriptor) ([]byte, string, error), depth int) (*Manifest, error) {
	var p parsed
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("the manifest is not JSON: %w", err)
	}
	if mediaType == "" || mediaType == "application/octet-stream" {
		mediaType = p.MediaType
	}
	if mediaType == "" {
		return nil, errors.New("the manifest names no media type, and none was served with it")
	}
	m := &Manifest{Digest: digest.FromBytes(raw), Length: int64(len(raw)), MediaType: mediaType}
	if !indexTypes[mediaType] {
		return m, nil
	}
	seen := map[digest.Digest]bool{}
	for _, c := range p.Manifests {
		if err := c.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("the index lists child %q: %w", c.Digest, err)
		}
		if !seen[c.Digest] {
			seen[c.Digest] = true
			m.Closure = append(m.Closure, c.Digest)
		}
		if indexTypes[c.MediaType] && depth < 4 && children != nil {
			craw, ctype, err := children(c)
			if err != nil {
				return nil, err
			}
			sub, err := describe(craw, ctype, children, depth+1)
			if err != nil {
				return nil, fmt.Errorf("child index %s: %w", c.Digest, err)
			}
			for _, d := range sub.Closure {
				if !seen[d] {
					seen[d] = true
					m.Closure = append(m.Closure, d)
				}
			}
		}
	}
	return m, nil
}

// ManifestFromLayout reads the manifest to sign from an OCI image layout: the one
// with digest d if given, else the one whose org.opencontainers.image.ref.name is
// tag, else the only manifest of index.json when it is named by no tag.
func ManifestFromLayout(dir, tag string, d digest.Digest) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("%s is not an OCI image layout: %w", dir, err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%s/index.json: %w", dir, err)
	}
	var pick *ocispec.Descriptor
	for i, m := range idx.Manifests {
		switch {
		case d != "" && m.Digest == d:
			pick = &idx.Manifests[i]
		case d == "" && tag != "" && m.Annotations[ocispec.AnnotationRefName] == tag:
			pick = &idx.Manifests[i]
		}
	}
	if pick == nil && d == "" && len(idx.Manifests) == 1 && idx.Manifests[0].Annotations[ocispec.AnnotationRefName] == "" {
		pick = &idx.Manifests[0]
	}
	if pick == nil && d != "" {
		pick = &ocispec.Descriptor{Digest: d}
	}
	if pick == nil {
		return nil, fmt.Errorf("%s/index.json lists %d manifests and none is named %q (annotation %s): pass --digest", dir, len(idx.Manifests), tag, ocispec.AnnotationRefName)
	}
	read := func(desc ocispec.Descriptor) ([]byte, string, error) {
		if err := desc.Digest.Validate(); err != nil {
			return nil, "", err
		}
		raw, err := os.ReadFile(filepath.Join(dir, "blobs", desc.Digest.Algorithm().String(), desc.Digest.Encoded()))
		if err != nil {
			return nil, "", fmt.Errorf("manifest %s is not in the layout: %w", desc.Digest, err)
		}
		if got := desc.Digest.Algorithm().FromBytes(raw); got != desc.Digest {
			return nil, "", fmt.Errorf("blob %s of the layout hashes to %s: the layout is corrupt", desc.Digest, got)
		}
		return raw, desc.MediaType, nil
	}
	raw, mt, err := read(*pick)
	if err != nil {
		return nil, err
	}
	return describe(raw, mt, read, 0)
}

// ManifestFromRegistry fetches manifest d of repo from the registry at host, with
// the login kept in $SIGNET_HOME (a pull token for repo).
func (s *Session) ManifestFromRegistry(ctx context.Context, host, repo string, d digest.Digest) (*Manifest, error) {
	base, hostport, err := client.BaseURL(ctx, host, false)
	if err != nil {
		return nil, err
	}
	hc := s.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	token, err := s.registryToken(ctx, base, hostport, repo)
	if err != nil {
		return nil, err
	}
	get := func(desc ocispec.Descriptor) ([]byte, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v2/"+repo+"/manifests/"+desc.Digest.String(), nil)
		if err != nil {
			return nil, "", err
		}
		req.Header.Set("Accept", strings.Join(manifestAccept, ", "))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, "", fmt.Errorf("fetching %s@%s: %w", repo, desc.Digest, err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
		if err != nil {
			return nil, "", fmt.Errorf("fetching %s@%s: %w", repo, desc.Digest, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, "", fmt.Errorf("GET %s/v2/%s/manifests/%s answered %s: push the image first, and check the digest", hostport, repo, desc.Digest, resp.Status)
		}
		if len(raw) > maxManifest {
			return nil, "", fmt.Errorf("manifest %s@%s is larger than %d bytes", repo, desc.Digest, maxManifest)
		}
		if got := desc.Digest.Algorithm().FromBytes(raw); got != desc.Digest {
			return nil, "", fmt.Errorf("the registry served bytes hashing to %s for %s@%s: refusing to sign them", got, repo, desc.Digest)
		}
		mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
		return raw, strings.TrimSpace(mt), nil
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("digest %q: %w", d, err)
	}
	raw, mt, err := get(ocispec.Descriptor{Digest: d})
	if err != nil {
		return nil, err
	}
	return describe(raw, mt, get, 0)
}

// registryToken gets a pull token for repo from the registry's token endpoint
// with the refresh token kept in $SIGNET_HOME for host; "" for a registry that
// asks for none.
func (s *Session) registryToken(ctx context.Context, base, host, repo string) (string, error) {
	tc := &client.TokenClient{HTTP: s.HTTP}
	ch, err := tc.Discover(ctx, base)
	if err != nil {
		if strings.Contains(err.Error(), "asks for no login") {
			return "", nil
		}
		return "", err
	}
	home, err := client.LoadHome()
	if err != nil {
		return "", err
	}
	_, refresh := home.Login(host)
	if refresh == "" {
		return "", fmt.Errorf("no login for %s in %s: run `trustctl login %s`", host, home.Path, host)
	}
	tr, err := tc.RefreshGrant(ctx, ch.Realm(), ch.Service(), refresh, "repository:"+repo+":pull")
	if err != nil {
		return "", err
	}
	return tr.Access(), nil
}
