package registry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/internal/tuftest"
	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

// gated is a registry with the gate on, in front of a TUF repository in which
// org acme delegates acme/app to alice.
type gated struct {
	srv   *httptest.Server
	tuf   *tuftest.Repo
	index *verify.Index
	store *storage.Store
	// clock is the index's clock, which a test moves on instead of sleeping.
	clock *tuftest.Clock
	// logs holds what the registry logged, events what it emitted.
	logs   *syncBuffer
	events *eventLog
}

// syncBuffer is a log's destination that tests read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// of returns the events of kind not yet taken.
func (l *eventLog) of(kind EventKind) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, e := range l.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func newGated(t *testing.T, listeners ...EventListener) *gated {
	t.Helper()
	return newGatedWith(t, nil, nil, listeners...)
}

// newGatedWith is newGated with acme/app delegated to keys (to a new "alice"
// when there are none) and a checker of signature artifacts.
func newGatedWith(t *testing.T, keys map[string]*tuftest.Key, checkSig SignatureChecker, listeners ...EventListener) *gated {
	t.Helper()
	return newGatedOn(t, inmemory.New(), keys, checkSig, listeners...)
}

// newGatedOn is newGatedWith on the storage driver d.
func newGatedOn(t *testing.T, d driver.Driver, keys map[string]*tuftest.Key, checkSig SignatureChecker, listeners ...EventListener) *gated {
	t.Helper()
	return newGatedPausing(t, time.Second, d, keys, checkSig, listeners...)
}

