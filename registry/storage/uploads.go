package storage

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/storage/driver"
)

// Upload sessions.
//
// A session ID is a random value and an HMAC binding it to its repository, so a
// new session needs no write at all (most pushes are one POST and one PUT), and an
// ID cannot be forged or used in another repository. A session's bytes go to
// uploads/<id>/data; after each chunk the data is synced and uploads/<id>/state
// records the committed offset and the sha256 state at that offset. A chunk that
// dies half-way (client gone, process killed) leaves bytes past the recorded offset;
// the next chunk truncates them. A session without state is at offset 0.

// uploadState is the JSON at uploads/<id>/state.
type uploadState struct {
	Repo      string    `json:"repo"`
	Offset    int64     `json:"offset"`
	HashState []byte    `json:"sha256State,omitempty"`
	Started   time.Time `json:"started"`
	// Ended marks a cancelled session, or a completed one that had saved state.
	Ended bool `json:"ended,omitempty"`
	// Whole says the session's bytes are in uploads/<id>.whole, where its
	// first chunk was put whole (see uploadwhole.go), not in its data file.
	Whole bool `json:"whole,omitempty"`
}

// bytesPath is where session id keeps its bytes.
func (s *Store) bytesPath(id string, st *uploadState) string {
	if st.Whole {
		return uploadWholePath(id)
	}
	return s.uploadBytesPath(id)
}

// copyBufs recycles the buffers that stream upload bodies to the driver.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// NewUpload starts an upload session in repo and returns its ID.
func (s *Store) NewUpload(ctx context.Context, repo string) (string, error) {
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	nonce := hex.EncodeToString(r[:])
	return nonce + "-" + s.uploadMAC(repo, nonce), nil
}

func (s *Store) uploadMAC(repo, nonce string) string {
	m := hmac.New(sha256.New, s.uploadKey)
	m.Write([]byte(repo))
	m.Write([]byte{0})
	m.Write([]byte(nonce))
	return hex.EncodeToString(m.Sum(nil)[:12])
}

// checkUploadID reports whether id is a session ID this registry issued for repo.
func (s *Store) checkUploadID(repo, id string) error {
	nonce, mac, ok := strings.Cut(id, "-")
	if !ok || len(nonce) != 32 || len(mac) != 24 {
		return fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	if _, err := hex.DecodeString(nonce); err != nil {
		return fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	if !hmac.Equal([]byte(mac), []byte(s.uploadMAC(repo, nonce))) {
		return fmt.Errorf("%w: %q in %s", ErrUploadUnknown, id, repo)
	}
	return nil
}

func (s *Store) lockUpload(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &s.uploadLocks[h.Sum32()%uint32(len(s.uploadLocks))]
	m.Lock()
	return m.Unlock
}

// loadUpload returns the session's state (fresh at offset 0 if none was saved).
func (s *Store) loadUpload(ctx context.Context, repo, id string) (*uploadState, error) {
	if err := s.checkUploadID(repo, id); err != nil {
		return nil, err
	}
	data, _, err := s.d.GetContent(ctx, uploadStatePath(id))
	if errors.Is(err, driver.ErrNotFound) {
		return s.loadWhole(ctx, repo, id)
	}
	if err != nil {
		return nil, err
	}
	var st uploadState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("upload %s: corrupt state: %w", id, err)
	}
	if st.Ended || st.Repo != repo {
		return nil, fmt.Errorf("%w: %q in %s", ErrUploadUnknown, id, repo)
	}
	return &st, nil
}

// UploadStatus returns the number of bytes session id holds.
func (s *Store) UploadStatus(ctx context.Context, repo, id string) (int64, error) {
	st, err := s.loadUpload(ctx, repo, id)
	if err != nil {
		return 0, err
	}
	return st.Offset, nil
}

// Chunk is a piece of an upload's body.
type Chunk struct {
	// Start is where the client says the chunk begins, or -1 (no Content-Range:
	// append at the current offset).
	Start int64
	// Length is the number of bytes the client says it sends, or -1 if unknown.
	Length int64
	Body   io.Reader
}

// AppendUpload appends a chunk to session id and returns the new offset.
// A *RangeError if the chunk does not start at the current offset.
func (s *Store) AppendUpload(ctx context.Context, repo, id string, c Chunk) (int64, error) {
	defer s.lockUpload(id)()
	st, err := s.loadUpload(ctx, repo, id)
	if err != nil {
		return 0, err
	}
	if off, done, err := s.putFirstChunk(ctx, id, st, &c); done {
		return off, err
	}
	if err := s.adoptWhole(ctx, id, st, c); err != nil {
		return 0, err
	}
	held := st.Offset
	h, w, err := s.writeChunk(ctx, id, st, c)
	if err != nil {
		return 0, err
	}
	off, err := s.saveProgress(ctx, id, st, h, w)
	if errors.Is(err, driver.ErrNoSpace) {
		s.dropUnsaved(ctx, s.bytesPath(id, st), held)
	}
	return off, err
}

// saveProgress syncs what w holds and records it, with the hash state h, as the
// session's committed offset. It ends w.
func (s *Store) saveProgress(ctx context.Context, id string, st *uploadState, h hash.Hash, w driver.FileWriter) (int64, error) {
	if err := w.Commit(ctx); err != nil {
		return 0, err
	}
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return 0, err
	}
	if st.Started.IsZero() {
		st.Started = time.Now().UTC()
	}
	st.Offset, st.HashState = w.Size(), state
	data, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	if _, err := s.d.PutContent(ctx, uploadStatePath(id), data); err != nil {
		return 0, err
	}
	return st.Offset, nil
}

