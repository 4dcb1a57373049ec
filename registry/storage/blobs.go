package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/storage/driver"
)

// linkRenewAge is the age past which a looked-at blob link is rewritten; GC's
// grace period must exceed it by the longest push.
const linkRenewAge = 6 * time.Hour

// StatBlob returns the size of blob d in repo, or ErrBlobUnknown.
// A client that finds a blob present skips its upload and soon pushes a manifest
// that references it, so a blob that is looked at is renewed: its link is
// rewritten once it is older than linkRenewAge, and garbage collection (whose
// grace period is longer) never takes a blob that a push is about to reference.
func (s *Store) StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	link, err := s.d.Stat(ctx, blobLinkPath(repo, d))
	if errors.Is(err, driver.ErrNotFound) {
		return 0, fmt.Errorf("%w: %s in %s", ErrBlobUnknown, d, repo)
	}
	if err != nil {
		return 0, err
	}
	if time.Since(link.ModTime) > linkRenewAge {
		if _, err := s.d.PutContent(ctx, blobLinkPath(repo, d), nil); err != nil {
			return 0, err
		}
	}
	_, size, err := s.blobBytes(ctx, d)
	if errors.Is(err, ErrBlobUnknown) {
		return 0, fmt.Errorf("%w: %s in %s", ErrBlobUnknown, d, repo)
	}
	return size, err
}

// OpenBlob opens blob d of repo for reading, with its size.
func (s *Store) OpenBlob(ctx context.Context, repo string, d digest.Digest) (ReadSeekCloser, int64, error) {
	if _, err := s.StatBlob(ctx, repo, d); err != nil {
		return nil, 0, err
	}
	var p string
	var size int64
	var rc io.ReadCloser
	for attempt := 0; ; attempt++ {
		var err error
		if p, size, err = s.blobBytes(ctx, d); err != nil {
			return nil, 0, err
		}
		rc, err = s.d.Reader(ctx, p, 0)
		if errors.Is(err, driver.ErrNotFound) && s.indirect && attempt == 0 {
			// A cached record may name bytes that a newer commit replaced and
			// garbage collection took: read the record again.
			s.refs.drop(d)
			continue
		}
		if errors.Is(err, driver.ErrNotFound) {
			return nil, 0, fmt.Errorf("%w: %s in %s", ErrBlobUnknown, d, repo)
		}
		if err != nil {
			return nil, 0, err
		}
		break
	}
	if rsc, ok := rc.(ReadSeekCloser); ok {
		return rsc, size, nil
	}
	return &seekingReader{ctx: ctx, d: s.d, path: p, size: size, rc: rc}, size, nil
}

// DeleteBlob removes blob d from repo. The bytes stay until garbage collection
// finds no repository that links them.
func (s *Store) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	err := s.d.Delete(ctx, blobLinkPath(repo, d))
	if errors.Is(err, driver.ErrNotFound) {
		return fmt.Errorf("%w: %s in %s", ErrBlobUnknown, d, repo)
	}
	return err
}

// MountBlob links blob d into repo from repository from, or, with from empty, from
// wherever the registry holds it. It returns the blob's size, or ErrBlobUnknown
// when there is nothing to mount (the caller then starts a normal upload).
func (s *Store) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (int64, error) {
	var size int64
	if from != "" {
		n, err := s.StatBlob(ctx, from, d)
		if err != nil {
			return 0, err
		}
		size = n
	} else {
		_, n, err := s.blobBytes(ctx, d)
		if err != nil {
			return 0, err
		}
		size = n
	}
	if err := s.linkBlob(ctx, repo, d); err != nil {
		return 0, err
	}
	// Garbage collection may have taken the bytes between the check above and
	// the link: then the mount did not happen, and the client uploads instead.
	s.refs.drop(d)
	if _, _, err := s.blobBytes(ctx, d); errors.Is(err, ErrBlobUnknown) {
		s.d.Delete(ctx, blobLinkPath(repo, d))
		return 0, err
	} else if err != nil {
		return 0, err
	}
	return size, nil
}

// linkBlob records that blob d is in repo.
func (s *Store) linkBlob(ctx context.Context, repo string, d digest.Digest) error {
	if ok, err := s.exists(ctx, blobLinkPath(repo, d)); err != nil || ok {
		return err
	}
	_, err := s.d.PutContent(ctx, blobLinkPath(repo, d), nil)
	return err
}

// seekingReader adapts a driver's forward-only reader to io.ReadSeeker. Seek only
// moves the position; the next Read reopens the object there if the open reader
// is elsewhere. So http.ServeContent's probe (seek to the end and back) costs
// nothing on an object store, where each reopen is a request.
type seekingReader struct {
	ctx    context.Context
	d      driver.Driver
	path   string
	size   int64
	offset int64
	rc     io.ReadCloser
	rcPos  int64 // where rc stands
}

func (r *seekingReader) Read(p []byte) (int, error) {
	if r.rc != nil && r.rcPos != r.offset {
		r.rc.Close()
		r.rc = nil
	}
	if r.rc == nil {
		if r.offset >= r.size {
			return 0, io.EOF
		}
		rc, err := r.d.Reader(r.ctx, r.path, r.offset)
		if err != nil {
			return 0, err
		}
		r.rc, r.rcPos = rc, r.offset
	}
	n, err := r.rc.Read(p)
	r.offset += int64(n)
	r.rcPos += int64(n)
	return n, err
}

func (r *seekingReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.offset + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	r.offset = abs
	return abs, nil
}

func (r *seekingReader) Close() error {
	if r.rc != nil {
		return r.rc.Close()
	}
	return nil
}
