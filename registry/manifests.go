package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/signet-oss/signet/reference"
	"github.com/signet-oss/signet/signer"

	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/verify"
)

func (s *Server) getManifest(w http.ResponseWriter, r *http.Request, repo string) {
	ref := mux.Vars(r)["reference"]
	tag := ""
	if !strings.Contains(ref, ":") {
		tag = ref
	}
	var warnings []string
	if s.gate.enforced(repo) {
		d, warns, denial, err := s.gatePull(r.Context(), repo, ref)
		if denial && s.pushToken(r, repo) {
			// Publishers read an image to attach what its policy asks for
			// (cosign sign reads the manifest before it signs): a token that
			// may push the repository is served; pulls, which ask for pull
			// alone, are held to the policy.
			s.log.InfoContext(r.Context(), "served to a caller who may push, although its pull policy is not met", "repo", repo, "tag", tag, "digest", d, "reason", err)
			err = nil
		}
		if err != nil {
			var e *Error
			if denial && r.Method != http.MethodHead && errors.As(err, &e) {
				s.emitPolicy(r, EventPolicyDenied, repo, tag, d, e.Detail)
			}
			s.writeError(w, r, err)
			return
		}
		if d != "" {
			ref, warnings = d.String(), warns
		}
	}
	m, err := s.store.GetManifest(r.Context(), repo, ref)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.gate.enforced(repo) {
		// The signed media type, whatever a PUT stored (before a digest kept
		// its first type, a later PUT could change it).
		if mt := s.gate.signedMediaType(repo, mux.Vars(r)["reference"], m.Digest); mt != "" {
			m.MediaType = mt
		}
	}
	h := w.Header()
	h.Set("Content-Type", m.MediaType)
	h.Set("Content-Length", strconv.Itoa(len(m.Content)))
	h.Set("Docker-Content-Digest", m.Digest.String())
	h.Set("Etag", `"`+m.Digest.String()+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(m.Content)
		s.emit(r, Event{Kind: EventPull, Repo: repo, Tag: tag, Digest: m.Digest, MediaType: m.MediaType, Size: int64(len(m.Content))})
		if len(warnings) > 0 {
			s.emitPolicy(r, EventPolicyWarning, repo, tag, m.Digest, policyWarning(warnings))
		}
	}
}

// gatePull decides a manifest GET or HEAD of ref in an enforced repo: tags
// resolve through the trust graph, digests are served while it covers them,
// and an image is served while its pull policy is met (policy.go). It returns
// the digest to serve and the warnings of warn mode policies; denial is set
// when err is the policy's refusal.
func (s *Server) gatePull(ctx context.Context, repo, ref string) (d digest.Digest, warnings []string, denial bool, err error) {
	name := repo + "@" + ref
	if strings.Contains(ref, ":") {
		if d, err = reference.ParseDigest(ref); err == nil {
			err = s.gate.servable(ctx, repo, d)
		}
	} else if reference.ValidTag(ref) {
		name = repo + ":" + ref
		d, err = s.gate.resolveTag(ctx, repo, ref)
	} else {
		return "", nil, false, nil // no tag: the store says so
	}
	if err != nil {
		return d, nil, false, err
	}
	warnings, err = s.gate.pullPolicy(ctx, repo, name, d)
	var e *Error
	return d, warnings, errors.As(err, &e) && e.Code.Code == CodeDenied.Code, err
}

// pushToken reports whether the request's token grants push on repo. Unlike
// mayPush, it is false without authentication: no caller is told apart, so
// none is a publisher the pull policy lets read.
func (s *Server) pushToken(r *http.Request, repo string) bool {
	c := claimsOf(r.Context())
	return c != nil && c.Allows("repository", repo, actionPush)
}

