package e2e

import (
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// gcReport is the JSON report of `registry gc --output json`.
type gcReport struct {
	Repositories     int   `json:"repositories"`
	ManifestsDeleted int   `json:"manifestsDeleted"`
	LinksDeleted     int   `json:"blobLinksDeleted"`
	BlobsDeleted     int   `json:"blobsDeleted"`
	BytesFreed       int64 `json:"bytesFreed"`
	UploadsDeleted   int   `json:"uploadsDeleted"`
	DryRun           bool  `json:"dryRun"`
}

// runGC runs `registry gc --output json` on the store and returns its report.
func runGC(st store, args ...string) (gcReport, error) {
	var rep gcReport
	out, err := st.gc(append(args, "--output", "json")...)
	if err != nil {
		return rep, err
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		return rep, fmt.Errorf("registry gc --output json: %v in %q", err, out)
	}
	return rep, nil
}

// TestGCDuringConcurrentPushes runs `registry gc --grace 2s --untagged` in a loop, as
// a process of its own on the registry's data, while 100 small images are pushed
// concurrently, each well within the grace period, and while there is real garbage
// (orphan blobs, untagged manifests) for the collections to sweep; then, once
// everything is older than the grace period, once more. Every pushed tag must still
// resolve to its manifest, every blob it references must be served with its digest,
// and the garbage must be gone.
func TestGCDuringConcurrentPushes(t *testing.T) {
	t.Parallel()
	if reference {
		t.Skip("the reference registry has no online garbage collection")
	}
	for _, s := range bothStores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			st := s.open(t)
			gcDuringPushes(t, st, startRegistryOn(t, st))
		})
	}
}

