package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// TestCrashMidUpload kills the registry (kill -9) while a large streamed PATCH is half
// written, on the filesystem and on S3. After a restart the half-uploaded blob must
// not be served, the upload must resume from what the registry reports it holds, and
// the blob must then be served with its digest.
func TestCrashMidUpload(t *testing.T) {
	t.Parallel()
	for _, st := range bothStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			crashMidUpload(t, startRegistryOn(t, st.open(t)))
		})
	}
}

func crashMidUpload(t *testing.T, reg *registry) {
	rc := newRegClient(reg.Addr)
	const repo = "e2e/crash-upload"
	const firstChunk = 8 << 20
	content := randomBytes(48 << 20)
	dgst := sha256Digest(content)

	loc, err := rc.startUpload(repo)
	if err != nil {
		t.Fatal(err)
	}
	req := rc.newRequest("PATCH", loc, bytes.NewReader(content[:firstChunk]))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("0-%d", firstChunk-1))
	resp, _, err := rc.do(req, http.StatusAccepted)
	if err != nil {
		t.Fatal(err)
	}
	if loc, err = rc.resolve(resp.Header.Get("Location")); err != nil {
		t.Fatalf("PATCH response: %v", err)
	}

	// Stream the rest, stop half-way, and kill the registry while the request is open.
	pr, pw := io.Pipe()
	req = rc.newRequest("PATCH", loc, pr)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.ContentLength = -1
	patchDone := make(chan error, 1)
	go func() {
		resp, err := rc.hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			err = fmt.Errorf("the streamed PATCH completed with %s %q although its body was never finished", resp.Status, body)
		}
		patchDone <- err
	}()
	half := firstChunk + (len(content)-firstChunk)/2
	if _, err := pw.Write(content[firstChunk:half]); err != nil {
		t.Fatalf("streaming the PATCH body: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // let the registry take in what was sent
	reg.restart()
	pw.CloseWithError(errors.New("registry killed"))
	if err := <-patchDone; err != nil && !isConnError(err) {
		t.Fatal(err)
	}
	rc = newRegClient(reg.Addr)
	loc = rehost(t, loc, reg.Addr)

	t.Run("the half-uploaded blob is not served", func(t *testing.T) {
		if st, err := rc.blobStatus(repo, dgst); err != nil || st != http.StatusNotFound {
			t.Errorf("HEAD blob %s after the crash: status %d (%v), want 404", dgst, st, err)
		}
	})
	var held int64
	t.Run("the upload reports the bytes it holds", func(t *testing.T) {
		held, loc, err = rc.uploadStatus(loc)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("the registry holds %d of %d bytes sent (%d in the completed first chunk)", held, half, firstChunk)
		if held < firstChunk || held > int64(half) {
			t.Fatalf("GET upload: holds %d bytes, want between the completed chunk (%d) and all that was sent (%d)", held, firstChunk, half)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	t.Run("the upload resumes and completes", func(t *testing.T) {
		resumeUpload(t, rc, repo, loc, content, held)
	})
	t.Run("a new push of the same content succeeds", func(t *testing.T) {
		for _, r := range []string{repo, "e2e/crash-upload-again"} {
			if err := rc.pushBlob(r, content, uploadPostPut); err != nil {
				t.Fatal(err)
			}
			if _, err := rc.getBlob(r, dgst); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// resumeUpload sends content from held on to the upload at loc, completes it,
// and checks that repo serves the blob.
func resumeUpload(t *testing.T, rc *regClient, repo, loc string, content []byte, held int64) {
	t.Helper()
	req := rc.newRequest("PATCH", loc, bytes.NewReader(content[held:]))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", held, len(content)-1))
	resp, _, err := rc.do(req, http.StatusAccepted)
	if err != nil {
		t.Fatal(err)
	}
	next, err := rc.resolve(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("PATCH response: %v", err)
	}
	dgst := sha256Digest(content)
	if _, _, err := rc.do(rc.newRequest("PUT", withQuery(next, "digest", dgst), nil), http.StatusCreated); err != nil {
		t.Fatal(err)
	}
	got, err := rc.getBlob(repo, dgst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Fatal("the resumed blob differs from the content")
	}
}

// TestCrashDuringConcurrentPushes kills the registry (kill -9) at random moments while
// several clients push small images, several times over, on the filesystem and on
// S3. After each restart nothing partial may be visible, every acknowledged push must
// be intact, and pushing the same content again must succeed.
func TestCrashDuringConcurrentPushes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		open  func(*testing.T) store
		kills int
	}{
		{"filesystem", newFilesystemStore, 6},
		{"s3", newS3Store, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			crashDuringConcurrentPushes(t, startRegistryOn(t, tc.open(t)), tc.kills)
		})
	}
}

func crashDuringConcurrentPushes(t *testing.T, reg *registry, kills int) {
	repos := []string{"e2e/crash/a", "e2e/crash/b", "e2e/crash/c"}
	tags := []string{"t0", "t1", "t2"}
	const pushers = 6

	type attempt struct {
		repo, tag string
		img       image
	}
	var (
		mu        sync.Mutex
		attempted []attempt
		acked     []attempt
	)
	// The images of a repository, by manifest digest, that anyone tried to push.
	known := func(repo string) map[string]image {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]image{}
		for _, a := range attempted {
			if a.repo == repo {
				out[a.img.ManifestDigest] = a.img
			}
		}
		return out
	}
	// Some blobs are shared by many images, so crashes hit concurrent commits of the
	// same digest.
	sharedLayer := newLayer(t, "shared.bin", 96<<10)

	for k := range kills {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for p := range pushers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rc := newRegClient(reg.Addr)
				rc.hc.Timeout = 10 * time.Second
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					a := attempt{
						repo: repos[(p+n)%len(repos)],
						tag:  tags[(p*7+n)%len(tags)],
						img: newImage(t, fmt.Sprintf("kill-%d-pusher-%d-%d", k, p, n),
							sharedLayer, newLayer(t, "own.bin", 4<<10+mrand.IntN(60<<10))),
					}
					mu.Lock()
					attempted = append(attempted, a)
					mu.Unlock()
					if err := rc.pushImage(a.repo, a.tag, a.img, uploadMode((p+n)%int(numUploadModes))); err != nil {
						return // the registry was killed under us
					}
					mu.Lock()
					acked = append(acked, a)
					mu.Unlock()
				}
			}()
		}
		// Kill at a random moment once the pushers are busy: after this round's
		// first acknowledged pushes, so the kill lands among pushes in flight.
		mu.Lock()
		before := len(acked)
		mu.Unlock()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n >= before+pushers {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(mrand.IntN(400)) * time.Millisecond)
		reg.kill()
		close(stop)
		wg.Wait()
		reg.restart()
		mu.Lock()
		t.Logf("kill %d: %d pushes attempted, %d acknowledged so far", k, len(attempted), len(acked))
		ackedNow := append([]attempt(nil), acked...)
		mu.Unlock()

		rc := newRegClient(reg.Addr)
		ok := t.Run(fmt.Sprintf("after kill %d nothing partial is visible", k), func(t *testing.T) {
			for _, repo := range repos {
				verifyRepo(t, rc, repo, known(repo))
			}
		})
		ok = t.Run(fmt.Sprintf("after kill %d every acknowledged push is intact", k), func(t *testing.T) {
			for _, a := range ackedNow {
				body, _, err := rc.getManifest(a.repo, a.img.ManifestDigest)
				if err != nil {
					t.Errorf("acknowledged manifest lost: %v", err)
					continue
				}
				if !bytes.Equal(body, a.img.Manifest) {
					t.Errorf("acknowledged manifest %s@%s: served bytes differ", a.repo, a.img.ManifestDigest)
				}
				for d := range a.img.blobs() {
					if _, err := rc.getBlob(a.repo, d); err != nil {
						t.Errorf("acknowledged blob lost: %v", err)
					}
				}
			}
		}) && ok
		if !ok {
			t.FailNow()
		}
	}

	t.Run("pushing the interrupted images again succeeds", func(t *testing.T) {
		rc := newRegClient(reg.Addr)
		mu.Lock()
		all := append([]attempt(nil), attempted...)
		mu.Unlock()
		for i, a := range all {
			if err := rc.pushImage(a.repo, "again", a.img, uploadMode(i%int(numUploadModes))); err != nil {
				t.Fatalf("re-push of %s@%s: %v", a.repo, a.img.ManifestDigest, err)
			}
			body, _, err := rc.getManifest(a.repo, a.img.ManifestDigest)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, a.img.Manifest) {
				t.Fatalf("re-pushed manifest %s@%s: served bytes differ", a.repo, a.img.ManifestDigest)
			}
		}
		for _, repo := range repos {
			verifyRepo(t, rc, repo, known(repo))
		}
	})
}

