package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/storage/driver"
)

// A session's first chunk, put whole.
//
// Most clients upload a small blob as POST, one PATCH with all its bytes and an
// empty PUT ?digest= (go-containerregistry, and so crane, ko and many others). A
// chunk written through the data file needs the data file and a state file
// (offset, hash state), and the session's end a tombstone: three files created
// and six syncs for a blob of a few hundred bytes. Instead, a session's first
// chunk of at most smallBlob bytes is put whole, with one atomic PutContent, at
// uploads/<id>.whole. Its existence is its acknowledgement: a put is visible
// only whole and only once durable, so the file's size is the committed offset
// and its bytes give the hash state (read again, at most smallBlob bytes, when
// the session goes on). No state file is written, and none is left to end: the
// empty PUT moves the file to the blob's path, as it would the data file.
//
// A session that goes on past its whole first chunk first saves its state
// (offset, hash, Whole) as every chunked session does; its later chunks append
// to the .whole file in place, exactly as to a data file, so a chunk that dies
// half-way is cut back to the saved offset. On drivers whose Move copies (S3)
// the bytes stay where they are written, so there a first chunk goes through
// the data object as before.

// putFirstChunk puts c whole at uploads/<id>.whole when it is the first chunk of
// a session with no saved state and holds 1 to smallBlob bytes, and reports
// whether it did (done), with the new offset. Otherwise it leaves the session
// untouched and, having read part of c's body, sets c.Body to yield what it read
// and then the rest, so the caller writes c as before. A body that breaks off or
// holds fewer bytes than it announced is left to the caller too, which keeps
// what arrived as the session's progress.
func (s *Store) putFirstChunk(ctx context.Context, id string, st *uploadState, c *Chunk) (int64, bool, error) {
	if s.indirect || st.Offset != 0 || !st.Started.IsZero() || c.Start > 0 || c.Body == nil || c.Length == 0 || c.Length > smallBlob {
		return 0, false, nil
	}
	limit := int64(smallBlob)
	if c.Length > 0 {
		limit = c.Length
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(c.Body, limit+1))
	if err != nil || n == 0 || n > smallBlob || (c.Length > 0 && n != c.Length) {
		rest := c.Body
		if err != nil {
			rest = errReader{err}
		}
		c.Body = io.MultiReader(bytes.NewReader(buf.Bytes()), rest)
		return 0, false, nil
	}
	if _, err := s.d.PutContent(ctx, uploadWholePath(id), buf.Bytes()); err != nil {
		return 0, true, err
	}
	return n, true, nil
}

// loadWhole returns the state of session id of repo, which has no saved state:
// at the end of its whole first chunk if it has one, else fresh at offset 0.
func (s *Store) loadWhole(ctx context.Context, repo, id string) (*uploadState, error) {
	if s.indirect {
		return &uploadState{Repo: repo}, nil
	}
	data, _, err := s.d.GetContent(ctx, uploadWholePath(id))
	if errors.Is(err, driver.ErrNotFound) {
		return &uploadState{Repo: repo}, nil
	}
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(data)
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &uploadState{Repo: repo, Offset: int64(len(data)), HashState: state, Whole: true}, nil
}

// adoptWhole saves the state of a session whose whole first chunk is all it
// has, before chunk c appends to that file in place: from then on the state,
// not the file's size, says where the acknowledged bytes end. A chunk with no
// bytes changes nothing and saves nothing.
func (s *Store) adoptWhole(ctx context.Context, id string, st *uploadState, c Chunk) error {
	if !st.Whole || !st.Started.IsZero() || c.Body == nil || c.Length == 0 {
		return nil
	}
	st.Started = time.Now().UTC()
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.d.PutContent(ctx, uploadStatePath(id), data)
	return err
}

// commitWhole completes a session whose whole first chunk is all it has (the
// final chunk c is empty): it checks the digest and moves the file to the
// blob's path. No state was saved, so none is left to end.
func (s *Store) commitWhole(ctx context.Context, repo, id string, st *uploadState, c Chunk, want digest.Digest) (int64, error) {
	if c.Start >= 0 && c.Start != st.Offset {
		return 0, &RangeError{Offset: st.Offset, Start: c.Start}
	}
	p := uploadWholePath(id)
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.HashState); err != nil {
		return 0, err
	}
	got := digest.NewDigest(digest.SHA256, h)
	if want.Algorithm() != digest.SHA256 {
		var err error
		if got, err = s.digestOf(ctx, p, want.Algorithm()); err != nil {
			return 0, err
		}
	}
	if got != want {
		s.endUpload(ctx, id, st, false)
		return 0, &DigestMismatchError{Want: want.String(), Got: got.String()}
	}
	if err := s.commitBlob(ctx, p, want, st.Offset); err != nil {
		return 0, err
	}
	if err := s.linkBlob(ctx, repo, want); err != nil {
		return 0, err
	}
	return st.Offset, nil
}

// errReader yields err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