func gcDuringPushes(t *testing.T, st store, reg *registry) {
	const (
		pushes = 100
		repos  = 4
		grace  = 2 * time.Second
		// The pushes start spread over this long, so collections see blobs and
		// manifests of every age around the grace period while pushes go on.
		spread = 8 * time.Second
	)
	gcArgs := []string{"--grace", grace.String(), "--untagged"}
	rc := newRegClient(reg.Addr)
	repoName := func(i int) string { return fmt.Sprintf("e2e/gc/r%d", i%repos) }

	// Garbage, older than the grace period when the pushes begin: in each
	// repository orphan blobs and an untagged manifest with a layer of its own.
	var garbageBlobs []string
	var garbageManifests [][2]string
	for r := range repos {
		for range 3 {
			b := randomBytes(4<<10 + mrand.IntN(4<<10))
			if err := rc.pushBlob(repoName(r), b, uploadPostPut); err != nil {
				t.Fatal(err)
			}
			garbageBlobs = append(garbageBlobs, sha256Digest(b))
		}
		im := newImage(t, fmt.Sprintf("gc-garbage-%d", r), newLayer(t, "garbage.bin", 4<<10))
		for _, b := range im.blobs() {
			if err := rc.pushBlob(repoName(r), b, uploadMonolithicPost); err != nil {
				t.Fatal(err)
			}
			garbageBlobs = append(garbageBlobs, sha256Digest(b))
		}
		if err := rc.putManifest(repoName(r), im.ManifestDigest, mediaTypeOCIManifest, im.Manifest); err != nil {
			t.Fatal(err)
		}
		garbageManifests = append(garbageManifests, [2]string{repoName(r), im.ManifestDigest})
	}

	// Images of one repository share a base layer, as real images do; each push
	// uploads it again, so collections meet concurrent commits of an existing blob.
	base := make([]layer, repos)
	for i := range base {
		base[i] = newLayer(t, "base.bin", 32<<10)
	}
	type push struct {
		repo, tag string
		img       image
		dur       time.Duration
		err       error
	}
	all := make([]*push, pushes)
	for i := range all {
		all[i] = &push{
			repo: repoName(i),
			tag:  fmt.Sprintf("p%d", i),
			img:  newImage(t, fmt.Sprintf("gc-push-%d", i), base[i%repos], newLayer(t, "own.bin", 1<<10+mrand.IntN(8<<10))),
		}
	}
	time.Sleep(grace + 1500*time.Millisecond) // S3 reports modification times to the second

	// The collector loop, until the pushes are over.
	type gcRun struct {
		start, end time.Time
		rep        gcReport
		err        error
	}
	var (
		runs   []gcRun
		stop   = make(chan struct{})
		gcDone = make(chan struct{})
	)
	go func() {
		defer close(gcDone)
		for {
			r := gcRun{start: time.Now()}
			r.rep, r.err = runGC(st, gcArgs...)
			r.end = time.Now()
			runs = append(runs, r)
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()

	// The pushes: blobs as one request each (monolithic POST, or POST then PUT),
	// so that a push stays well within the grace period on a loaded machine.
	pushStart := time.Now()
	var wg sync.WaitGroup
	for i, p := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(spread * time.Duration(i) / pushes)
			rc := newRegClient(reg.Addr)
			start := time.Now()
			p.err = rc.pushImage(p.repo, p.tag, p.img, uploadMode(i%2))
			p.dur = time.Since(start)
		}()
	}
	wg.Wait()
	pushEnd := time.Now()
	close(stop)
	<-gcDone

	during := 0
	var freed gcReport
	for _, r := range runs {
		if r.err != nil {
			t.Errorf("a collection during the pushes failed: %v", r.err)
			continue
		}
		if r.start.Before(pushEnd) && r.end.After(pushStart) {
			during++
		}
		freed.LinksDeleted += r.rep.LinksDeleted
		freed.BlobsDeleted += r.rep.BlobsDeleted
		freed.ManifestsDeleted += r.rep.ManifestsDeleted
	}
	var slowest time.Duration
	late := 0
	for _, p := range all {
		slowest = max(slowest, p.dur)
		if p.dur > grace {
			late++
		}
	}
	t.Logf("%d pushes in %v (slowest %v, %d longer than the grace) during %d collections (%d in all), which freed %d blobs, %d links, %d manifests",
		pushes, pushEnd.Sub(pushStart).Round(time.Millisecond), slowest.Round(time.Millisecond), late, during, len(runs),
		freed.BlobsDeleted, freed.LinksDeleted, freed.ManifestsDeleted)
	if during < 2 {
		t.Errorf("only %d collections overlapped the pushes; the check needs several", during)
	}
	if late > pushes/10 {
		t.Errorf("%d of %d pushes took longer than the grace period (%v): the machine is too slow for this check to mean anything", late, pushes, grace)
	}

	// Everything is now older than the grace period: only references protect it.
	time.Sleep(grace + 1500*time.Millisecond)
	rep, err := runGC(st, gcArgs...)
	if err != nil {
		t.Fatalf("the collection after the pushes: %v", err)
	}
	t.Logf("the collection after the pushes freed %d blobs, %d links, %d manifests", rep.BlobsDeleted, rep.LinksDeleted, rep.ManifestsDeleted)

	for _, p := range all {
		// A push that outlived the grace period is outside the collector's
		// contract: what it lost is reported, not failed.
		report := t.Errorf
		note := ""
		if p.dur > grace {
			report = t.Logf
			note = fmt.Sprintf(" (outside the contract: the push took %v, longer than the grace of %v)", p.dur.Round(time.Millisecond), grace)
		}
		if p.err != nil {
			report("push %s:%s failed%s: %v", p.repo, p.tag, note, p.err)
			continue
		}
		body, _, err := rc.getManifest(p.repo, p.tag)
		if err != nil {
			report("pushed tag %s:%s lost%s: %v", p.repo, p.tag, note, err)
			continue
		}
		if sha256Digest(body) != p.img.ManifestDigest {
			t.Errorf("pushed tag %s:%s serves %s, want %s", p.repo, p.tag, sha256Digest(body), p.img.ManifestDigest)
		}
		for d := range p.img.blobs() {
			if _, err := rc.getBlob(p.repo, d); err != nil {
				report("a blob of %s:%s was collected%s: %v", p.repo, p.tag, note, err)
			}
		}
	}
	for _, m := range garbageManifests {
		if _, _, err := rc.getManifest(m[0], m[1]); err == nil {
			t.Errorf("the untagged manifest %s@%s survived the collections", m[0], m[1])
		}
	}
	for i, d := range garbageBlobs {
		if st.blobStored(t, d) {
			t.Errorf("the garbage blob %s of %s survived the collections", d, repoName(i/5))
		}
	}
}