// writeChunk opens the session's data at its recorded offset and streams c into it
// and into the restored sha256 state. If the body breaks off (the client went
// away), the bytes that did arrive are kept as the session's progress, so the
// client can resume from there; if the storage is full (driver.ErrNoSpace),
// nothing of the chunk is kept. On any error the writer is already ended.
func (s *Store) writeChunk(ctx context.Context, id string, st *uploadState, c Chunk) (hash.Hash, driver.FileWriter, error) {
	held := st.Offset
	if c.Start >= 0 && c.Start != st.Offset {
		return nil, nil, &RangeError{Offset: st.Offset, Start: c.Start}
	}
	h := sha256.New()
	if st.Offset > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.HashState); err != nil {
			return nil, nil, fmt.Errorf("upload %s: restoring hash state: %w", id, err)
		}
	}
	w, err := s.d.Writer(ctx, s.bytesPath(id, st), st.Offset > 0, st.Offset)
	if errors.Is(err, driver.ErrInvalidOffset) || (st.Offset > 0 && errors.Is(err, driver.ErrNotFound)) {
		return nil, nil, fmt.Errorf("%w: %s: its data is missing", ErrUploadUnknown, id)
	}
	if err != nil {
		return nil, nil, err
	}
	if c.Body == nil || c.Length == 0 {
		return h, w, nil
	}
	body := c.Body
	if c.Length > 0 {
		body = io.LimitReader(c.Body, c.Length)
	}
	bp := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(hashingWriter{w, h}, onlyReader{body}, *bp)
	copyBufs.Put(bp)
	if err == nil && c.Length > 0 && n != c.Length {
		err = fmt.Errorf("%w: got %d of %d bytes", ErrSizeInvalid, n, c.Length)
	}
	if err != nil {
		if n > 0 && !errors.Is(err, driver.ErrNoSpace) {
			// The request's context may be gone with its client; the save is not.
			if _, serr := s.saveProgress(context.WithoutCancel(ctx), id, st, h, w); serr != nil {
				err = errors.Join(err, serr)
			}
		} else {
			w.Close()
		}
		if errors.Is(err, driver.ErrNoSpace) {
			s.dropUnsaved(context.WithoutCancel(ctx), s.bytesPath(id, st), held)
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: %w", ErrUploadInterrupted, err)
	}
	return h, w, nil
}

// dropUnsaved cuts a session's data at p back to held, its recorded offset (removes
// it when that is 0), after a chunk that the storage had no room for: the bytes
// that did fit would hold space the disk needs, and the client sends the chunk
// again once there is room. The recorded state still says held, so the session
// resumes from there. Best effort: what stays is cut by the session's next chunk,
// or collected with it.
func (s *Store) dropUnsaved(ctx context.Context, p string, held int64) {
	if held == 0 {
		s.d.Delete(ctx, p)
		return
	}
	if w, err := s.d.Writer(ctx, p, true, held); err == nil {
		w.Close()
	}
}