// emitPolicy reports a GET of an image whose pull policy is not met: refused
// (EventPolicyDenied) or served in warn mode (EventPolicyWarning), with what
// is missing, in the log and to the event listeners.
func (s *Server) emitPolicy(r *http.Request, kind EventKind, repo, tag string, d digest.Digest, reason string) {
	if kind == EventPolicyWarning {
		s.log.WarnContext(r.Context(), "pull policy not met, served in warn mode", "repo", repo, "tag", tag, "digest", d, "missing", reason)
	} else {
		s.log.InfoContext(r.Context(), "pull refused by the pull policy", "repo", repo, "tag", tag, "digest", d, "reason", reason)
	}
	s.emit(r, Event{Kind: kind, Repo: repo, Tag: tag, Digest: d, Reason: reason})
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
	if err := s.offerTimestamp(r, repo); err != nil {
		s.writeError(w, r, err)
		return
	}
	admission := AdmissionOpen
	var sig sigAdmission
	var info *storage.ManifestInfo
	// A signature tag moves only from the artifact the gate checked against:
	// when another PUT moved it meanwhile, the decision is made again.
	for tries := 1; ; tries++ {
		if s.gate.enforced(repo) {
			admission = AdmissionAdmitted
			if sig, err = s.admit(r, repo, ref, tags, contentType, content); err != nil {
				if _, _, rerr := s.gate.index.Status(); errors.Is(rerr, driver.ErrNoSpace) {
					// The gate decided on trust metadata it could not bring
					// up to date: the registry had no room to store what
					// trustd published since, which may be this very target.
					// That is no denial; the push is refused as any on a
					// full disk.
					err = rerr
				}
				s.emitRefusal(r, repo, ref, contentType, content, err)
				s.writeError(w, r, err)
				return
			}
		}
		putRef, putTags := ref, tags
		if sig.tag != "" {
			putRef, putTags = sig.digest.String(), nil
		}
		// A signed referrer's manifest and its admission record are written
		// side by side, then the tag moves (storage.PutAdmittedManifest says
		// why that order is crash safe).
		// (A signed referrer is pushed by digest or under its own tag only.)
		if sig.subject != "" {
			info, err = s.store.PutAdmittedManifest(r.Context(), repo, sig.digest.String(), contentType, content, sig.subject)
		} else {
			info, err = s.store.PutManifest(r.Context(), repo, putRef, contentType, content, putTags)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if sig.tag == "" {
			break
		}
		err = s.store.SetTagIf(r.Context(), repo, sig.tag, info.Digest, sig.tagVersion)
		if err == nil {
			break
		}
		if !errors.Is(err, storage.ErrTagMoved) || tries == 3 {
			if errors.Is(err, storage.ErrTagMoved) {
				err = denied("%s:%s kept moving while this artifact was checked against it: read it again and co-sign that", repo, sig.tag)
			}
			s.writeError(w, r, err)
			return
		}
	}
	signatureOf := sig.subject
	if s.gate.enforced(repo) {
		// Its blobs are now served: drop the repository's cached blob set.
		s.gate.admitted(repo)
		if sig.subject != "" {
			// New evidence for its subject's pull policy.
			s.gate.referrerChanged(repo, sig.subject)
		}
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
	s.emitPush(r, repo, ref, tags, info, int64(len(content)), admission, signatureOf)
}

// emitPush reports a stored manifest: one push event per tag it was stored
// under (one without a tag when pushed by digest alone), and a signature event
// for a signature artifact, so a listener watching any one tag hears of it.
func (s *Server) emitPush(r *http.Request, repo, ref string, tags []string, info *storage.ManifestInfo, size int64, admission string, signatureOf digest.Digest) {
	if !strings.Contains(ref, ":") {
		tags = append([]string{ref}, tags...)
	}
	if len(tags) == 0 {
		tags = []string{""}
	}
	for i, tag := range tags {
		e := Event{Kind: EventPush, Repo: repo, Tag: tag, Digest: info.Digest, MediaType: info.MediaType, Size: size}
		if i == 0 {
			e.Admission = admission // the PUT's one admission decision
		}
		if info.Subject != nil {
			e.Subject = info.Subject.Digest
		}
		s.emit(r, e)
		subject := signatureOf
		if subject == "" && admission == AdmissionOpen {
			subject, _ = signer.CosignSignatureSubject(tag)
		}
		if subject != "" {
			e.Kind, e.Subject = EventSignature, subject
			s.emit(r, e)
		}
	}
}

// emitRefusal reports a manifest PUT the gate refused: a denial, or a decision
// it could not make.
func (s *Server) emitRefusal(r *http.Request, repo, ref, contentType string, content []byte, err error) {
	var e *Error
	if !errors.As(err, &e) {
		return
	}
	ev := Event{Repo: repo, MediaType: contentType, Size: int64(len(content)), Reason: e.Detail}
	switch e.Code.Code {
	case CodeDenied.Code:
		ev.Kind = EventAdmissionDenied
	case CodeUnavailable.Code:
		ev.Kind = EventAdmissionUnavailable
	default:
		return
	}
	if strings.Contains(ref, ":") {
		ev.Digest, _ = reference.ParseDigest(ref)
	} else {
		ev.Tag = ref
		ev.Digest = digest.Canonical.FromBytes(content)
	}
	s.emit(r, ev)
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
		if s.gate.enforced(repo) {
			if rt, lerr := s.gate.index.Lookup(repo); lerr != nil || (rt != nil && rt.Covered[d]) {
				s.writeError(w, r, denied("%s@%s is signed: remove its target with trustctl before deleting it", repo, d))
				return
			}
			if subject, err := s.gate.currentSignature(r.Context(), repo, d); err != nil {
				s.writeError(w, r, err)
				return
			} else if subject != "" {
				s.writeError(w, r, denied("%s@%s is the signature artifact of %s, which is signed: deleting it would strip its signatures (remove the target with trustctl first)", repo, d, subject))
				return
			}
			// A superseded referrers index may go (its client deletes it
			// once it has pushed the next); the one under its tag stays.
			if subject, err := s.gate.currentReferrersIndex(r.Context(), repo, d); err != nil {
				s.writeError(w, r, err)
				return
			} else if subject != "" {
				s.writeError(w, r, denied("%s@%s is the referrers index under the referrers tag of %s, which is signed: push the index that replaces it first", repo, d, subject))
				return
			}
		}
		err = s.store.DeleteManifest(r.Context(), repo, d)
		if s.gate.enforced(repo) {
			// It may have been evidence for a pull policy.
			s.gate.referrerChanged(repo, "")
		}
	} else if s.gate.enforced(repo) {
		s.writeError(w, r, denied("tags of %s follow the trust graph: remove the target %s:%s with trustctl", repo, repo, ref))
		return
	} else {
		err = s.store.DeleteTag(r.Context(), repo, ref)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	e := Event{Kind: EventDelete, Repo: repo}
	if strings.Contains(ref, ":") {
		e.Digest, _ = reference.ParseDigest(ref)
	} else {
		e.Tag = ref
	}
	s.emit(r, e)
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
	var descs []ocispec.Descriptor
	if s.gate.enforced(repo) {
		// Only the referrers served by digest: signed ones that pass the
		// check now, and those with a target of their own.
		descs, err = s.gate.servableReferrers(r.Context(), repo, d, artifactType)
	} else {
		descs, err = s.store.Referrers(r.Context(), repo, d, artifactType)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	writeJSON(w, storage.MediaTypeOCIIndex, referrersIndex{SchemaVersion: 2, MediaType: storage.MediaTypeOCIIndex, Manifests: descs})
}

// admit runs the gate on a manifest PUT of an enforced repository. It returns
// what it admitted the manifest as when it is a signed referrer or a referrers
// index.
func (s *Server) admit(r *http.Request, repo, ref string, tags []string, contentType string, content []byte) (sigAdmission, error) {
	mediaType, _, err := storage.ParseManifest(contentType, content)
	if err != nil {
		return sigAdmission{}, err
	}
	alg := digest.Canonical
	if strings.Contains(ref, ":") {
		d, err := reference.ParseDigest(ref)
		if err != nil {
			return sigAdmission{}, err
		}
		alg = d.Algorithm()
	}
	d := alg.FromBytes(content)
	if strings.Contains(ref, ":") && len(tags) == 0 {
		if format, ok := verify.ReferrerFormat(mediaType, content); ok {
			// A signed referrer pushed by digest: its subject field names its
			// subject; a cosign signature's payload does (its shape has no
			// subject field, and the check says so).
			subject, named := verify.ReferrerSubject(content)
			if format == verify.FormatCosign {
				if subject, err = s.gate.signatureSubject(r.Context(), repo, mediaType, content); err != nil {
					return sigAdmission{}, denied("signature artifact %s: %v", d, err)
				}
				named = true
			}
			if rt, _ := s.gate.index.Lookup(repo); named && (rt == nil || !rt.Covered[d]) {
				_, err := s.gate.admitReferrer(r.Context(), repo, d, subject, mediaType, content, "")
				return sigAdmission{digest: d, subject: subject}, err
			}
		}
	}
	return s.gate.admitManifest(r.Context(), repo, ref, tags, d, mediaType, content)
}