// TestGCCollectsGarbage checks that garbage older than the grace period really goes:
// an orphan blob (uploaded, never referenced), and with --untagged a manifest that no
// tag reaches together with the blobs only it referenced; that --dry-run reports the
// same without deleting anything; and that what is tagged, or younger than the grace
// period, stays.
func TestGCCollectsGarbage(t *testing.T) {
	t.Parallel()
	if reference {
		t.Skip("the reference registry has no online garbage collection")
	}
	for _, s := range bothStores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			st := s.open(t)
			gcCollects(t, st, startRegistryOn(t, st))
		})
	}
}

func gcCollects(t *testing.T, st store, reg *registry) {
	const repo = "e2e/gc/collect"
	const grace = time.Second
	rc := newRegClient(reg.Addr)
	kept := newImage(t, "gc-kept", newLayer(t, "kept.bin", 16<<10))
	untagged := newImage(t, "gc-untagged", newLayer(t, "untagged.bin", 24<<10))
	orphan := randomBytes(40 << 10)
	if err := rc.pushImage(repo, "v1", kept, uploadPostPut); err != nil {
		t.Fatal(err)
	}
	for d, b := range untagged.blobs() {
		if err := rc.pushBlob(repo, b, uploadMonolithicPost); err != nil {
			t.Fatalf("blob %s: %v", d, err)
		}
	}
	if err := rc.putManifest(repo, untagged.ManifestDigest, mediaTypeOCIManifest, untagged.Manifest); err != nil {
		t.Fatal(err)
	}
	if err := rc.pushBlob(repo, orphan, uploadChunked); err != nil {
		t.Fatal(err)
	}
	orphanDigest := sha256Digest(orphan)
	// S3 reports modification times to the second: wait out the grace period and
	// that rounding.
	time.Sleep(grace + 1500*time.Millisecond)

	served := func(t *testing.T, what, d string, want bool) {
		t.Helper()
		st2, err := rc.blobStatus(repo, d)
		if err != nil {
			t.Fatal(err)
		}
		if stored := st.blobStored(t, d); (st2 == http.StatusOK) != want || stored != want {
			t.Errorf("%s %s: HEAD answers %d and the %s store holds its bytes: %v; want both %v", what, d, st2, st.Driver, stored, want)
		}
	}
	manifestServed := func(t *testing.T, what, d string, want bool) {
		t.Helper()
		_, _, err := rc.getManifest(repo, d)
		if (err == nil) != want {
			t.Errorf("%s manifest %s: served %v (%v), want %v", what, d, err == nil, err, want)
		}
	}
	untaggedOnly := 0
	var untaggedBytes int64
	for d, b := range untagged.blobs() {
		if _, shared := kept.blobs()[d]; !shared {
			untaggedOnly++
			untaggedBytes += int64(len(b))
		}
	}

	t.Run("a dry run reports the garbage and deletes nothing", func(t *testing.T) {
		rep, err := runGC(st, "--grace", grace.String(), "--untagged", "--dry-run")
		if err != nil {
			t.Fatal(err)
		}
		want := gcReport{Repositories: 1, ManifestsDeleted: 1, LinksDeleted: 1 + untaggedOnly, BlobsDeleted: 1 + untaggedOnly,
			BytesFreed: int64(len(orphan)) + untaggedBytes, DryRun: true}
		if rep != want {
			t.Errorf("gc --dry-run reported %+v, want %+v", rep, want)
		}
		served(t, "the orphan blob", orphanDigest, true)
		manifestServed(t, "the untagged", untagged.ManifestDigest, true)
		for d := range untagged.blobs() {
			served(t, "a blob of the untagged manifest", d, true)
		}
	})
	// Garbage younger than the grace period, which must stay. It is pushed late in
	// a second and collected early in the next: a store whose clock has whole
	// seconds (S3's Last-Modified) must not make it look a second older than it is.
	young := randomBytes(8 << 10)
	sleepUntilFraction(800 * time.Millisecond)
	if err := rc.pushBlob(repo, young, uploadPostPut); err != nil {
		t.Fatal(err)
	}
	youngPushed := time.Now()
	youngDigest := sha256Digest(young)
	sleepUntilFraction(300 * time.Millisecond)
	t.Logf("collecting %v after the young blob was pushed, with a grace of %v", time.Since(youngPushed).Round(time.Millisecond), grace)

	t.Run("gc deletes the orphan blob but keeps untagged manifests without --untagged", func(t *testing.T) {
		rep, err := runGC(st, "--grace", grace.String())
		if err != nil {
			t.Fatal(err)
		}
		want := gcReport{Repositories: 1, LinksDeleted: 1, BlobsDeleted: 1, BytesFreed: int64(len(orphan))}
		if rep != want {
			t.Errorf("gc reported %+v, want %+v", rep, want)
		}
		served(t, "the orphan blob", orphanDigest, false)
		manifestServed(t, "the untagged", untagged.ManifestDigest, true)
		for d := range untagged.blobs() {
			served(t, "a blob of the untagged manifest", d, true)
		}
		served(t, "the blob younger than the grace period", youngDigest, true)
	})
	t.Run("gc --untagged deletes the untagged manifest and the blobs only it referenced", func(t *testing.T) {
		rep, err := runGC(st, "--grace", grace.String(), "--untagged")
		if err != nil {
			t.Fatal(err)
		}
		want := gcReport{Repositories: 1, ManifestsDeleted: 1, LinksDeleted: untaggedOnly, BlobsDeleted: untaggedOnly, BytesFreed: untaggedBytes}
		if age := time.Since(youngPushed); age > grace && !st.blobStored(t, youngDigest) {
			// On a slow machine the young blob has outgrown the grace period by
			// now, and this collection was free to take it too.
			t.Logf("the young blob, %v old by the end of this collection, was collected with the rest", age.Round(time.Millisecond))
			want.LinksDeleted++
			want.BlobsDeleted++
			want.BytesFreed += int64(len(young))
		}
		if rep != want {
			t.Errorf("gc --untagged reported %+v, want %+v", rep, want)
		}
		manifestServed(t, "the untagged", untagged.ManifestDigest, false)
		for d := range untagged.blobs() {
			if _, shared := kept.blobs()[d]; !shared {
				served(t, "a blob only the untagged manifest referenced", d, false)
			}
		}
	})
	t.Run("what is tagged stays", func(t *testing.T) {
		body, _, err := rc.getManifest(repo, "v1")
		if err != nil {
			t.Fatal(err)
		}
		if sha256Digest(body) != kept.ManifestDigest {
			t.Errorf("tag v1 serves %s, want %s", sha256Digest(body), kept.ManifestDigest)
		}
		for d := range kept.blobs() {
			if _, err := rc.getBlob(repo, d); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("the text report says what was freed", func(t *testing.T) {
		out, err := st.gc("--grace", "1h", "--dry-run")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out, "would free 0 bytes") {
			t.Errorf("gc --dry-run --grace 1h printed %q, want it to start with %q", out, "would free 0 bytes")
		}
	})
}

// sleepUntilFraction sleeps until the wall clock's fraction of a second is f.
func sleepUntilFraction(f time.Duration) {
	now := time.Now()
	next := now.Truncate(time.Second).Add(f)
	if !next.After(now) {
		next = next.Add(time.Second)
	}
	time.Sleep(next.Sub(now))
}