// CommitUpload appends the final chunk c (which may be empty) to session id, checks
// that the whole content has digest want, and commits it as a blob of repo. The
// session ends either way, except on a *RangeError, an interrupted body, or a
// storage with no room (driver.ErrNoSpace: the session stays where it was, to be
// completed once space is freed). It returns the blob's size.
func (s *Store) CommitUpload(ctx context.Context, repo, id string, c Chunk, want digest.Digest) (int64, error) {
	defer s.lockUpload(id)()
	st, err := s.loadUpload(ctx, repo, id)
	if err != nil {
		return 0, err
	}
	if st.Offset == 0 && st.Started.IsZero() && c.Start <= 0 && c.Length > 0 && c.Length <= smallBlob && !s.indirect {
		return s.putSmallBlob(ctx, repo, c, want)
	}
	if st.Whole && st.Started.IsZero() && (c.Body == nil || c.Length == 0) {
		return s.commitWhole(ctx, repo, id, st, c, want)
	}
	if err := s.adoptWhole(ctx, id, st, c); err != nil {
		return 0, err
	}
	held := st.Offset
	h, w, err := s.writeChunk(ctx, id, st, c)
	var rangeErr *RangeError
	if errors.As(err, &rangeErr) || errors.Is(err, ErrUploadInterrupted) || errors.Is(err, driver.ErrNoSpace) {
		return 0, err // the session stays, to be resumed
	}
	if err != nil {
		s.endUpload(ctx, id, st, false)
		return 0, err
	}
	size := w.Size()
	got := digest.NewDigest(digest.SHA256, h)
	if want.Algorithm() != digest.SHA256 {
		// The session hashes sha256 as it streams; another algorithm is only named
		// at the end, so that digest needs one read of the bytes.
		w.Close()
		got, err = s.digestOf(ctx, s.bytesPath(id, st), want.Algorithm())
		if err != nil {
			s.endUpload(ctx, id, st, false)
			return 0, err
		}
		w, err = s.d.Writer(ctx, s.bytesPath(id, st), true, size)
		if err != nil {
			s.endUpload(ctx, id, st, false)
			return 0, err
		}
	}
	if got != want {
		w.Cancel(ctx)
		s.endUpload(ctx, id, st, false)
		return 0, &DigestMismatchError{Want: want.String(), Got: got.String()}
	}
	if err := w.Commit(ctx); err != nil {
		if errors.Is(err, driver.ErrNoSpace) {
			s.dropUnsaved(ctx, s.bytesPath(id, st), held)
		}
		return 0, err
	}
	if err := s.commitBlob(ctx, s.bytesPath(id, st), want, size); err != nil {
		if errors.Is(err, driver.ErrNoSpace) {
			s.dropUnsaved(ctx, s.bytesPath(id, st), held)
		}
		return 0, err
	}
	if err := s.linkBlob(ctx, repo, want); err != nil {
		return 0, err
	}
	if !st.Started.IsZero() {
		// The bytes are the blob's now (moved, or recorded where they are):
		// only the saved state is left to end.
		s.writeTombstone(ctx, id, st)
	}
	return size, nil
}

// smallBlob is the largest blob a one-request upload writes with one whole-object
// put instead of through the upload area: most config blobs and many layers of
// small images are this size, and a put is a single create, sync and rename.
const smallBlob = 1 << 20

// putSmallBlob commits the whole content of a one-request upload: read in
// memory, checked against want, then put at the blob's path in one atomic write.
func (s *Store) putSmallBlob(ctx context.Context, repo string, c Chunk, want digest.Digest) (int64, error) {
	data := make([]byte, c.Length)
	if n, err := io.ReadFull(c.Body, data); err != nil {
		return 0, fmt.Errorf("%w: got %d of %d bytes: %v", ErrSizeInvalid, n, c.Length, err)
	}
	if got := want.Algorithm().FromBytes(data); got != want {
		return 0, &DigestMismatchError{Want: want.String(), Got: got.String()}
	}
	// Written even when the blob exists: same bytes, and a renewed age, which
	// garbage collection needs (see CommitUpload).
	if _, err := s.d.PutContent(ctx, blobPath(want), data); err != nil {
		return 0, err
	}
	if err := s.linkBlob(ctx, repo, want); err != nil {
		return 0, err
	}
	return c.Length, nil
}

// CancelUpload ends session id; later requests on it get ErrUploadUnknown.
func (s *Store) CancelUpload(ctx context.Context, repo, id string) error {
	defer s.lockUpload(id)()
	st, err := s.loadUpload(ctx, repo, id)
	if err != nil {
		return err
	}
	return s.endUpload(ctx, id, st, true)
}

// endUpload ends a session: later requests on it get ErrUploadUnknown. A session
// with saved state (or a cancelled one) keeps a tombstone state, which garbage
// collection removes with other stale sessions; a session that never saved state
// was one request long, and leaves nothing.
func (s *Store) endUpload(ctx context.Context, id string, st *uploadState, tombstone bool) error {
	if tombstone || !st.Started.IsZero() {
		if err := s.writeTombstone(ctx, id, st); err != nil {
			return err
		}
	}
	if err := s.d.Delete(ctx, s.bytesPath(id, st)); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	return nil
}

// writeTombstone marks session id ended.
func (s *Store) writeTombstone(ctx context.Context, id string, st *uploadState) error {
	st.Ended = true
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.d.PutContent(ctx, uploadStatePath(id), data)
	return err
}

// digestOf hashes the object at p with alg.
func (s *Store) digestOf(ctx context.Context, p string, alg digest.Algorithm) (digest.Digest, error) {
	rc, err := s.d.Reader(ctx, p, 0)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	dg := alg.Digester()
	if _, err := io.Copy(dg.Hash(), rc); err != nil {
		return "", err
	}
	return dg.Digest(), nil
}

// hashingWriter writes to a driver writer and a hash.
type hashingWriter struct {
	w io.Writer
	h hash.Hash
}

func (hw hashingWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n]) // the hash covers exactly the bytes stored
	return n, err
}

// onlyReader hides a body's WriterTo so io.CopyBuffer uses the large buffer.
type onlyReader struct{ io.Reader }
