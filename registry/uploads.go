package registry

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/signet-oss/signet/reference"

	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/registry/storage"
)

func uploadURL(repo, id string) string { return "/v2/" + repo + "/blobs/uploads/" + id }

func blobURL(repo string, d digest.Digest) string { return "/v2/" + repo + "/blobs/" + d.String() }

// startUpload handles POST .../blobs/uploads/: a mount (?mount=, optional from=),
// a monolithic upload (?digest= with the content), or a new session.
func (s *Server) startUpload(w http.ResponseWriter, r *http.Request, repo string) {
	ctx := r.Context()
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		d, err := reference.ParseDigest(m)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		from := q.Get("from")
		if from != "" {
			if err := reference.ValidateName(from); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		mounted, err := s.mount(r, repo, from, d)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if mounted {
			blobCreated(w, repo, d)
			return
		}
		// Nothing to mount: fall through to a new session, as the spec says.
	}
	id, err := s.store.NewUpload(ctx, repo)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if dg := q.Get("digest"); dg != "" {
		d, err := reference.ParseDigest(dg)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		c, err := chunkOf(r, false)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if _, err := s.store.CommitUpload(ctx, repo, id, c, d); err != nil {
			s.writeError(w, r, err)
			return
		}
		blobCreated(w, repo, d)
		return
	}
	uploadAccepted(w, repo, id, 0)
}

// mount links blob d into repo from a source the caller may read, and reports
// whether it did. A mount must not tell a caller anything about a repository it
// may not read: where it cannot mount (no such blob, a source the token cannot
// pull, a blob the gate does not serve there) the request becomes a plain upload,
// the same answer whether or not the blob exists anywhere.
func (s *Server) mount(r *http.Request, repo, from string, d digest.Digest) (bool, error) {
	for _, src := range s.mountSources(r, repo, from) {
		if !s.mayMountFrom(r, src, d) {
			continue
		}
		_, err := s.store.MountBlob(r.Context(), repo, src, d)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, storage.ErrBlobUnknown) {
			return false, err
		}
	}
	return false, nil
}

// mountSources are the repositories a mount may take its blob from: from, when
// the request names it. Without from, and with auth, only the repositories the
// token in hand already grants pull on, never one found in the store (that would
// name other repositories, and which blobs they hold, to whoever asks), and no
// challenge for more. Without auth, "" (anywhere).
func (s *Server) mountSources(r *http.Request, repo, from string) []string {
	if from != "" {
		return []string{from}
	}
	if s.auth == nil {
		return []string{""}
	}
	claims := claimsOf(r.Context())
	if claims == nil {
		return nil
	}
	var out []string
	for _, a := range claims.Access {
		if a.Type == "repository" && a.Name != repo && claims.Allows("repository", a.Name, actionPull) && !slices.Contains(out, a.Name) {
			out = append(out, a.Name)
		}
	}
	return out
}

// mayMountFrom reports whether the request may mount blob d from repository
// from ("" names no repository, which only an open registry allows): the token
// may pull from, and in an enforced repository the gate serves d there (or the
// caller may push there, and so may see it by HEAD anyway).
func (s *Server) mayMountFrom(r *http.Request, from string, d digest.Digest) bool {
	if s.auth != nil && (from == "" || !s.mayPull(r, from)) {
		return false
	}
	if from == "" {
		return s.gate == nil // with a gate, only a named, visible source
	}
	if s.gate.enforced(from) {
		visible, err := s.gate.blobVisible(r.Context(), from, d)
		return err == nil && (visible || s.mayPush(r, from))
	}
	return true
}

