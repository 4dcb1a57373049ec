package registry

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/signet-oss/signet/reference"

	"github.com/gorilla/mux"

	"github.com/signet-oss/signet/registry/storage"
)

func (s *Server) getManifest(w http.ResponseWriter, r *http.Request, repo string) {
	m, err := s.store.GetManifest(r.Context(), repo, mux.Vars(r)["reference"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", m.MediaType)
	h.Set("Content-Length", strconv.Itoa(len(m.Content)))
	h.Set("Docker-Content-Digest", m.Digest.String())
	h.Set("Etag", `"`+m.Digest.String()+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(m.Content)
	}
}

func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, repo string) {
	ref := mux.Vars(r)["reference"]
	limit := s.store.MaxManifestSize()
	if r.ContentLength > limit {
		s.writeError(w, r, fmt.Errorf("%w: %d bytes, the limit is %d", storage.ErrManifestTooLarge, r.ContentLength, limit))
		return
	}
	content, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		s.writeError(w, r, &Error{Code: CodeManifestInvalid, Detail: "reading the manifest: " + err.Error()})
		return
	}
	if int64(len(content)) > limit {
		s.writeError(w, r, fmt.Errorf("%w: over %d bytes", storage.ErrManifestTooLarge, limit))
		return
	}
	contentType := r.Header.Get("Content-Type")
	if contentType != "" {
		if mt, _, err := mime.ParseMediaType(contentType); err == nil {
			contentType = mt
		}
	}
	tags := r.URL.Query()["tag"]
	info, err := s.store.PutManifest(r.Context(), repo, ref, contentType, content, tags)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Location", "/v2/"+repo+"/manifests/"+info.Digest.String())
	h.Set("Docker-Content-Digest", info.Digest.String())
	if info.Subject != nil {
		h.Set("OCI-Subject", info.Subject.Digest.String())
	}
	if len(tags) > 0 {
		h.Set("OCI-Tag", strings.Join(tags, ","))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) deleteManifest(w http.ResponseWriter, r *http.Request, repo string) {
	ref := mux.Vars(r)["reference"]
	var err error
	if strings.Contains(ref, ":") {
		d, perr := reference.ParseDigest(ref)
		if perr != nil {
			s.writeError(w, r, perr)
			return
		}
		err = s.store.DeleteManifest(r.Context(), repo, d)
	} else {
		err = s.store.DeleteTag(r.Context(), repo, ref)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

// referrers serves the referrers API: an OCI index of the manifests whose subject
// is the given digest, filtered by ?artifactType= when given.
func (s *Server) referrers(w http.ResponseWriter, r *http.Request, repo string) {
	d, err := reference.ParseDigest(mux.Vars(r)["digest"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	artifactType := r.URL.Query().Get("artifactType")
	descs, err := s.store.Referrers(r.Context(), repo, d, artifactType)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	writeJSON(w, storage.MediaTypeOCIIndex, referrersIndex{SchemaVersion: 2, MediaType: storage.MediaTypeOCIIndex, Manifests: descs})
}
