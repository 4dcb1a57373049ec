package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/storage/driver"
)

// Records of the admission gate, kept with the rest of the registry's state.

// TrustMetadata keeps the registry's verified TUF metadata on the driver (it
// implements verify.MetadataStore), so every replica starts from what any of them
// verified last and none can be rolled back below it.
type TrustMetadata struct{ d driver.Driver }

// ErrMetadataNotStored is what Load returns for a name never saved.
var ErrMetadataNotStored = errors.New("trust metadata not stored")

// TrustMetadata returns the store of the registry's verified TUF metadata.
func (s *Store) TrustMetadata() *TrustMetadata { return &TrustMetadata{d: s.d} }

// Load returns the metadata file name ("timestamp.json", "3.root.json", ...).
func (t *TrustMetadata) Load(ctx context.Context, name string) ([]byte, error) {
	if !validMetadataName(name) {
		return nil, fmt.Errorf("trust metadata: invalid name %q", name)
	}
	b, _, err := t.d.GetContent(ctx, trustMetadataPath(name))
	if errors.Is(err, driver.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrMetadataNotStored, name)
	}
	return b, err
}

// Save stores the metadata file name.
func (t *TrustMetadata) Save(ctx context.Context, name string, data []byte) error {
	if !validMetadataName(name) {
		return fmt.Errorf("trust metadata: invalid name %q", name)
	}
	_, err := t.d.PutContent(ctx, trustMetadataPath(name), data)
	return err
}

func validMetadataName(name string) bool {
	return strings.HasSuffix(name, ".json") && !strings.Contains(name, "/") && driver.ValidPath("/"+name)
}

// MarkAdmitted records that manifest d of repo was admitted as a signature
// artifact of subject: it is served while subject is.
func (s *Store) MarkAdmitted(ctx context.Context, repo string, d, subject digest.Digest) error {
	_, err := s.d.PutContent(ctx, admittedPath(repo, d), []byte(subject))
	return err
}

// AdmittedSubject returns the subject of signature artifact d of repo, if it was
// admitted as one.
func (s *Store) AdmittedSubject(ctx context.Context, repo string, d digest.Digest) (digest.Digest, bool, error) {
	b, _, err := s.d.GetContent(ctx, admittedPath(repo, d))
	if errors.Is(err, driver.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	subj, err := digest.Parse(string(b))
	if err != nil {
		return "", false, fmt.Errorf("admission record %s@%s: %w", repo, d, err)
	}
	return subj, true, nil
}

// Admitted returns every signature artifact admitted in repo, with its subject.
func (s *Store) Admitted(ctx context.Context, repo string) (map[digest.Digest]digest.Digest, error) {
	ds, err := s.AdmittedDigests(ctx, repo)
	if err != nil {
		return nil, err
	}
	out := make(map[digest.Digest]digest.Digest, len(ds))
	for _, d := range ds {
		if subj, ok, err := s.AdmittedSubject(ctx, repo, d); err == nil && ok {
			out[d] = subj
		}
	}
	return out, nil
}

// AdmittedDigests lists the signature artifacts admitted in repo by their
// records' names alone, reading no record: a directory listing per digest
// algorithm, however many artifacts there are. A caller that knows the subjects
// of most of them reads only the records it does not know (AdmittedSubject).
func (s *Store) AdmittedDigests(ctx context.Context, repo string) ([]digest.Digest, error) {
	algs, err := s.d.List(ctx, admittedDir(repo))
	if errors.Is(err, driver.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	for _, a := range algs {
		alg := digest.Algorithm(a[strings.LastIndexByte(a, '/')+1:])
		names, err := s.d.List(ctx, a)
		if errors.Is(err, driver.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			d := digest.NewDigestFromEncoded(alg, n[strings.LastIndexByte(n, '/')+1:])
			if d.Validate() == nil {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// ManifestBlobs returns the blobs (config and layers) manifest d of repo
// references, nil for an index or a manifest not stored.
func (s *Store) ManifestBlobs(ctx context.Context, repo string, d digest.Digest) ([]digest.Digest, error) {
	m, err := s.GetManifest(ctx, repo, d.String())
	if errors.Is(err, ErrManifestUnknown) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	_, f, err := ParseManifest(m.MediaType, m.Content)
	if err != nil {
		return nil, nil
	}
	var out []digest.Digest
	if f.Config != nil {
		out = append(out, f.Config.Digest)
	}
	for _, l := range f.Layers {
		out = append(out, l.Digest)
	}
	return out, nil
}
