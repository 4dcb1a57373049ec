package registry

import (
	"context"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/internal/requestid"
)

type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) listen(_ context.Context, e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// take returns the events since the last take.
func (l *eventLog) take() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	return e
}

func TestEventsReportWhatHappened(t *testing.T) {
	var log eventLog
	g := newGated(t, log.listen)
	signed, unsigned := g.image(t, "acme/app", "signed"), g.image(t, "acme/app", "unsigned")
	g.sign("acme/app:v1", signed)
	sd, ud := digest.FromBytes(signed), digest.FromBytes(unsigned)
	open := g.image(t, "open/scratch", "x")
	od := digest.FromBytes(open)
	sig := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
		digest.FromBytes([]byte("{}")).String() + `","size":2},"layers":[]}`)
	sigTag := "sha256-" + od.Encoded() + ".sig"

	tests := []struct {
		name string
		do   func() response
		want []Event
	}{
		{
			name: "an unsigned push to an enforced repository is a denial",
			do:   func() response { return putManifest(t, g.srv, "acme/app", "v2", unsigned) },
			want: []Event{{Kind: EventAdmissionDenied, Repo: "acme/app", Tag: "v2", Digest: ud}},
		},
		{
			name: "a signed push is an admitted push",
			do:   func() response { return putManifest(t, g.srv, "acme/app", "v1", signed) },
			want: []Event{{Kind: EventPush, Repo: "acme/app", Tag: "v1", Digest: sd, Admission: AdmissionAdmitted}},
		},
		{
			name: "a GET of a manifest is a pull",
			do:   func() response { return do(t, g.srv, "GET", "/v2/acme/app/manifests/v1", nil, nil) },
			want: []Event{{Kind: EventPull, Repo: "acme/app", Tag: "v1", Digest: sd}},
		},
		{
			name: "a HEAD is not a pull",
			do:   func() response { return do(t, g.srv, "HEAD", "/v2/acme/app/manifests/v1", nil, nil) },
		},
		{
			name: "a push to an open repository is an open push",
			do:   func() response { return putManifest(t, g.srv, "open/scratch", "v1", open) },
			want: []Event{{Kind: EventPush, Repo: "open/scratch", Tag: "v1", Digest: od, Admission: AdmissionOpen}},
		},
		{
			name: "a signature tag is a push and a signature",
			do: func() response {
				pushBlob(t, g.srv, "open/scratch", []byte("{}"))
				return putManifest(t, g.srv, "open/scratch", sigTag, sig)
			},
			want: []Event{
				{Kind: EventPush, Repo: "open/scratch", Tag: sigTag, Digest: digest.FromBytes(sig), Admission: AdmissionOpen},
				{Kind: EventSignature, Repo: "open/scratch", Tag: sigTag, Digest: digest.FromBytes(sig), Subject: od, Admission: AdmissionOpen},
			},
		},
		{
			name: "a push by digest with two tags is a push for each",
			do: func() response {
				return putManifest(t, g.srv, "open/scratch", od.String()+"?tag=a&tag=b", open)
			},
			want: []Event{
				{Kind: EventPush, Repo: "open/scratch", Tag: "a", Digest: od, Admission: AdmissionOpen},
				{Kind: EventPush, Repo: "open/scratch", Tag: "b", Digest: od},
			},
		},
		{
			name: "a tag delete is a delete",
			do:   func() response { return do(t, g.srv, "DELETE", "/v2/open/scratch/manifests/v1", nil, nil) },
			want: []Event{{Kind: EventDelete, Repo: "open/scratch", Tag: "v1"}},
		},
		{
			name: "a refused delete is nothing",
			do:   func() response { return do(t, g.srv, "DELETE", "/v2/acme/app/manifests/v1", nil, nil) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.do()
			got := log.take()
			if len(got) != len(tt.want) {
				t.Fatalf("status %d: got %d events %+v, want %d", r.status, len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				e := got[i]
				if e.Kind != w.Kind || e.Repo != w.Repo || e.Tag != w.Tag || e.Digest != w.Digest || e.Subject != w.Subject || e.Admission != w.Admission {
					t.Errorf("event %d = %+v, want %+v", i, e, w)
				}
				if e.RequestID == "" || e.RequestID != r.header.Get(requestid.Header) {
					t.Errorf("event %d has request ID %q, the response says %q", i, e.RequestID, r.header.Get(requestid.Header))
				}
				if e.Time.IsZero() {
					t.Errorf("event %d has no time", i)
				}
			}
		})
	}
}