// verifyRepo checks that a repository shows nothing partial: every tag resolves to a
// whole manifest that some client pushed, every blob such a manifest references is
// served with its digest, and any pushed blob or manifest the registry serves has
// the right content.
func verifyRepo(t *testing.T, rc *regClient, repo string, pushed map[string]image) {
	t.Helper()
	tagList, err := rc.tags(repo)
	var he *httpError
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		tagList, err = nil, nil // nothing of this repository was committed
	}
	if err != nil {
		t.Errorf("listing tags: %v", err)
	}
	for _, tag := range tagList {
		body, hdr, err := rc.getManifest(repo, tag)
		if err != nil {
			t.Errorf("tag %s:%s is listed but its manifest is not served: %v", repo, tag, err)
			continue
		}
		d := sha256Digest(body)
		if hd := hdr.Get("Docker-Content-Digest"); hd != d {
			t.Errorf("%s:%s: Docker-Content-Digest %s, but the body hashes to %s", repo, tag, hd, d)
		}
		im, ok := pushed[d]
		if !ok || !bytes.Equal(im.Manifest, body) {
			t.Errorf("%s:%s serves a manifest (%s, %d bytes) that no client pushed to this repository:\n%s", repo, tag, d, len(body), body)
			continue
		}
		for bd := range im.blobs() {
			if _, err := rc.getBlob(repo, bd); err != nil {
				t.Errorf("%s:%s references a blob that is not served whole: %v", repo, tag, err)
			}
		}
	}
	for d, im := range pushed {
		req := rc.newRequest("GET", "/v2/"+repo+"/manifests/"+d, nil)
		req.Header.Set("Accept", mediaTypeOCIManifest)
		resp, body, err := rc.do(req, http.StatusOK, http.StatusNotFound)
		if err != nil {
			t.Errorf("manifest %s@%s: %v", repo, d, err)
			continue
		}
		if resp.StatusCode == http.StatusOK {
			if !bytes.Equal(body, im.Manifest) {
				t.Errorf("manifest %s@%s: serves %d bytes hashing to %s", repo, d, len(body), sha256Digest(body))
			}
			for bd := range im.blobs() {
				if _, err := rc.getBlob(repo, bd); err != nil {
					t.Errorf("manifest %s@%s is served but a blob it references is not: %v", repo, d, err)
				}
			}
		}
		for bd, content := range im.blobs() {
			req := rc.newRequest("GET", "/v2/"+repo+"/blobs/"+bd, nil)
			resp, body, err := rc.do(req, http.StatusOK, http.StatusNotFound)
			if err != nil {
				t.Errorf("blob %s@%s: %v", repo, bd, err)
			} else if resp.StatusCode == http.StatusOK && !bytes.Equal(body, content) {
				t.Errorf("blob %s@%s: serves %d bytes hashing to %s", repo, bd, len(body), sha256Digest(body))
			}
		}
	}
}

// rehost points an upload location at the registry's new address after a restart.
func rehost(t *testing.T, loc, addr string) string {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

// isConnError reports whether err is the client-side error of a request cut off by
// the registry's death.
func isConnError(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue)
}
