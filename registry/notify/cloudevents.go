package notify

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// The event kinds, as endpoints name them in their events lists.
const (
	KindPush            = "push"
	KindPull            = "pull"
	KindDelete          = "delete"
	KindAdmissionDenied = "admission-denied"
	KindSignature       = "signature"
	// KindPolicyDenied and KindPolicyWarning are GETs of images whose pull
	// policy is not met: refused, or served in warn mode. They come per pull,
	// so they are batched as pulls are.
	KindPolicyDenied  = "policy-denied"
	KindPolicyWarning = "policy-warning"
)

// batched reports whether events of kind come in batches: those that come
// with each pull.
func batched(kind string) bool {
	return kind == KindPull || kind == KindPolicyDenied || kind == KindPolicyWarning
}

// TypePrefix prefixes an event's kind in its CloudEvents type
// ("dev.signet.registry.push").
const TypePrefix = "dev.signet.registry."

// Content types of the two request shapes.
const (
	// ContentTypeEvent is one event in structured mode.
	ContentTypeEvent = "application/cloudevents+json"
	// ContentTypeBatch is a JSON array of events (pulls, and the pull policy's
	// events, always come this way).
	ContentTypeBatch = "application/cloudevents-batch+json"
)

// Event is one thing the registry reports, as the registry's API emits it.
type Event struct {
	Kind      string
	Time      time.Time
	Repo      string
	Digest    string
	Tag       string
	MediaType string
	Size      int64
	// Subject is the manifest a signature signs (signature events) or a
	// referrer's subject.
	Subject   string
	Actor     string
	RequestID string
	// Reason says why an admission was denied, or what a pull policy misses.
	Reason string
}

// CloudEvent is one event in the CloudEvents 1.0 JSON format.
type CloudEvent struct {
	SpecVersion string `json:"specversion"`
	// ID is unique per event and stays the same across retries and endpoints:
	// receivers dedupe by it.
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Time            time.Time `json:"time"`
	Subject         string    `json:"subject,omitempty"`
	DataContentType string    `json:"datacontenttype"`
	Data            Data      `json:"data"`
}

// Data is an event's payload.
type Data struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest,omitempty"`
	Tag        string `json:"tag,omitempty"`
	MediaType  string `json:"mediaType,omitempty"`
	Size       int64  `json:"size,omitempty"`
	// Subject is the digest of the manifest a signature signs, or a referrer's
	// subject.
	Subject   string `json:"subject,omitempty"`
	Actor     string `json:"actor,omitempty"`
	RequestID string `json:"requestId,omitempty"`
	// Reason says why an admission was denied, or what a pull policy misses.
	Reason string `json:"reason,omitempty"`
}

// newCloudEvent turns e into a CloudEvent with a fresh id.
func newCloudEvent(source string, e Event) CloudEvent {
	return CloudEvent{
		SpecVersion:     "1.0",
		ID:              newID(),
		Source:          source,
		Type:            TypePrefix + e.Kind,
		Time:            e.Time.UTC(),
		Subject:         subject(e),
		DataContentType: "application/json",
		Data: Data{
			Repository: e.Repo, Digest: e.Digest, Tag: e.Tag, MediaType: e.MediaType, Size: e.Size,
			Subject: e.Subject, Actor: e.Actor, RequestID: e.RequestID, Reason: e.Reason,
		},
	}
}

// subject names what the event is about: repo:tag when a tag was named,
// else repo@digest, else the repository.
func subject(e Event) string {
	switch {
	case e.Tag != "":
		return e.Repo + ":" + e.Tag
	case e.Digest != "":
		return e.Repo + "@" + e.Digest
	}
	return e.Repo
}

// newID returns 128 random bits in hex.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