func (s *Server) uploadStatus(w http.ResponseWriter, r *http.Request, repo string) {
	id := mux.Vars(r)["uuid"]
	off, err := s.store.UploadStatus(r.Context(), repo, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	setUploadHeaders(w, repo, id, off)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) patchUpload(w http.ResponseWriter, r *http.Request, repo string) {
	id := mux.Vars(r)["uuid"]
	c, err := chunkOf(r, true)
	if err != nil {
		s.writeUploadError(w, r, repo, id, err)
		return
	}
	off, err := s.store.AppendUpload(r.Context(), repo, id, c)
	if err != nil {
		s.writeUploadError(w, r, repo, id, err)
		return
	}
	uploadAccepted(w, repo, id, off)
}

func (s *Server) putUpload(w http.ResponseWriter, r *http.Request, repo string) {
	id := mux.Vars(r)["uuid"]
	dg := r.URL.Query().Get("digest")
	if dg == "" {
		s.writeError(w, r, &Error{Code: CodeDigestInvalid, Detail: "the digest query parameter is required to complete an upload"})
		return
	}
	d, err := reference.ParseDigest(dg)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := chunkOf(r, true)
	if err != nil {
		s.writeUploadError(w, r, repo, id, err)
		return
	}
	if _, err := s.store.CommitUpload(r.Context(), repo, id, c, d); err != nil {
		s.writeUploadError(w, r, repo, id, err)
		return
	}
	blobCreated(w, repo, d)
}

func (s *Server) cancelUpload(w http.ResponseWriter, r *http.Request, repo string) {
	if err := s.store.CancelUpload(r.Context(), repo, mux.Vars(r)["uuid"]); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
}

// writeUploadError adds the session's Location and Range to a 416, so the client
// can resume from where the upload stands.
func (s *Server) writeUploadError(w http.ResponseWriter, r *http.Request, repo, id string, err error) {
	var rangeErr *storage.RangeError
	if errors.As(err, &rangeErr) {
		setUploadHeaders(w, repo, id, rangeErr.Offset)
	}
	// A refused chunk was not read. Read it away (up to a bound) before
	// answering: a server that answers and closes with the body unread resets
	// the connection, and a client or proxy still sending sees that, not the 416.
	io.Copy(io.Discard, io.LimitReader(r.Body, maxDiscard))
	s.writeError(w, r, err)
}

// maxDiscard bounds how much of a refused request body is read away.
const maxDiscard = 64 << 20

// chunkOf reads the chunk a request carries. With ranged, a Content-Range
// ("start-end", or "bytes start-end/*") gives where it starts.
func chunkOf(r *http.Request, ranged bool) (storage.Chunk, error) {
	c := storage.Chunk{Start: -1, Length: r.ContentLength, Body: r.Body}
	if cr := r.Header.Get("Content-Range"); ranged && cr != "" {
		start, end, err := parseContentRange(cr)
		if err != nil {
			return c, &Error{Code: CodeRangeInvalid, Detail: err.Error()}
		}
		if c.Length >= 0 && c.Length != end-start+1 {
			return c, &Error{Code: CodeRangeInvalid, Detail: fmt.Sprintf("Content-Range %q covers %d bytes but Content-Length is %d", cr, end-start+1, c.Length)}
		}
		c.Start, c.Length = start, end-start+1
	}
	return c, nil
}

func parseContentRange(v string) (start, end int64, err error) {
	s := strings.TrimPrefix(strings.TrimSpace(v), "bytes ")
	s, _, _ = strings.Cut(s, "/")
	a, b, ok := strings.Cut(s, "-")
	if ok {
		start, err = strconv.ParseInt(a, 10, 64)
		if err == nil {
			end, err = strconv.ParseInt(b, 10, 64)
		}
	}
	if !ok || err != nil || start < 0 || end < start {
		return 0, 0, fmt.Errorf("malformed Content-Range %q: want start-end", v)
	}
	return start, end, nil
}

func setUploadHeaders(w http.ResponseWriter, repo, id string, offset int64) {
	h := w.Header()
	h.Set("Location", uploadURL(repo, id))
	h.Set("Docker-Upload-UUID", id)
	last := offset - 1
	if last < 0 {
		last = 0
	}
	h.Set("Range", "0-"+strconv.FormatInt(last, 10))
	h.Set("Content-Length", "0")
}

func uploadAccepted(w http.ResponseWriter, repo, id string, offset int64) {
	setUploadHeaders(w, repo, id, offset)
	w.WriteHeader(http.StatusAccepted)
}

func blobCreated(w http.ResponseWriter, repo string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", blobURL(repo, d))
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}
