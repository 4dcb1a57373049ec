package registry

import (
	"context"
	"net/http"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/internal/requestid"
)

// EventKind names what happened to a repository's content.
type EventKind string

// The kinds of events the API reports to its listeners.
const (
	// EventPush: a manifest was stored (admitted, in an enforced repository).
	EventPush EventKind = "push"
	// EventPull: a manifest was served by GET (HEAD is not a pull).
	EventPull EventKind = "pull"
	// EventDelete: a manifest, a tag or a blob was deleted.
	EventDelete EventKind = "delete"
	// EventAdmissionDenied: the gate refused a manifest PUT with DENIED.
	EventAdmissionDenied EventKind = "admission-denied"
	// EventSignature: a signature artifact was admitted for Subject.
	EventSignature EventKind = "signature"
	// EventAdmissionUnavailable: the gate could not decide a manifest PUT
	// because the trust metadata could not be confirmed (503). It is reported
	// for metrics; it is not a denial.
	EventAdmissionUnavailable EventKind = "admission-unavailable"
	// EventPolicyDenied: a manifest GET of an image was refused (403 DENIED)
	// because its repository's pull policy is not met or cannot be read;
	// Reason says what is missing. HEAD reports none.
	EventPolicyDenied EventKind = "policy-denied"
	// EventPolicyWarning: a manifest GET served an image whose pull policy in
	// warn mode is not met; Reason says what is missing. HEAD reports none.
	EventPolicyWarning EventKind = "policy-warning"
)

// Admission outcomes of push events.
const (
	// AdmissionOpen: the repository is not enforced.
	AdmissionOpen = "open"
	// AdmissionAdmitted: the trust graph vouched for the manifest.
	AdmissionAdmitted = "admitted"
)

// Event is one thing that happened through the API.
type Event struct {
	Kind EventKind
	Time time.Time
	Repo string
	// Digest is the manifest's (or, for a blob delete, the blob's) digest.
	Digest digest.Digest
	// Tag is the tag of the request, when it named one.
	Tag       string
	MediaType string
	Size      int64
	// Subject is the manifest a signature artifact signs, or a referrer's subject.
	Subject digest.Digest
	// Actor is the token's subject, "" without authentication.
	Actor     string
	RequestID string
	// Admission is how a push was admitted (AdmissionOpen or AdmissionAdmitted),
	// on the first push event of a PUT only (a PUT with several tags reports a
	// push per tag), so that each decision is counted once.
	Admission string
	// Reason says why an admission was denied or could not be decided, or
	// what a pull policy misses.
	Reason string
}

// EventListener receives the API's events. It is called on the request's
// goroutine after the outcome is final, so it must not block for long: a
// listener that does I/O queues the event and returns.
type EventListener func(ctx context.Context, e Event)

// OnEvent adds a listener. Listeners are added before the server serves.
func (s *Server) OnEvent(l EventListener) { s.listeners = append(s.listeners, l) }

// emit completes e from the request and hands it to every listener.
func (s *Server) emit(r *http.Request, e Event) {
	if len(s.listeners) == 0 {
		return
	}
	e.Time = time.Now().UTC()
	e.RequestID = requestid.FromContext(r.Context())
	if c := claimsOf(r.Context()); c != nil {
		e.Actor = c.Subject
	}
	for _, l := range s.listeners {
		l(r.Context(), e)
	}
}
