package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/storage/driver/inmemory"
)

const testConfig = `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}`

func TestParseManifest(t *testing.T) {
	cases := []struct {
		name        string
		contentType string
		body        string
		wantType    string
	}{
		{"an OCI image manifest with Content-Type", MediaTypeOCIManifest, `{"schemaVersion":2,"config":` + testConfig + `,"layers":[]}`, MediaTypeOCIManifest},
		{"an OCI index typed by its mediaType field", "", `{"schemaVersion":2,"mediaType":"` + MediaTypeOCIIndex + `","manifests":[]}`, MediaTypeOCIIndex},
		{"a Docker manifest list", MediaTypeDockerList, `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerList + `","manifests":[]}`, MediaTypeDockerList},
		{"a Docker schema2 manifest", MediaTypeDockerManifest, `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `","config":` + testConfig + `,"layers":[]}`, MediaTypeDockerManifest},
		{"no media type anywhere", "", `{"schemaVersion":2,"config":` + testConfig + `}`, ""},
		{"an unknown media type", "application/x-thing", `{"schemaVersion":2}`, ""},
		{"an index with layers", MediaTypeOCIIndex, `{"schemaVersion":2,"manifests":[],"layers":[]}`, ""},
		{"a subject with no digest", MediaTypeOCIManifest, `{"schemaVersion":2,"config":` + testConfig + `,"subject":{"mediaType":"a/b","size":1}}`, ""},
		{"a negative size", MediaTypeOCIManifest, `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":-1}}`, ""},
		{"schemaVersion as a string", MediaTypeOCIManifest, `{"schemaVersion":"2","config":` + testConfig + `}`, ""},
		{"a JSON array", MediaTypeOCIManifest, `[]`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mt, _, err := ParseManifest(c.contentType, []byte(c.body))
			if c.wantType == "" {
				if !errors.Is(err, ErrManifestInvalid) {
					t.Fatalf("got %q, %v; want ErrManifestInvalid", mt, err)
				}
				return
			}
			if err != nil || mt != c.wantType {
				t.Fatalf("got %q, %v; want %q", mt, err, c.wantType)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add(MediaTypeOCIManifest, []byte(`{"schemaVersion":2,"config":`+testConfig+`,"layers":[]}`))
	f.Add("", []byte(`{"schemaVersion":2,"mediaType":"`+MediaTypeOCIIndex+`","manifests":[{"mediaType":"a/b","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}`))
	f.Add(MediaTypeOCIManifest, []byte(`{"schemaVersion":2,"config":`+testConfig+`,"subject":`+testConfig+`}`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		mt, m, err := ParseManifest(contentType, body)
		if err != nil {
			if !errors.Is(err, ErrManifestInvalid) {
				t.Fatalf("error %v is not ErrManifestInvalid", err)
			}
			return
		}
		switch mt {
		case MediaTypeOCIManifest, MediaTypeDockerManifest:
			if m.Config == nil {
				t.Fatal("accepted an image manifest without config")
			}
		case MediaTypeOCIIndex, MediaTypeDockerList:
		default:
			t.Fatalf("accepted media type %q", mt)
		}
		if m.Subject != nil && m.Subject.Digest.Validate() != nil {
			t.Fatal("accepted a subject with an invalid digest")
		}
	})
}

// Concurrent pushes of different manifests to one tag leave the tag on one of
// them, whole.
func TestConcurrentPushesToOneTagLeaveItWhole(t *testing.T) {
	ctx := context.Background()
	s, err := New(ctx, inmemory.New(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	const writers = 32
	manifests := map[digest.Digest][]byte{}
	var wg sync.WaitGroup
	for i := range writers {
		body := fmt.Appendf(nil, `{"schemaVersion":2,"config":%s,"layers":[],"annotations":{"n":"%d"}}`, testConfig, i)
		manifests[digest.FromBytes(body)] = body
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.PutManifest(ctx, "acme/app", "latest", MediaTypeOCIManifest, body, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	m, err := s.GetManifest(ctx, "acme/app", "latest")
	if err != nil {
		t.Fatal(err)
	}
	want, ok := manifests[m.Digest]
	if !ok || !bytes.Equal(want, m.Content) || digest.FromBytes(m.Content) != m.Digest {
		t.Fatalf("tag resolves to %s, which is not one of the pushed manifests whole", m.Digest)
	}
}

func TestSetTagIfMovesATagOnlyFromWhereItWasRead(t *testing.T) {
	ctx := context.Background()
	s, err := New(ctx, inmemory.New(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := digest.FromString("a"), digest.FromString("b")
	if d, v, err := s.TagVersion(ctx, "acme/app", "t"); err != nil || d != "" || v != "" {
		t.Fatalf("an unset tag: %s %q %v", d, v, err)
	}
	if err := s.SetTagIf(ctx, "acme/app", "t", a, ""); err != nil {
		t.Fatalf("setting an unset tag: %v", err)
	}
	if err := s.SetTagIf(ctx, "acme/app", "t", b, ""); !errors.Is(err, ErrTagMoved) {
		t.Fatalf("setting a tag read unset after another set it: %v, want ErrTagMoved", err)
	}
	d, v, err := s.TagVersion(ctx, "acme/app", "t")
	if err != nil || d != a {
		t.Fatalf("the tag: %s %v", d, err)
	}
	if _, err := s.PutManifest(ctx, "acme/app", "t", MediaTypeOCIManifest, fmt.Appendf(nil, `{"schemaVersion":2,"config":%s,"layers":[]}`, testConfig), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTagIf(ctx, "acme/app", "t", b, v); !errors.Is(err, ErrTagMoved) {
		t.Fatalf("moving a tag another PUT moved since it was read: %v, want ErrTagMoved", err)
	}
	_, v, _ = s.TagVersion(ctx, "acme/app", "t")
	if err := s.SetTagIf(ctx, "acme/app", "t", b, v); err != nil {
		t.Fatalf("moving it from where it was read: %v", err)
	}
	if d, _ := s.ResolveTag(ctx, "acme/app", "t"); d != b {
		t.Fatalf("the tag points at %s, want %s", d, b)
	}
}
