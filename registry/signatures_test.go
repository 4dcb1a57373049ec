package registry

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/signet-oss/signet/internal/tuftest"
	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

// signing is a gated registry whose acme/app is delegated to alice and bob,
// with a signed image at acme/app:v1 (subject) and cosign signatures checked.
type signing struct {
	*gated
	alice, bob *signer.Key
	subject    digest.Digest
}

func newSigning(t *testing.T) *signing {
	t.Helper()
	s := &signing{alice: newSignerKey(t, "alice"), bob: newSignerKey(t, "bob")}
	s.gated = newGatedWith(t, map[string]*tuftest.Key{"alice": tufKey(t, s.alice), "bob": tufKey(t, s.bob)}, verify.CheckReferrer)
	m := s.image(t, "acme/app", "signed")
	s.sign("acme/app:v1", m)
	if err := s.index.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := putManifest(t, s.srv, "acme/app", "v1", m); r.status != 201 {
		t.Fatalf("the signed push: %d %s", r.status, r.body)
	}
	s.subject = digest.FromBytes(m)
	return s
}

func newSignerKey(t *testing.T, name string) *signer.Key {
	t.Helper()
	k, err := signer.NewKey(name, signer.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tufKey is a publisher's key as the test TUF repository signs with it.
func tufKey(t *testing.T, k *signer.Key) *tuftest.Key {
	t.Helper()
	s, err := signature.LoadECDSASignerVerifier(k.Signer.(*ecdsa.PrivateKey), crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &tuftest.Key{TUF: k.TUF, Signer: s}
}

// cosign signs the subject with key, co-signing prev, as trustctl and cosign do.
func (s *signing) cosign(t *testing.T, key *signer.Key, prev []byte) *signer.CosignArtifact {
	t.Helper()
	a, err := signer.SignCosign(strings.TrimPrefix(s.srv.URL, "http://")+"/acme/app", s.subject, key, prev)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range a.Blobs {
		pushBlob(t, s.srv, "acme/app", b)
	}
	return a
}

func (s *signing) put(t *testing.T, ref string, manifest []byte) response {
	t.Helper()
	return putManifest(t, s.srv, "acme/app", ref, manifest)
}

func (s *signing) sigTag() string { return signer.CosignSignatureTag(s.subject) }

// edit decodes a manifest, changes it and encodes it again.
func edit(t *testing.T, manifest []byte, change func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// forge is issue 12's attack: a signed artifact's config pointed at any blob,
// with manifest annotations and a subject added. The signature layers are
// untouched, so they still verify.
func forge(t *testing.T, artifact []byte, blob []byte, fakeSubject digest.Digest) []byte {
	return edit(t, artifact, func(m map[string]any) {
		m["config"] = map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest.FromBytes(blob), "size": len(blob)}
		m["annotations"] = map[string]any{"org.example.note": "not signed"}
		m["subject"] = map[string]any{"mediaType": storage.MediaTypeOCIManifest, "digest": fakeSubject, "size": 2}
	})
}

func TestAForgedSignatureArtifactIsRefusedAndItsBlobIsNeverServed(t *testing.T) {
	t.Parallel()
	s := newSigning(t)
	signed := s.cosign(t, s.alice, nil)
	if r := s.put(t, s.sigTag(), signed.Manifest); r.status != 201 {
		t.Fatalf("alice's signature artifact: %d %s", r.status, r.body)
	}
	// A pusher without a key.
	payload := []byte("any bytes at all, served as if signed")
	evil := pushBlob(t, s.srv, "acme/app", payload)
	fakeSubject := digest.FromString("a manifest nobody signed")
	forged := forge(t, signed.Manifest, payload, fakeSubject)
	fd := digest.FromBytes(forged)

	for _, ref := range []string{s.sigTag(), fd.String()} {
		r := s.put(t, ref, forged)
		if r.status != 403 || errorCode(t, r) != "DENIED" || !strings.Contains(string(r.body), "shape a signer writes") {
			t.Errorf("PUT of the forged artifact at %s: %d %s, want 403 DENIED naming the shape", ref, r.status, r.body)
		}
	}
	if r := do(t, s.srv, "GET", "/v2/acme/app/blobs/"+evil.String(), nil, nil); r.status != 404 {
		t.Errorf("GET of the forged artifact's config blob: %d, want 404", r.status)
	}
	if r := do(t, s.srv, "GET", "/v2/acme/app/manifests/"+s.sigTag(), nil, nil); r.status != 200 || digest.FromBytes(r.body) != signed.Digest {
		t.Errorf("the signature tag serves %d %s, want alice's artifact", r.status, digest.FromBytes(r.body))
	}
	if r := do(t, s.srv, "GET", "/v2/acme/app/referrers/"+fakeSubject.String(), nil, nil); r.status != 200 || strings.Contains(string(r.body), fd.String()) {
		t.Errorf("referrers of the fake subject: %d %s", r.status, r.body)
	}
	if _, err := s.store.GetManifest(context.Background(), "acme/app", fd.String()); err == nil {
		t.Error("the forged artifact was stored")
	}
	// The signature's own blobs are served.
	for d := range signed.Blobs {
		if r := do(t, s.srv, "GET", "/v2/acme/app/blobs/"+d.String(), nil, nil); r.status != 200 {
			t.Errorf("GET of blob %s of alice's artifact: %d", d, r.status)
		}
	}
}

// restart starts another registry on the same storage and trust metadata, as
// a restarted process or another replica would be.
func (s *signing) restart(t *testing.T) {
	t.Helper()
	api, err := NewServer(s.store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	api.EnableGate(s.index, []string{"open/**"}, verify.CheckReferrer)
	s.srv = httptest.NewServer(api)
	t.Cleanup(s.srv.Close)
}

// TestASignatureArtifactStoredBeforeTheCheckIsNotServed seeds the storage as
// the gate before the shape check admitted a forged artifact (PutManifest and
// MarkAdmitted, under the signature tag and by digest), then starts a registry
// on it: it serves neither the artifact nor its blob, by tag, by digest, in
// the tag list or in referrers.
func TestASignatureArtifactStoredBeforeTheCheckIsNotServed(t *testing.T) {
	t.Parallel()
	s := newSigning(t)
	ctx := context.Background()
	signed := s.cosign(t, s.alice, nil)
	payload := []byte("stored by the old gate")
	evil := pushBlob(t, s.srv, "acme/app", payload)
	fakeSubject := digest.FromString("a manifest nobody signed")
	byTag := forge(t, signed.Manifest, payload, fakeSubject)
	byDigest := edit(t, byTag, func(m map[string]any) { m["annotations"] = map[string]any{"another": "one"} })
	for ref, m := range map[string][]byte{s.sigTag(): byTag, digest.FromBytes(byDigest).String(): byDigest} {
		info, err := s.store.PutManifest(ctx, "acme/app", ref, storage.MediaTypeOCIManifest, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.store.MarkAdmitted(ctx, "acme/app", info.Digest, s.subject); err != nil {
			t.Fatal(err)
		}
	}
	s.restart(t)

	if r := do(t, s.srv, "GET", "/v2/acme/app/manifests/"+s.sigTag(), nil, nil); r.status != 404 {
		t.Errorf("GET of the signature tag: %d, want 404", r.status)
	}
	for _, m := range [][]byte{byTag, byDigest} {
		if r := do(t, s.srv, "GET", "/v2/acme/app/manifests/"+digest.FromBytes(m).String(), nil, nil); r.status != 404 {
			t.Errorf("GET of a forged artifact by digest: %d, want 404", r.status)
		}
	}
	if r := do(t, s.srv, "GET", "/v2/acme/app/tags/list", nil, nil); r.status != 200 || strings.Contains(string(r.body), ".sig") {
		t.Errorf("tags: %d %s, want no signature tag", r.status, r.body)
	}
	if r := do(t, s.srv, "GET", "/v2/acme/app/referrers/"+fakeSubject.String(), nil, nil); r.status != 200 || strings.Contains(string(r.body), "sha256:") {
		t.Errorf("referrers of the fake subject: %d %s, want none", r.status, r.body)
	}
	if r := do(t, s.srv, "GET", "/v2/acme/app/blobs/"+evil.String(), nil, nil); r.status != 404 {
		t.Errorf("GET of the forged config blob: %d, want 404", r.status)
	}
	// The signer's real artifact replaces the forged one under the tag.
	if r := s.put(t, s.sigTag(), signed.Manifest); r.status != 201 {
		t.Fatalf("alice's artifact over the forged one: %d %s", r.status, r.body)
	}
	if r := do(t, s.srv, "GET", "/v2/acme/app/manifests/"+s.sigTag(), nil, nil); r.status != 200 || digest.FromBytes(r.body) != signed.Digest {
		t.Errorf("the signature tag now: %d, want alice's artifact", r.status)
	}
}

func TestACoSignatureThatStillVerifiesCannotBeStripped(t *testing.T) {
	t.Parallel()
	s := newSigning(t)
	first := s.cosign(t, s.alice, nil)
	if r := s.put(t, s.sigTag(), first.Manifest); r.status != 201 {
		t.Fatalf("alice signs: %d %s", r.status, r.body)
	}
	both := s.cosign(t, s.bob, first.Manifest)
	if r := s.put(t, s.sigTag(), both.Manifest); r.status != 201 {
		t.Fatalf("bob co-signs: %d %s", r.status, r.body)
	}

	bobAlone := s.cosign(t, s.bob, nil)
	if r := s.put(t, s.sigTag(), bobAlone.Manifest); r.status != 403 || !strings.Contains(string(r.body), "a replacement must keep it") {
		t.Errorf("bob's signature alone over both: %d %s, want 403 saying alice's signature must be kept", r.status, r.body)
	}
	// Alice's layer kept, dressed in an annotation of the pusher's own (one
	// that cosign may write, so the shape allows it).
	dressed := edit(t, both.Manifest, func(m map[string]any) {
		l := m["layers"].([]any)[0].(map[string]any)
		l["annotations"].(map[string]any)[verify.CosignBundleAnnotation] = rekorBundle
	})
	dressed = withDerivedConfig(t, dressed)
	for _, ref := range []string{s.sigTag(), digest.FromBytes(dressed).String()} {
		if r := s.put(t, ref, dressed); r.status != 403 || !strings.Contains(string(r.body), "with its layer changed") {
			t.Errorf("alice's layer with an annotation added, at %s: %d %s, want 403", ref, r.status, r.body)
		}
	}
	// Two signatures by one key are one signer.
	twice := edit(t, first.Manifest, func(m map[string]any) {
		m["layers"] = append(m["layers"].([]any), m["layers"].([]any)[0])
	})
	if r := s.put(t, s.sigTag(), twice); r.status != 403 {
		t.Errorf("alice's signature twice: %d %s, want 403", r.status, r.body)
	}
	if r := do(t, s.srv, "GET", "/v2/acme/app/manifests/"+s.sigTag(), nil, nil); r.status != 200 || digest.FromBytes(r.body) != both.Digest {
		t.Fatalf("the signature tag: %d, want the co-signed artifact", r.status)
	}
	// Nor stripped whole: the artifact under the tag is not deleted while
	// its subject is signed; an earlier one may be.
	if r := do(t, s.srv, "DELETE", "/v2/acme/app/manifests/"+both.Digest.String(), nil, nil); r.status != 403 || !strings.Contains(string(r.body), "would strip its signatures") {
		t.Errorf("DELETE of the co-signed artifact: %d %s, want 403", r.status, r.body)
	}
	if r := do(t, s.srv, "DELETE", "/v2/acme/app/manifests/"+first.Digest.String(), nil, nil); r.status != 202 {
		t.Errorf("DELETE of alice's earlier artifact: %d %s, want 202", r.status, r.body)
	}

	// Alice's key revoked: the co-signed artifact is not served (one of its
	// signatures no longer verifies), and bob's alone may replace it.
	s.tuf.Delegate("org-acme", trustnames.RoleForRepo("acme/app"), trustnames.RepoPaths("acme/app"), "bob")
	s.tuf.Publish("org-acme")
	s.clock.Advance(1100 * time.Millisecond)
	if err := s.index.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := do(t, s.srv, "GET", "/v2/acme/app/manifests/"+s.sigTag(), nil, nil); r.status != 404 {
		t.Errorf("the co-signed artifact after alice's key was revoked: %d, want 404", r.status)
	}
	if r := s.put(t, s.sigTag(), bobAlone.Manifest); r.status != 201 {
		t.Fatalf("bob's signature alone after alice's revocation: %d %s", r.status, r.body)
	}
	if r := do(t, s.srv, "GET", "/v2/acme/app/manifests/"+s.sigTag(), nil, nil); r.status != 200 || digest.FromBytes(r.body) != bobAlone.Digest {
		t.Errorf("the signature tag: %d, want bob's artifact", r.status)
	}
}

func TestTheMediaTypeOfAManifestCannotBeChanged(t *testing.T) {
	t.Parallel()
	g := newGated(t)
	// OCI manifests may leave out their mediaType field: then only the PUT's
	// Content-Type says what they are.
	untyped := edit(t, g.image(t, "acme/app", "untyped"), func(m map[string]any) { delete(m, "mediaType") })
	g.sign("acme/app:v1", untyped)
	if r := putManifest(t, g.srv, "acme/app", "v1", untyped); r.status != 201 {
		t.Fatalf("the signed push: %d %s", r.status, r.body)
	}
	d := digest.FromBytes(untyped).String()
	docker := map[string]string{"Content-Type": storage.MediaTypeDockerManifest}
	if r := do(t, g.srv, "PUT", "/v2/acme/app/manifests/"+d, docker, untyped); r.status != 403 || !strings.Contains(string(r.body), "is signed as "+storage.MediaTypeOCIManifest) {
		t.Errorf("a re-PUT by digest as a Docker manifest: %d %s, want 403 naming the signed type", r.status, r.body)
	}
	for _, ref := range []string{"v1", d} {
		if r := do(t, g.srv, "GET", "/v2/acme/app/manifests/"+ref, nil, nil); r.status != 200 || r.header.Get("Content-Type") != storage.MediaTypeOCIManifest {
			t.Errorf("GET %s: %d as %q, want the signed OCI type", ref, r.status, r.header.Get("Content-Type"))
		}
	}

	// A closure member no target or stored index names the type of.
	child := edit(t, g.image(t, "acme/app", "child"), func(m map[string]any) { delete(m, "mediaType") })
	cd := digest.FromBytes(child)
	index := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + cd.String() + `","size":` + itoa(len(child)) + `}]}`)
	g.tuf.AddTarget(trustnames.RoleForRepo("acme/app"), "acme/app:multi", index, storage.MediaTypeOCIIndex, cd.String())
	g.tuf.Publish(trustnames.RoleForRepo("acme/app"))
	g.clock.Advance(1100 * time.Millisecond)
	if err := g.index.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := do(t, g.srv, "PUT", "/v2/acme/app/manifests/"+cd.String(), docker, child); r.status != 403 || !strings.Contains(string(r.body), "no mediaType field") {
		t.Errorf("a closure member without a mediaType field PUT as Docker: %d %s, want 403", r.status, r.body)
	}
	if r := putManifest(t, g.srv, "acme/app", cd.String(), child); r.status != 201 {
		t.Errorf("the closure member as OCI: %d %s", r.status, r.body)
	}

	// Open repositories: the first type stays, a different one is invalid.
	open := edit(t, g.image(t, "open/scratch", "x"), func(m map[string]any) { delete(m, "mediaType") })
	od := digest.FromBytes(open).String()
	if r := putManifest(t, g.srv, "open/scratch", "v1", open); r.status != 201 {
		t.Fatalf("open push: %d %s", r.status, r.body)
	}
	if r := putManifest(t, g.srv, "open/scratch", od, open); r.status != 201 {
		t.Errorf("the same PUT again: %d %s", r.status, r.body)
	}
	if r := do(t, g.srv, "PUT", "/v2/open/scratch/manifests/"+od, docker, open); r.status != 400 || errorCode(t, r) != "MANIFEST_INVALID" || !strings.Contains(string(r.body), "cannot change its media type") {
		t.Errorf("a re-PUT under another type in an open repository: %d %s, want 400 MANIFEST_INVALID", r.status, r.body)
	}
	if r := do(t, g.srv, "GET", "/v2/open/scratch/manifests/v1", nil, nil); r.header.Get("Content-Type") != storage.MediaTypeOCIManifest {
		t.Errorf("open/scratch:v1 is served as %q", r.header.Get("Content-Type"))
	}
}

// rekorBundle is a bundle annotation in the form cosign writes (its
// bundle.RekorBundle): anyone can make one.
const rekorBundle = `{"SignedEntryTimestamp":"MEUCIQDx5Y7ShsOBcdbMsrPDGW2ZGb0PgJrYFSn6Z5Pu5bWHWwIgBjgeGa9mL+0zlN+gPmSXfuThpP9Xbwhr5kPaLHjNTyg=","Payload":{"body":"eyJhcGlWZXJzaW9uIjoiMC4wLjEifQ==","integratedTime":1733212800,"logIndex":1,"logID":"c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"}}`

// withDerivedConfig points a signature manifest's config at the one cosign
// derives from its layers (go-containerregistry's, in its field order), as a
// careful forger would.
func withDerivedConfig(t *testing.T, manifest []byte) []byte {
	t.Helper()
	var m struct {
		Layers []struct {
			Digest digest.Digest `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	type history struct {
		Created string `json:"created"`
	}
	var c struct {
		Architecture string    `json:"architecture"`
		Created      string    `json:"created"`
		History      []history `json:"history"`
		OS           string    `json:"os"`
		RootFS       struct {
			Type    string          `json:"type"`
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
		Config struct{} `json:"config"`
	}
	c.Created, c.RootFS.Type = "0001-01-01T00:00:00Z", "layers"
	for _, l := range m.Layers {
		c.History = append(c.History, history{Created: c.Created})
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, l.Digest)
	}
	config, _ := json.Marshal(c)
	return edit(t, manifest, func(m map[string]any) {
		cd := m["config"].(map[string]any)
		cd["digest"], cd["size"] = digest.FromBytes(config), len(config)
	})
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestConcurrentCoSignersDropNoSignature: co-signers who read the same
// artifact and PUT at once cannot all be told 201 while the last one's
// artifact, lacking the others' signatures, replaces theirs: every signer told
// 201 is in the artifact served at the end.
func TestConcurrentCoSignersDropNoSignature(t *testing.T) {
	t.Parallel()
	names := []string{"alice", "bob", "carol", "dave", "erin", "frank"}
	keys, tufKeys := map[string]*signer.Key{}, map[string]*tuftest.Key{}
	for _, n := range names {
		keys[n] = newSignerKey(t, n)
		tufKeys[n] = tufKey(t, keys[n])
	}
	s := &signing{alice: keys["alice"], bob: keys["bob"]}
	// Reads of a signature tag take a while, so every PUT reads the tag
	// before any writes it: the race is the rule, not luck.
	s.gated = newGatedOn(t, slowSignatureTags{inmemory.New()}, tufKeys, verify.CheckReferrer)
	m := s.image(t, "acme/app", "signed")
	s.sign("acme/app:v1", m)
	if r := putManifest(t, s.srv, "acme/app", "v1", m); r.status != 201 {
		t.Fatalf("the signed push: %d %s", r.status, r.body)
	}
	s.subject = digest.FromBytes(m)
	first := s.cosign(t, keys["alice"], nil)
	if r := s.put(t, s.sigTag(), first.Manifest); r.status != 201 {
		t.Fatalf("alice signs: %d %s", r.status, r.body)
	}
	arts := map[string]*signer.CosignArtifact{}
	for _, n := range names[1:] {
		arts[n] = s.cosign(t, keys[n], first.Manifest)
	}
	statuses := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for n, a := range arts {
		wg.Go(func() {
			r := s.put(t, s.sigTag(), a.Manifest)
			mu.Lock()
			statuses[n] = r.status
			mu.Unlock()
		})
	}
	wg.Wait()
	r := do(t, s.srv, "GET", "/v2/acme/app/manifests/"+s.sigTag(), nil, nil)
	if r.status != 200 {
		t.Fatalf("the signature tag: %d", r.status)
	}
	var served struct {
		Layers []struct{ Annotations map[string]string }
	}
	json.Unmarshal(r.body, &served)
	in := map[string]bool{}
	for _, l := range served.Layers {
		for n, a := range arts {
			var am struct {
				Layers []struct{ Annotations map[string]string }
			}
			json.Unmarshal(a.Manifest, &am)
			if am.Layers[1].Annotations[signer.CosignSignatureAnnotation] == l.Annotations[signer.CosignSignatureAnnotation] {
				in[n] = true
			}
		}
	}
	for n, status := range statuses {
		if status == 201 && !in[n] {
			t.Errorf("%s was told 201, but the served artifact lacks %s's signature (statuses %v)", n, n, statuses)
		}
		if status != 201 && status != 403 {
			t.Errorf("%s got %d", n, status)
		}
	}
}

// slowSignatureTags is a driver whose reads of signature tags are slow.
type slowSignatureTags struct{ driver.Driver }

func (d slowSignatureTags) GetContent(ctx context.Context, path string) ([]byte, string, error) {
	if strings.Contains(path, "/_tags/") && strings.HasSuffix(path, ".sig") {
		time.Sleep(200 * time.Millisecond)
	}
	return d.Driver.GetContent(ctx, path)
}

// sickReads is a driver whose reads of paths containing at fail, while armed,
// as a sick object store's do after the driver's retries.
type sickReads struct {
	driver.Driver
	at    string
	armed atomic.Bool
}

func (d *sickReads) fails(path string) error {
	if d.armed.Load() && strings.Contains(path, d.at) {
		return fmt.Errorf("GetObject %s: SlowDown: %w", path, driver.ErrUnavailable)
	}
	return nil
}

func (d *sickReads) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if err := d.fails(path); err != nil {
		return nil, err
	}
	return d.Driver.Reader(ctx, path, offset)
}

func (d *sickReads) GetContent(ctx context.Context, path string) ([]byte, string, error) {
	if err := d.fails(path); err != nil {
		return nil, "", err
	}
	return d.Driver.GetContent(ctx, path)
}

// newSigningOn is newSigning on the storage driver d.
func newSigningOn(t *testing.T, d driver.Driver) *signing {
	t.Helper()
	s := &signing{alice: newSignerKey(t, "alice"), bob: newSignerKey(t, "bob")}
	s.gated = newGatedOn(t, d, map[string]*tuftest.Key{"alice": tufKey(t, s.alice), "bob": tufKey(t, s.bob)}, verify.CheckReferrer)
	m := s.image(t, "acme/app", "signed")
	s.sign("acme/app:v1", m)
	if err := s.index.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := putManifest(t, s.srv, "acme/app", "v1", m); r.status != 201 {
		t.Fatalf("the signed push: %d %s", r.status, r.body)
	}
	s.subject = digest.FromBytes(m)
	return s
}

// want503 checks a retryable answer for a sick store.
func want503(t *testing.T, what string, r response) {
	t.Helper()
	if r.status != 503 || !strings.Contains(string(r.body), "UNAVAILABLE") || r.header.Get("Retry-After") == "" {
		t.Fatalf("%s: %d %v %s; want 503 UNAVAILABLE with a Retry-After", what, r.status, r.header, r.body)
	}
}

// TestASignatureWhosePayloadCannotBeReadIsRetryableNotDenied: when the store
// fails to read a signature artifact's payload, the gate has no verdict on the
// artifact: the push gets the storage's 503 with a Retry-After, not a 403 that
// tells the signer the signature is bad; once the store reads again, the same
// push is admitted.
func TestASignatureWhosePayloadCannotBeReadIsRetryableNotDenied(t *testing.T) {
	t.Parallel()
	d := &sickReads{Driver: inmemory.New(), at: "/v1/blobs/"}
	s := newSigningOn(t, d)
	signed := s.cosign(t, s.alice, nil)

	d.armed.Store(true)
	r := s.put(t, s.sigTag(), signed.Manifest)
	d.armed.Store(false)
	want503(t, "a signature artifact whose payload the store could not read", r)
	if r := s.put(t, s.sigTag(), signed.Manifest); r.status != 201 {
		t.Fatalf("the same push once the store reads again: %d %s", r.status, r.body)
	}
}

// TestATagListTheStoreCannotReadIsRetryableNotShort: a tag list of an enforced
// repository whose tag records the store fails to read is a 503, never a 200
// that leaves those tags out.
func TestATagListTheStoreCannotReadIsRetryableNotShort(t *testing.T) {
	t.Parallel()
	d := &sickReads{Driver: inmemory.New(), at: "/_tags/"}
	s := newSigningOn(t, d)
	signed := s.cosign(t, s.alice, nil)
	if r := s.put(t, s.sigTag(), signed.Manifest); r.status != 201 {
		t.Fatalf("alice's signature artifact: %d %s", r.status, r.body)
	}
	d.armed.Store(true)
	r := do(t, s.srv, "GET", "/v2/acme/app/tags/list", nil, nil)
	d.armed.Store(false)
	want503(t, "a tag list the store could not read", r)
	r = do(t, s.srv, "GET", "/v2/acme/app/tags/list", nil, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"v1"`) || !strings.Contains(string(r.body), s.sigTag()) {
		t.Fatalf("the tag list once the store reads again: %d %s", r.status, r.body)
	}
}
