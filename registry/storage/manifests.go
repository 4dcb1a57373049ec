package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/signet-oss/signet/reference"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/storage/driver"
)

// Manifest media types the registry accepts.
const (
	MediaTypeOCIManifest    = ocispec.MediaTypeImageManifest
	MediaTypeOCIIndex       = ocispec.MediaTypeImageIndex
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// Manifest is a stored manifest.
type Manifest struct {
	MediaType string
	Digest    digest.Digest
	Content   []byte
}

// ManifestInfo is what a successful PutManifest learnt from the manifest.
type ManifestInfo struct {
	Digest    digest.Digest
	MediaType string
	Subject   *ocispec.Descriptor
}

// manifestFields are the fields of every accepted manifest kind that the registry
// reads. Unknown fields are kept byte for byte: the registry stores what it got.
type manifestFields struct {
	SchemaVersion *int                 `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
}

// ParseManifest checks that content is a well-formed manifest of an accepted kind.
// contentType is the media type the client sent (may be empty). It returns the
// manifest's media type and fields.
func ParseManifest(contentType string, content []byte) (string, *manifestFields, error) {
	var m manifestFields
	if err := json.Unmarshal(content, &m); err != nil {
		return "", nil, fmt.Errorf("%w: not JSON: %v", ErrManifestInvalid, err)
	}
	if m.SchemaVersion == nil || *m.SchemaVersion != 2 {
		return "", nil, fmt.Errorf("%w: schemaVersion must be 2 (Docker schema 1 is not supported)", ErrManifestInvalid)
	}
	mediaType := contentType
	switch {
	case mediaType == "" || mediaType == "application/octet-stream":
		mediaType = m.MediaType
	case m.MediaType != "" && m.MediaType != mediaType:
		return "", nil, fmt.Errorf("%w: Content-Type %q differs from the manifest's mediaType %q", ErrManifestInvalid, contentType, m.MediaType)
	}
	if mediaType == "" {
		return "", nil, fmt.Errorf("%w: no media type: send Content-Type or set mediaType", ErrManifestInvalid)
	}
	switch mediaType {
	case MediaTypeOCIManifest, MediaTypeDockerManifest:
		if m.Config == nil {
			return "", nil, fmt.Errorf("%w: an image manifest needs a config descriptor", ErrManifestInvalid)
		}
		if m.Manifests != nil {
			return "", nil, fmt.Errorf("%w: an image manifest has no manifests list", ErrManifestInvalid)
		}
		if err := checkDescriptor("config", *m.Config); err != nil {
			return "", nil, err
		}
		for i, l := range m.Layers {
			if err := checkDescriptor(fmt.Sprintf("layers[%d]", i), l); err != nil {
				return "", nil, err
			}
		}
	case MediaTypeOCIIndex, MediaTypeDockerList:
		if m.Config != nil || m.Layers != nil {
			return "", nil, fmt.Errorf("%w: an index has no config or layers", ErrManifestInvalid)
		}
		for i, c := range m.Manifests {
			if err := checkDescriptor(fmt.Sprintf("manifests[%d]", i), c); err != nil {
				return "", nil, err
			}
		}
	default:
		return "", nil, fmt.Errorf("%w: media type %q is not a supported manifest type", ErrManifestInvalid, mediaType)
	}
	if m.Subject != nil {
		if err := checkDescriptor("subject", *m.Subject); err != nil {
			return "", nil, err
		}
	}
	return mediaType, &m, nil
}

func checkDescriptor(field string, d ocispec.Descriptor) error {
	if d.MediaType == "" {
		return fmt.Errorf("%w: %s has no mediaType", ErrManifestInvalid, field)
	}
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("%w: %s: digest %q: %v", ErrManifestInvalid, field, d.Digest, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("%w: %s: negative size", ErrManifestInvalid, field)
	}
	return nil
}

// PutManifest stores content as a manifest of repo. ref is a tag, or a digest the
// content must match; tags are further tags to point at it. Referenced blobs and
// child manifests need not be present (sparse manifests, allowed by OCI 1.1).
func (s *Store) PutManifest(ctx context.Context, repo, ref, contentType string, content []byte, tags []string) (*ManifestInfo, error) {
	return s.putManifest(ctx, repo, ref, contentType, content, tags, "")
}

// PutAdmittedManifest stores content by its digest ref as PutManifest does,
// and records that the gate admitted it as a signed referrer of subject
// (MarkAdmitted), the two writes made durable side by side: a PUT waits for one
// sync, not two in a row.
//
// Why no order is needed between them (kill -9 at any point): every reader
// of an admission record serves the artifact only after reading the manifest
// the record names and checking it whole with the keys delegated then (the
// gate's referrerServable), and an uncovered manifest without its record is
// never served in an enforced repository. So the artifact is either admitted
// (both written) or, for every reader, absent: a record whose manifest is
// missing makes nothing visible, and bytes stored later under that digest are
// the very bytes that were checked, and are checked again when read. A
// manifest without its record is an unadmitted one, never served. What must
// follow both is the tag (Store.SetTagIf), which the caller moves only once
// this returns without error. A PUT that conflicts with the stored manifest
// (another media type) fails before either write starts; one that loses a race
// to such a PUT may leave its record, the same state as a crash.
func (s *Store) PutAdmittedManifest(ctx context.Context, repo, ref, contentType string, content []byte, subject digest.Digest) (*ManifestInfo, error) {
	if !isDigestRef(ref) {
		return nil, fmt.Errorf("%w: an admitted manifest is stored by digest, not under %q", ErrManifestInvalid, ref)
	}
	return s.putManifest(ctx, repo, ref, contentType, content, nil, subject)
}

// putManifest is PutManifest, recording the manifest's admission as a signed
// referrer of admittedAs when that is set (PutAdmittedManifest).
func (s *Store) putManifest(ctx context.Context, repo, ref, contentType string, content []byte, tags []string, admittedAs digest.Digest) (*ManifestInfo, error) {
	if int64(len(content)) > s.opts.MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrManifestTooLarge, len(content), s.opts.MaxManifestSize)
	}
	alg := digest.Canonical
	var want digest.Digest
	if isDigestRef(ref) {
		d, err := reference.ParseDigest(ref)
		if err != nil {
			return nil, err
		}
		want, alg = d, d.Algorithm()
	} else {
		tags = append([]string{ref}, tags...)
	}
	for _, t := range tags {
		if !reference.ValidTag(t) {
			return nil, fmt.Errorf("%w: %q", ErrTagInvalid, t)
		}
	}
	got := alg.FromBytes(content)
	if want != "" && got != want {
		return nil, &DigestMismatchError{Want: want.String(), Got: got.String()}
	}
	mediaType, fields, err := ParseManifest(contentType, content)
	if err != nil {
		return nil, err
	}
	var alongside func() error
	if admittedAs != "" {
		alongside = func() error { return s.MarkAdmitted(ctx, repo, got, admittedAs) }
	}
	if err := s.writeManifest(ctx, repo, got, mediaType, content, alongside); err != nil {
		return nil, err
	}
	if fields.Subject != nil {
		desc := ocispec.Descriptor{
			MediaType:    mediaType,
			Digest:       got,
			Size:         int64(len(content)),
			ArtifactType: fields.ArtifactType,
			Annotations:  fields.Annotations,
		}
		if desc.ArtifactType == "" && fields.Config != nil {
			desc.ArtifactType = fields.Config.MediaType
		}
		data, err := json.Marshal(desc)
		if err != nil {
			return nil, err
		}
		if _, err := s.d.PutContent(ctx, referrerPath(repo, fields.Subject.Digest, got), data); err != nil {
			return nil, err
		}
	}
	for _, t := range tags {
		if _, err := s.d.PutContent(ctx, tagPath(repo, t), []byte(got)); err != nil {
			return nil, err
		}
	}
	return &ManifestInfo{Digest: got, MediaType: mediaType, Subject: fields.Subject}, nil
}

// writeManifest stores the manifest unless it is already there. A digest keeps
// the media type it was first stored with: a PUT of the same bytes under
// another type is refused (ErrManifestInvalid), never stored over it, since a
// manifest's type says how its bytes are read (and in an enforced repository
// it is what its target signed). alongside, when set, is one more write made
// once the manifest is known to be stored or about to be, concurrently with
// the manifest's own write, never when the PUT is refused; writeManifest
// returns when both are done.
func (s *Store) writeManifest(ctx context.Context, repo string, d digest.Digest, mediaType string, content []byte, alongside func() error) (err error) {
	p := manifestPath(repo, d)
	stored := make([]byte, 0, len(mediaType)+1+len(content))
	stored = append(append(append(stored, mediaType...), '\n'), content...)
	var wg sync.WaitGroup
	var alongsideErr error
	defer func() {
		wg.Wait()
		if err == nil {
			err = alongsideErr
		}
	}()
	startAlongside := func() {
		if write := alongside; write != nil {
			alongside = nil
			wg.Go(func() { alongsideErr = write() })
		}
	}
	for range 2 {
		old, version, err := s.d.GetContent(ctx, p)
		cond := driver.Condition{IfAbsent: true}
		switch {
		case errors.Is(err, driver.ErrNotFound):
		case err != nil:
			return err
		case bytes.Equal(old, stored):
			startAlongside()
			return nil
		default:
			i := bytes.IndexByte(old, '\n')
			if i >= 0 && bytes.Equal(old[i+1:], content) {
				return fmt.Errorf("%w: %s@%s is stored as %s; a PUT cannot change its media type to %s", ErrManifestInvalid, repo, d, old[:i], mediaType)
			}
			cond = driver.Condition{IfMatch: version} // a corrupt record is replaced
		}
		startAlongside()
		_, err = s.d.PutContentIf(ctx, p, stored, cond)
		if !errors.Is(err, driver.ErrPreconditionFailed) {
			return err
		}
		// Another PUT of this digest got there first: compare with its record.
	}
	return fmt.Errorf("manifest %s@%s: concurrent writes did not settle", repo, d)
}

func isDigestRef(ref string) bool { return strings.Contains(ref, ":") }

// GetManifest returns the manifest ref (a tag or a digest) of repo.
func (s *Store) GetManifest(ctx context.Context, repo, ref string) (*Manifest, error) {
	var d digest.Digest
	if isDigestRef(ref) {
		var err error
		if d, err = reference.ParseDigest(ref); err != nil {
			return nil, err
		}
	} else {
		if !reference.ValidTag(ref) {
			return nil, fmt.Errorf("%w: %q", ErrTagInvalid, ref)
		}
		var err error
		if d, err = s.ResolveTag(ctx, repo, ref); err != nil {
			return nil, err
		}
		// The tag, just read, says the manifest is there: its record may come
		// from the cache (see manifestCache).
		if m, ok := s.manifests.get(repo, d); ok {
			return m, nil
		}
	}
	data, _, err := s.d.GetContent(ctx, manifestPath(repo, d))
	if errors.Is(err, driver.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s@%s", ErrManifestUnknown, repo, d)
	}
	if err != nil {
		return nil, err
	}
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return nil, fmt.Errorf("manifest %s@%s: corrupt record", repo, d)
	}
	m := &Manifest{MediaType: string(data[:i]), Digest: d, Content: data[i+1:]}
	if !isDigestRef(ref) {
		s.manifests.put(repo, m)
	}
	return m, nil
}

// DeleteManifest removes manifest d from repo, with the tags that point at it and
// its entry in its subject's referrers.
func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	m, err := s.GetManifest(ctx, repo, d.String())
	if err != nil {
		return err
	}
	tags, err := s.listNames(ctx, tagsDir(repo))
	if err != nil {
		return err
	}
	for _, t := range tags {
		if td, err := s.ResolveTag(ctx, repo, t); err == nil && td == d {
			if err := s.d.Delete(ctx, tagPath(repo, t)); err != nil && !errors.Is(err, driver.ErrNotFound) {
				return err
			}
		}
	}
	if _, fields, err := ParseManifest(m.MediaType, m.Content); err == nil && fields.Subject != nil {
		err := s.d.Delete(ctx, referrerPath(repo, fields.Subject.Digest, d))
		if err != nil && !errors.Is(err, driver.ErrNotFound) {
			return err
		}
	}
	s.manifests.drop(repo, d)
	err = s.d.Delete(ctx, manifestPath(repo, d))
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	return nil
}

// Referrers returns the descriptors of the manifests in repo whose subject is
// subject, those of artifactType only if it is not empty.
func (s *Store) Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	entries, err := s.d.List(ctx, referrersDir(repo, subject))
	if errors.Is(err, driver.ErrNotFound) {
		return []ocispec.Descriptor{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]ocispec.Descriptor, 0, len(entries))
	for _, p := range entries {
		data, _, err := s.d.GetContent(ctx, p)
		if errors.Is(err, driver.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		var desc ocispec.Descriptor
		if err := json.Unmarshal(data, &desc); err != nil {
			return nil, fmt.Errorf("referrer record %s: %w", p, err)
		}
		if artifactType == "" || desc.ArtifactType == artifactType {
			out = append(out, desc)
		}
	}
	return out, nil
}

// Catalog returns up to n repository names after last, in lexical order, and
// whether more follow; with visible set, only the names it accepts. n < 0 means all.
func (s *Store) Catalog(ctx context.Context, last string, n int, visible func(string) bool) ([]string, bool, error) {
	var repos []string
	err := s.d.Walk(ctx, reposRoot(), func(fi driver.FileInfo) error {
		if !fi.IsDir {
			return nil
		}
		base := fi.Path[strings.LastIndexByte(fi.Path, '/')+1:]
		if !strings.HasPrefix(base, "_") {
			return nil
		}
		if repo, ok := repoFromManifestsDir(fi.Path); ok && (visible == nil || visible(repo)) {
			repos = append(repos, repo)
		}
		return driver.ErrSkipDir
	})
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return nil, false, err
	}
	slices.Sort(repos)
	page, more := Paginate(repos, last, n)
	return page, more, nil
}

// listNames returns the base names of the entries of dir (none if it is absent).
func (s *Store) listNames(ctx context.Context, dir string) ([]string, error) {
	entries, err := s.d.List(ctx, dir)
	if errors.Is(err, driver.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, p := range entries {
		names[i] = p[strings.LastIndexByte(p, '/')+1:]
	}
	slices.Sort(names)
	return names, nil
}

// Paginate returns the page of up to n names of sorted after last, and whether
// more follow (never nil, so it encodes as []). n < 0 means all.
func Paginate(sorted []string, last string, n int) ([]string, bool) {
	if sorted == nil {
		sorted = []string{}
	}
	if last != "" {
		i, found := slices.BinarySearch(sorted, last)
		if found {
			i++
		}
		sorted = sorted[i:]
	}
	if n >= 0 && len(sorted) > n {
		return sorted[:n], true
	}
	return sorted, false
}
