package e2e

import (
	"bytes"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCrashDuringGroupCommits kills the registry (kill -9) 20 times while 8
// clients push small images at full speed on the filesystem, whose driver syncs
// concurrent writes in groups where syncs are slow, and each alone where they are
// fast. Each kill waits until a thread of the registry is inside a sync system
// call (read from /proc), so it lands while writes are being made durable. After each restart: every acknowledged push is served whole, by
// tag and by digest (no acknowledged push lost); no object is served partial; and
// every tag listed points at the whole manifest pushed for that tag (no ghost
// tag). Every push has a tag of its own, so a tag can only be right or wrong.
func TestCrashDuringGroupCommits(t *testing.T) {
	t.Parallel()
	const (
		kills   = 20
		pushers = 8
	)
	reg := startRegistryOn(t, newFilesystemStore(t))
	repos := []string{"e2e/group/a", "e2e/group/b"}
	type push = groupPush
	var (
		mu        sync.Mutex
		attempted []push
		acked     []push
	)
	inSync := 0
	for k := range kills {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var round, roundAcked []push
		for p := range pushers {
			wg.Go(func() {
				rc := newRegClient(reg.Addr)
				rc.hc.Timeout = 10 * time.Second
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					tag := fmt.Sprintf("k%d-p%d-n%d", k, p, n)
					a := push{
						repo: repos[(p+n)%len(repos)],
						tag:  tag,
						img:  newImage(t, tag, newLayer(t, "small.bin", 1<<10+mrand.IntN(3<<10))),
					}
					mu.Lock()
					attempted, round = append(attempted, a), append(round, a)
					mu.Unlock()
					// go-containerregistry's way (POST, one PATCH, PUT) and the
					// one-request ways, which take the whole-object put.
					mode := []uploadMode{uploadStreamed, uploadMonolithicPost, uploadPostPut}[(p+n)%3]
					if err := rc.pushImage(a.repo, a.tag, a.img, mode); err != nil {
						return // the registry was killed under us
					}
					mu.Lock()
					acked, roundAcked = append(acked, a), append(roundAcked, a)
					mu.Unlock()
				}
			})
		}
		// Let every pusher get going, then kill as soon as a sync is in flight.
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			mu.Lock()
			n := len(roundAcked)
			mu.Unlock()
			if n >= pushers {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(time.Duration(mrand.IntN(20)) * time.Millisecond)
		if killDuringSync(reg, 2*time.Second) {
			inSync++
		}
		close(stop)
		wg.Wait()
		reg.restart()

		mu.Lock()
		roundNow, ackedNow := round, roundAcked
		mu.Unlock()
		rc := newRegClient(reg.Addr)
		if !t.Run(fmt.Sprintf("after kill %d", k), func(t *testing.T) {
			checkPushes(t, rc, roundNow, ackedNow)
		}) {
			t.FailNow()
		}
	}
	t.Logf("%d kills, %d of them during a sync; %d pushes attempted, %d acknowledged", kills, inSync, len(attempted), len(acked))
	if inSync < kills/2 {
		t.Errorf("only %d of %d kills landed during a sync; the test did not exercise group commits", inSync, kills)
	}
	t.Run("at the end", func(t *testing.T) {
		rc := newRegClient(reg.Addr)
		checkPushes(t, rc, attempted, acked)
		// No tag is listed that no push asked for.
		want := map[string]bool{}
		for _, a := range attempted {
			want[a.repo+":"+a.tag] = true
		}
		for _, repo := range repos {
			tags, err := rc.tags(repo)
			if err != nil {
				t.Fatalf("listing tags of %s: %v", repo, err)
			}
			for _, tag := range tags {
				if !want[repo+":"+tag] {
					t.Errorf("ghost tag %s:%s: listed, but no client pushed it", repo, tag)
				}
			}
		}
	})
}

// groupPush is one push of TestCrashDuringGroupCommits: an image to a tag of its own.
type groupPush struct {
	repo, tag string
	img       image
}

// checkPushes checks, after a restart, that every acknowledged push in acked is
// served whole by tag and digest, and that every push in attempted is either
// absent or whole: its tag missing or at its manifest, its manifest missing or
// served with its bytes and whole blobs, its blobs missing or whole.
func checkPushes(t *testing.T, rc *regClient, attempted, acked []groupPush) {
	t.Helper()
	isAcked := map[string]bool{}
	for _, a := range acked {
		isAcked[a.repo+":"+a.tag] = true
	}
	lost, partial, ghosts := 0, 0, 0
	for _, a := range attempted {
		must := isAcked[a.repo+":"+a.tag]
		for _, ref := range []string{a.tag, a.img.ManifestDigest} {
			req := rc.newRequest("GET", "/v2/"+a.repo+"/manifests/"+ref, nil)
			req.Header.Set("Accept", mediaTypeOCIManifest)
			resp, body, err := rc.do(req, http.StatusOK, http.StatusNotFound)
			switch {
			case err != nil:
				t.Errorf("manifest %s:%s: %v", a.repo, ref, err)
			case resp.StatusCode == http.StatusNotFound && must:
				lost++
				t.Errorf("acknowledged push lost: %s:%s answers 404", a.repo, ref)
			case resp.StatusCode == http.StatusOK && !bytes.Equal(body, a.img.Manifest):
				if ref == a.tag {
					ghosts++
					t.Errorf("ghost tag %s:%s: serves %d bytes hashing to %s, not the manifest pushed for it", a.repo, ref, len(body), sha256Digest(body))
				} else {
					partial++
					t.Errorf("partial manifest %s@%s: %d bytes hashing to %s", a.repo, ref, len(body), sha256Digest(body))
				}
			}
		}
		for d, content := range a.img.blobs() {
			req := rc.newRequest("GET", "/v2/"+a.repo+"/blobs/"+d, nil)
			resp, body, err := rc.do(req, http.StatusOK, http.StatusNotFound)
			switch {
			case err != nil:
				t.Errorf("blob %s@%s: %v", a.repo, d, err)
			case resp.StatusCode == http.StatusNotFound && must:
				lost++
				t.Errorf("acknowledged push lost: blob %s@%s answers 404", a.repo, d)
			case resp.StatusCode == http.StatusOK && !bytes.Equal(body, content):
				partial++
				t.Errorf("partial blob %s@%s: %d bytes hashing to %s", a.repo, d, len(body), sha256Digest(body))
			}
		}
	}
	if lost+partial+ghosts > 0 {
		t.Errorf("%d pushes checked (%d acknowledged): %d lost, %d partial objects, %d ghost tags", len(attempted), len(acked), lost, partial, ghosts)
	}
}

// syncSyscalls are the numbers of fsync, fdatasync and syncfs on the
// architectures the test knows.
var syncSyscalls = map[string][]int{
	"amd64": {74, 75, 306},
	"arm64": {82, 83, 267},
}

// killDuringSync polls the registry's threads (/proc/PID/task/*/syscall) until
// one is inside a sync system call and kills the registry (kill -9) at once. It
// kills anyway after wait, and reports whether the kill landed during a sync.
func killDuringSync(r *registry, wait time.Duration) bool {
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	pid := cmd.Process.Pid
	syncs := syncSyscalls[runtime.GOARCH]
	found := false
	for deadline := time.Now().Add(wait); !found && len(syncs) > 0 && time.Now().Before(deadline); {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			nr, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
			n, err := strconv.Atoi(nr)
			if err == nil && slices.Contains(syncs, n) {
				found = true
				break
			}
		}
	}
	r.kill()
	return found
}
