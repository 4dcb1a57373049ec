package registry

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/signet-oss/signet/reference"
	"github.com/signet-oss/signet/tokenauth"

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
		if from == "" && s.auth != nil {
			// With auth, a mount that names no source mounts from a repository
			// of the same namespace that holds the blob and that the token may
			// pull; one the token was never asked about is challenged for.
			var challenged bool
			if from, challenged = s.anonymousMountSource(w, r, repo, d); challenged {
				return
			}
		}
		// A mount must not show a blob to a caller who may not pull it: from a
		// repository the token cannot pull, or (with auth) from anywhere unnamed,
		// the request becomes a plain upload, as if the blob were not there.
		if s.mayMountFrom(r, from, d) {
			_, err = s.store.MountBlob(ctx, repo, from, d)
			if err == nil {
				blobCreated(w, repo, d)
				return
			}
			if !errors.Is(err, storage.ErrBlobUnknown) {
				s.writeError(w, r, err)
				return
			}
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

// anonymousMountSource picks the source of a mount without from: the first
// repository of repo's namespace that holds d and that the token may pull. If
// none may be pulled but one was never asked about, it challenges for pull on it
// (and reports true). "" means a plain upload.
func (s *Server) anonymousMountSource(w http.ResponseWriter, r *http.Request, repo string, d digest.Digest) (string, bool) {
	ns, _, _ := strings.Cut(repo, "/")
	candidates, err := s.store.ReposWithBlob(r.Context(), ns, d, 32)
	if err != nil {
		return "", false
	}
	claims := claimsOf(r.Context())
	var unasked string
	for _, c := range candidates {
		if c == repo {
			continue
		}
		if claims != nil && claims.Allows("repository", c, actionPull) {
			return c, false
		}
		if unasked == "" && (claims == nil || !mentions(claims, c)) {
			unasked = c
		}
	}
	if unasked != "" {
		scope := tokenauth.Access{Type: "repository", Name: repo, Actions: []string{actionPull, actionPush}}.Scope() + " " +
			tokenauth.Access{Type: "repository", Name: unasked, Actions: []string{actionPull}}.Scope()
		s.challenge(w, r, scope, "insufficient_scope", &Error{Code: CodeUnauthorized, Detail: "mounting " + d.String() + " needs pull on " + unasked})
		return "", true
	}
	return "", false
}

// mayMountFrom reports whether the request may mount blobs from repository from
// ("" names no repository, which only an open registry allows).
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