// newGatedPausing is newGatedOn with pause as the index's shortest time
// between refreshes.
func newGatedPausing(t *testing.T, pause time.Duration, d driver.Driver, keys map[string]*tuftest.Key, checkSig SignatureChecker, listeners ...EventListener) *gated {
	t.Helper()
	repo := tuftest.NewRepo(t)
	maps.Copy(repo.Keys, keys)
	repo.Delegate("targets", "org-acme", trustnames.OrgPaths("acme"), "acme-org")
	publishers := slices.Sorted(maps.Keys(keys))
	if len(publishers) == 0 {
		publishers = []string{"alice"}
	}
	repo.Delegate("org-acme", trustnames.RoleForRepo("acme/app"), trustnames.RepoPaths("acme/app"), publishers...)
	repo.Publish("targets", "org-acme")
	store, err := storage.New(context.Background(), d, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	clock := &tuftest.Clock{}
	index, err := verify.NewIndex(verify.IndexConfig{TrustdURL: repo.Srv.URL, Root: repo.RootBytes(), Store: store.TrustMetadata(), MinInterval: pause, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := index.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	logs, events := &syncBuffer{}, &eventLog{}
	api, err := NewServer(store, slog.New(slog.NewTextHandler(logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	api.EnableGate(index, []string{"open/**"}, checkSig)
	for _, l := range append(listeners, events.listen) {
		api.OnEvent(l)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &gated{srv: srv, tuf: repo, index: index, store: store, clock: clock, logs: logs, events: events}
}

// image pushes the blobs of a fresh image to repo and returns its manifest.
func (g *gated) image(t *testing.T, repo, seed string) []byte {
	t.Helper()
	config, layer := []byte(`{"seed":"`+seed+`"}`), []byte("layer "+seed)
	cd, ld := pushBlob(t, g.srv, repo, config), pushBlob(t, g.srv, repo, layer)
	return imageManifest(cd, ld, len(config), len(layer))
}

// sign publishes the target path for manifest in acme/app's role.
func (g *gated) sign(path string, manifest []byte) {
	g.tuf.AddTarget(trustnames.RoleForRepo("acme/app"), path, manifest, storage.MediaTypeOCIManifest)
	g.tuf.Publish(trustnames.RoleForRepo("acme/app"))
}

func putManifest(t *testing.T, srv *httptest.Server, repo, ref string, m []byte) response {
	t.Helper()
	return do(t, srv, "PUT", "/v2/"+repo+"/manifests/"+ref, map[string]string{"Content-Type": storage.MediaTypeOCIManifest}, m)
}

func TestTheGateAdmitsOnlyWhatTheTrustGraphSigns(t *testing.T) {
	g := newGated(t)
	signed := g.image(t, "acme/app", "signed")
	unsigned := g.image(t, "acme/app", "unsigned")
	g.sign("acme/app:v1", signed)
	sd, ud := digest.FromBytes(signed), digest.FromBytes(unsigned)

	r := putManifest(t, g.srv, "acme/app", "v2", unsigned)
	if r.status != 403 || errorCode(t, r) != "DENIED" || !strings.Contains(string(r.body), ud.String()+" is not signed for acme/app:v2") {
		t.Fatalf("an unsigned push: %d %s", r.status, r.body)
	}
	if _, err := g.store.GetManifest(context.Background(), "acme/app", ud.String()); err == nil {
		t.Fatal("a denied manifest was stored")
	}
	if r := putManifest(t, g.srv, "acme/app", "v1", unsigned); r.status != 403 || !strings.Contains(string(r.body), "the target names "+sd.String()) {
		t.Fatalf("another digest under a signed tag: %d %s", r.status, r.body)
	}
	if r := putManifest(t, g.srv, "acme/app", "v1", signed); r.status != 201 {
		t.Fatalf("the signed push: %d %s", r.status, r.body)
	}
	if r := putManifest(t, g.srv, "acme/other", "v1", g.image(t, "acme/other", "signed")); r.status != 403 {
		t.Fatalf("a manifest signed for acme/app pushed to acme/other: %d", r.status)
	}
	if r := do(t, g.srv, "GET", "/v2/acme/app/manifests/v1", nil, nil); r.status != 200 || string(r.body) != string(signed) {
		t.Fatalf("pull of the signed tag: %d", r.status)
	}
	if r := do(t, g.srv, "GET", "/v2/acme/app/tags/list", nil, nil); r.status != 200 || string(r.body) != `{"name":"acme/app","tags":["v1"]}` {
		t.Fatalf("tags: %d %s", r.status, r.body)
	}
	if r := putManifest(t, g.srv, "open/scratch", "v1", g.image(t, "open/scratch", "x")); r.status != 201 {
		t.Fatalf("an open repository admits unsigned content: %d %s", r.status, r.body)
	}
	// Deletes: a tag follows the trust graph; a covered digest stays.
	if r := do(t, g.srv, "DELETE", "/v2/acme/app/manifests/v1", nil, nil); r.status != 403 {
		t.Fatalf("tag delete: %d", r.status)
	}
	if r := do(t, g.srv, "DELETE", "/v2/acme/app/manifests/"+sd.String(), nil, nil); r.status != 403 {
		t.Fatalf("delete of a signed digest: %d", r.status)
	}
}

func TestBlobsAreServedOnlyForAdmittedManifests(t *testing.T) {
	g := newGated(t)
	signed := g.image(t, "acme/app", "s")
	g.sign("acme/app:v1", signed)
	putManifest(t, g.srv, "acme/app", "v1", signed)
	stray := pushBlob(t, g.srv, "acme/app", []byte("pushed, never referenced"))
	if r := do(t, g.srv, "GET", "/v2/acme/app/blobs/"+stray.String(), nil, nil); r.status != 404 {
		t.Fatalf("GET of an unreferenced blob: %d", r.status)
	}
	if r := do(t, g.srv, "HEAD", "/v2/acme/app/blobs/"+stray.String(), nil, nil); r.status != 200 {
		t.Fatalf("a pusher's HEAD of it (to skip a re-upload): %d", r.status)
	}
	layer := digest.FromString("layer s")
	if r := do(t, g.srv, "GET", "/v2/acme/app/blobs/"+layer.String(), nil, nil); r.status != 200 {
		t.Fatalf("GET of an admitted manifest's layer: %d", r.status)
	}
	if r := do(t, g.srv, "DELETE", "/v2/acme/app/blobs/"+layer.String(), nil, nil); r.status != 403 || errorCode(t, r) != "DENIED" {
		t.Fatalf("DELETE of a signed manifest's layer: %d %s", r.status, r.body)
	}
	if r := do(t, g.srv, "DELETE", "/v2/acme/app/blobs/"+stray.String(), nil, nil); r.status != 202 {
		t.Fatalf("DELETE of an unreferenced blob: %d %s", r.status, r.body)
	}
}

func TestAMissRefreshesAndRevocationStopsATagResolving(t *testing.T) {
	g := newGated(t)
	m := g.image(t, "acme/app", "late")
	// Signed after the registry's last refresh: the push's miss refreshes.
	g.clock.Advance(1100 * time.Millisecond)
	g.sign("acme/app:v1", m)
	if r := putManifest(t, g.srv, "acme/app", "v1", m); r.status != 201 {
		t.Fatalf("a push signed just before: %d %s", r.status, r.body)
	}
	// The target is removed; after the next refresh the tag is gone, though the
	// registry still holds the bytes.
	delete(g.tuf.Delegated[trustnames.RoleForRepo("acme/app")].Signed.Targets, "acme/app:v1")
	g.tuf.Publish(trustnames.RoleForRepo("acme/app"))
	g.clock.Advance(1100 * time.Millisecond)
	if err := g.index.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := do(t, g.srv, "GET", "/v2/acme/app/manifests/v1", nil, nil); r.status != 404 {
		t.Fatalf("a revoked tag: %d", r.status)
	}
	if r := do(t, g.srv, "GET", "/v2/acme/app/manifests/"+digest.FromBytes(m).String(), nil, nil); r.status != 404 {
		t.Fatalf("a revoked digest: %d", r.status)
	}
}

func TestABurstOfUnsignedPushesCostsAtMostTwoRefreshes(t *testing.T) {
	g := newGated(t)
	m := g.image(t, "acme/app", "burst")
	before := g.index.Refreshes()
	burstStart := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v2/acme/app/manifests/t%d", g.srv.URL, i), strings.NewReader(string(m)))
			req.Header.Set("Content-Type", storage.MediaTypeOCIManifest)
			resp, err := g.srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[403] != 1000 {
		t.Fatalf("statuses %v, want 1000 × 403", statuses)
	}
	// Refreshes start at most once a second and each serves every miss that
	// arrived before it started: a burst costs at most two, plus one for each
	// further second its arrivals spread over (they spread under the race
	// detector on a loaded machine; without it the burst takes well under one).
	spread := time.Since(burstStart)
	if n, limit := g.index.Refreshes()-before, 2+int64(spread/time.Second); n > limit {
		t.Fatalf("1000 unsigned PUTs over %v caused %d refreshes, want at most %d", spread, n, limit)
	}
}

func TestWithTrustdDownAdmittedContentIsServedAndNewSignaturesWait(t *testing.T) {
	g := newGated(t)
	m := g.image(t, "acme/app", "a")
	g.sign("acme/app:v1", m)
	putManifest(t, g.srv, "acme/app", "v1", m)
	next := g.image(t, "acme/app", "b")
	g.sign("acme/app:v2", next)
	g.tuf.Srv.Close()
	g.clock.Advance(1100 * time.Millisecond)
	if r := do(t, g.srv, "GET", "/v2/acme/app/manifests/v1", nil, nil); r.status != 200 {
		t.Fatalf("a pull of admitted content with trustd down: %d", r.status)
	}
	r := putManifest(t, g.srv, "acme/app", "v2", next)
	if r.status != 503 || !strings.Contains(string(r.body), "trustd could not be reached") {
		t.Fatalf("a push that needs a new signature with trustd down: %d %s", r.status, r.body)
	}
}

func TestBlobsOfAManifestPushedAfterItsTargetAreServed(t *testing.T) {
	g := newGated(t)
	m := g.image(t, "acme/app", "published first")
	// The order of a signed push: blobs, then the target, then the manifest.
	// The registry learns of the target before the manifest arrives, and a
	// pusher's HEAD of a blob (to skip a re-upload) looks at the blob set then.
	g.clock.Advance(1100 * time.Millisecond)
	g.sign("acme/app:v1", m)
	if err := g.index.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	layer := digest.FromString("layer published first")
	if r := do(t, g.srv, "HEAD", "/v2/acme/app/blobs/"+layer.String(), nil, nil); r.status != 200 {
		t.Fatalf("a pusher's HEAD: %d", r.status)
	}
	if r := putManifest(t, g.srv, "acme/app", "v1", m); r.status != 201 {
		t.Fatalf("the signed push: %d %s", r.status, r.body)
	}
	if r := do(t, g.srv, "GET", "/v2/acme/app/blobs/"+layer.String(), nil, nil); r.status != 200 {
		t.Fatalf("GET of the admitted manifest's layer right after its push: %d", r.status)
	}
	g.clock.Advance(1100 * time.Millisecond)
	if r := do(t, g.srv, "GET", "/v2/acme/app/blobs/"+layer.String(), nil, nil); r.status != 200 {
		t.Fatalf("GET of the admitted manifest's layer a second later: %d", r.status)
	}
}

func TestBlobsOfAManifestAnotherReplicaStoredAreServedASecondLaterOnTheIndexClock(t *testing.T) {
	g := newGated(t)
	m := g.image(t, "acme/app", "elsewhere")
	g.sign("acme/app:v1", m)
	g.clock.Advance(1100 * time.Millisecond)
	if err := g.index.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	layer := digest.FromString("layer elsewhere")
	if r := do(t, g.srv, "GET", "/v2/acme/app/blobs/"+layer.String(), nil, nil); r.status != 404 {
		t.Fatalf("GET of a layer of a signed manifest not pushed yet: %d", r.status)
	}
	// Another replica on the same storage admits the manifest: this one learns
	// of it when its blob set is a second old, on the index's clock.
	if _, err := g.store.PutManifest(context.Background(), "acme/app", "v1", storage.MediaTypeOCIManifest, m, nil); err != nil {
		t.Fatal(err)
	}
	g.clock.Advance(1100 * time.Millisecond)
	if r := do(t, g.srv, "GET", "/v2/acme/app/blobs/"+layer.String(), nil, nil); r.status != 200 {
		t.Fatalf("GET of the layer a second after another replica stored its manifest: %d", r.status)
	}
}
