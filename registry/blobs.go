package registry

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/signet-oss/signet/reference"

	"github.com/gorilla/mux"
)

// getBlob serves GET and HEAD of a blob, with Range support. The body is copied
// from the driver's reader with large buffers (statusRecorder.ReadFrom).
func (s *Server) getBlob(w http.ResponseWriter, r *http.Request, repo string) {
	d, err := reference.ParseDigest(mux.Vars(r)["digest"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.gate.enforced(repo) {
		// Only blobs of admitted manifests are served; a pusher may still see,
		// by HEAD, that a blob is there, to skip uploading it again.
		visible, err := s.gate.blobVisible(r.Context(), repo, d)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !visible && !(r.Method == http.MethodHead && s.mayPush(r, repo)) {
			s.writeError(w, r, &Error{Code: CodeBlobUnknown, Detail: fmt.Sprintf("blob %s is not referenced by a signed manifest of %s", d, repo)})
			return
		}
	}
	if r.Method == http.MethodHead {
		size, err := s.store.StatBlob(r.Context(), repo, d)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h := w.Header()
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Docker-Content-Digest", d.String())
		h.Set("Accept-Ranges", "bytes")
		h.Set("Etag", `"`+d.String()+`"`)
		w.WriteHeader(http.StatusOK)
		return
	}
	rc, _, err := s.store.OpenBlob(r.Context(), repo, d)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Etag", `"`+d.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")
	http.ServeContent(w, r, "", time.Time{}, rc)
}

func (s *Server) deleteBlob(w http.ResponseWriter, r *http.Request, repo string) {
	d, err := reference.ParseDigest(mux.Vars(r)["digest"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.gate.enforced(repo) {
		// A blob of a signed manifest stays while the manifest is signed, as the
		// manifest itself does.
		visible, err := s.gate.blobVisible(r.Context(), repo, d)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if visible {
			s.writeError(w, r, denied("blob %s belongs to a signed manifest of %s: remove the target with trustctl first", d, repo))
			return
		}
	}
	if err := s.store.DeleteBlob(r.Context(), repo, d); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	s.emit(r, Event{Kind: EventDelete, Repo: repo, Digest: d})
}
