package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/reference"
	"github.com/signet-oss/signet/storage/driver"
)

// ResolveTag returns the digest tag points at in repo.
func (s *Store) ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error) {
	data, _, err := s.d.GetContent(ctx, tagPath(repo, tag))
	if errors.Is(err, driver.ErrNotFound) {
		return "", fmt.Errorf("%w: %s:%s", ErrManifestUnknown, repo, tag)
	}
	if err != nil {
		return "", err
	}
	d, err := digest.Parse(string(data))
	if err != nil {
		return "", fmt.Errorf("tag %s:%s: corrupt record: %w", repo, tag, err)
	}
	return d, nil
}

// TagVersion returns the digest tag points at in repo and the version of its
// record, for SetTagIf; both "" when the tag is not set.
func (s *Store) TagVersion(ctx context.Context, repo, tag string) (digest.Digest, string, error) {
	data, version, err := s.d.GetContent(ctx, tagPath(repo, tag))
	if errors.Is(err, driver.ErrNotFound) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	d, err := digest.Parse(string(data))
	if err != nil {
		return "", "", fmt.Errorf("tag %s:%s: corrupt record: %w", repo, tag, err)
	}
	return d, version, nil
}

// SetTagIf points tag at manifest d of repo only if the tag's record is still
// at version (still unset when version is ""), atomically against every other
// writer: ErrTagMoved otherwise. A record's version follows its content, so a
// tag moved away and back counts as unmoved, as it is.
func (s *Store) SetTagIf(ctx context.Context, repo, tag string, d digest.Digest, version string) error {
	if !reference.ValidTag(tag) {
		return fmt.Errorf("%w: %q", ErrTagInvalid, tag)
	}
	_, err := s.d.PutContentIf(ctx, tagPath(repo, tag), []byte(d), driver.Condition{IfAbsent: version == "", IfMatch: version})
	if errors.Is(err, driver.ErrPreconditionFailed) {
		return fmt.Errorf("%w: %s:%s", ErrTagMoved, repo, tag)
	}
	return err
}

// DeleteTag removes tag from repo; the manifest stays.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	if !reference.ValidTag(tag) {
		return fmt.Errorf("%w: %q", ErrTagInvalid, tag)
	}
	err := s.d.Delete(ctx, tagPath(repo, tag))
	if errors.Is(err, driver.ErrNotFound) {
		return fmt.Errorf("%w: %s:%s", ErrManifestUnknown, repo, tag)
	}
	return err
}

// Tags returns up to n tags of repo after last, in lexical order, and whether
// more follow. n < 0 means all. ErrNameUnknown if the repository does not exist.
func (s *Store) Tags(ctx context.Context, repo, last string, n int) ([]string, bool, error) {
	tags, err := s.listNames(ctx, tagsDir(repo))
	if err != nil {
		return nil, false, err
	}
	if len(tags) == 0 {
		if ok, err := s.exists(ctx, manifestsDir(repo)); err != nil {
			return nil, false, err
		} else if !ok {
			return nil, false, fmt.Errorf("%w: %s", ErrNameUnknown, repo)
		}
	}
	page, more := Paginate(tags, last, n)
	return page, more, nil
}
