package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/s3test"
)

// The registry on a sick object store: versitygw behind a real TCP fault
// injector (Toxiproxy) and an HTTP proxy that answers chosen S3 operations with
// 503 SlowDown or 500 InternalError (s3test.StartFaulty). These faults exist only
// between the s3 driver and its server; the filesystem driver's counterpart is
// a full disk.
//
// What must hold: a push either completes correctly or fails with 503
// UNAVAILABLE, a Retry-After and an OCI error body, within a bound (never a
// 500, never a 201 for wrong bytes, never a hang); an interrupted chunked
// upload resumes to the right digest; everything acknowledged reads back whole
// once the faults are gone; /readyz says what is wrong while they last.

// s3Timeout is the registry's S3 inactivity timeout in these tests (flag
// --s3-timeout), short so that a black hole costs seconds.
const s3Timeout = time.Second

// requestBound is how long any request may take while the store is sick: a
// black-holed request costs 3 attempts of s3Timeout and at most 1 s of
// backoff; the rest is slack for a loaded machine.
const requestBound = 20 * time.Second

// startFaultyRegistry starts a registry whose S3 endpoint is a versitygw behind
// both fault injectors.
func startFaultyRegistry(t *testing.T) (*registry, *s3test.Faulty, *regClient) {
	t.Helper()
	f := s3test.StartFaulty(t)
	reg := startRegistryOn(t, store{Driver: "s3", Endpoint: f.Endpoint, Bucket: f.Bucket, AccessKey: f.AccessKey, SecretKey: f.SecretKey},
		"--s3-timeout", s3Timeout.String())
	rc := newRegClient(reg.Addr)
	// A request that outlives this has hung: the test says so rather than wait.
	rc.hc.Timeout = 2 * requestBound
	return reg, f, rc
}

// ledger records what the registry acknowledged, to be read back whole once the
// faults are gone, and what it refused, to be checked for partial content.
type ledger struct {
	mu        sync.Mutex
	blobs     map[string]ackedBlob // by repo and digest
	manifests map[string]ackedBlob // by repo and reference
	refused   []ackedBlob          // blobs whose push failed
}

type ackedBlob struct {
	repo, ref string
	content   []byte
}

func newLedger() *ledger {
	return &ledger{blobs: map[string]ackedBlob{}, manifests: map[string]ackedBlob{}}
}

// pushBlob pushes content and records the outcome: nil (201) or the error,
// which must be a retryable 503.
func (l *ledger) pushBlob(t *testing.T, rc *regClient, repo string, content []byte, mode uploadMode) error {
	t.Helper()
	err := timed(t, fmt.Sprintf("pushing a blob (%s)", mode), func() error { return rc.pushBlob(repo, content, mode) })
	l.mu.Lock()
	defer l.mu.Unlock()
	b := ackedBlob{repo: repo, ref: sha256Digest(content), content: content}
	if err == nil {
		l.blobs[repo+"@"+b.ref] = b
	} else {
		l.refused = append(l.refused, b)
	}
	return err
}

// putManifest pushes a manifest under ref and records it when acknowledged.
func (l *ledger) putManifest(t *testing.T, rc *regClient, repo, ref string, body []byte) error {
	t.Helper()
	err := timed(t, "putting a manifest", func() error { return rc.putManifest(repo, ref, mediaTypeOCIManifest, body) })
	if err == nil {
		l.mu.Lock()
		l.manifests[repo+":"+ref] = ackedBlob{repo: repo, ref: ref, content: body}
		l.manifests[repo+"@"+sha256Digest(body)] = ackedBlob{repo: repo, ref: sha256Digest(body), content: body}
		l.mu.Unlock()
	}
	return err
}

// pushImage pushes an image's blobs and manifest, stopping at the first failure.
func (l *ledger) pushImage(t *testing.T, rc *regClient, repo, tag string, im image, mode uploadMode) error {
	t.Helper()
	for _, b := range append([][]byte{im.Config}, layerBlobs(im)...) {
		if err := l.pushBlob(t, rc, repo, b, mode); err != nil {
			return err
		}
	}
	return l.putManifest(t, rc, repo, tag, im.Manifest)
}

func layerBlobs(im image) [][]byte {
	var bs [][]byte
	for _, ly := range im.Layers {
		bs = append(bs, ly.Blob)
	}
	return bs
}

// check is the consistency check: every acknowledged blob and manifest is
// served whole with its digest (by tag too), and a refused blob is either
// absent or whole, never partial.
func (l *ledger) check(t *testing.T, rc *regClient) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.blobs {
		got, err := rc.getBlob(b.repo, b.ref)
		if err != nil || !bytes.Equal(got, b.content) {
			t.Errorf("acknowledged blob %s@%s is not served whole: %v", b.repo, b.ref, err)
		}
	}
	for _, m := range l.manifests {
		body, hdr, err := rc.getManifest(m.repo, m.ref)
		if err != nil || !bytes.Equal(body, m.content) {
			t.Errorf("acknowledged manifest %s %s is not served as pushed: %v", m.repo, m.ref, err)
			continue
		}
		if d := hdr.Get("Docker-Content-Digest"); d != sha256Digest(body) {
			t.Errorf("manifest %s %s: Docker-Content-Digest %s, body %s", m.repo, m.ref, d, sha256Digest(body))
		}
	}
	for _, b := range l.refused {
		status, err := rc.blobStatus(b.repo, b.ref)
		if err != nil {
			t.Errorf("HEAD of refused blob %s@%s: %v", b.repo, b.ref, err)
			continue
		}
		if status == http.StatusOK {
			if _, err := rc.getBlob(b.repo, b.ref); err != nil {
				t.Errorf("a blob whose push was refused is served, and not whole: %v", err)
			}
		}
	}
	t.Logf("consistency check: %d blobs and %d manifest references acknowledged, %d blob pushes refused", len(l.blobs), len(l.manifests), len(l.refused))
}

// timed runs a client call and fails the test if it took longer than
// requestBound: a sick store must not hold a request past it.
func timed(t *testing.T, what string, fn func() error) error {
	t.Helper()
	start := time.Now()
	err := fn()
	if d := time.Since(start); d > requestBound {
		t.Errorf("%s took %s, past the %s a request may wait on a sick store (%v)", what, d.Round(time.Millisecond), requestBound, err)
	}
	return err
}

// mustBeUnavailable checks that err is the registry's answer for a sick
// store: 503 with Retry-After and the OCI error body UNAVAILABLE.
func mustBeUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	var he *httpError
	if !errors.As(err, &he) {
		t.Fatalf("%s: %v, want 503 UNAVAILABLE", what, err)
	}
	if he.Status != http.StatusServiceUnavailable {
		t.Fatalf("%s: got %d, want 503 UNAVAILABLE with Retry-After: %v", what, he.Status, err)
	}
	if he.Header.Get("Retry-After") == "" {
		t.Errorf("%s: 503 without Retry-After", what)
	}
	if he.Method == http.MethodHead {
		return // no body
	}
	var body struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal([]byte(he.Body), &body) != nil || len(body.Errors) == 0 || body.Errors[0].Code != "UNAVAILABLE" {
		t.Errorf("%s: 503 body %q, want the OCI error UNAVAILABLE", what, he.Body)
	}
}

// TestS3ErrorAnswersAre503 puts each S3 operation a push or pull makes behind
// 503 SlowDown, then 500 InternalError, on every request: the registry's
// answer is 503 UNAVAILABLE with Retry-After, in bounded time; /readyz fails
// its storage check saying why, and recovers; once the fault is cleared the
// same push succeeds, and everything acknowledged reads back whole.
func TestS3ErrorAnswersAre503(t *testing.T) {
	t.Parallel()
	for _, fault := range []s3test.Fault{s3test.SlowDown, s3test.InternalError} {
		t.Run(fault.Code, func(t *testing.T) {
			t.Parallel()
			reg, f, rc := startFaultyRegistry(t)
			l := newLedger()
			const repo = "faults/errors"
			base := newImage(t, "base-"+fault.Code, newLayer(t, "base", 64<<10))
			if err := l.pushImage(t, rc, repo, "base", base, uploadPostPut); err != nil {
				t.Fatal(err)
			}

			// Writes: every upload mode, and a manifest.
			f.HTTP.Fail(s3test.OpPutObject, fault, -1)
			for mode := range numUploadModes {
				content := randomBytes(96 << 10)
				mustBeUnavailable(t, fmt.Sprintf("a %s push with every PutObject answered %s", mode, fault.Code),
					l.pushBlob(t, rc, repo, content, mode))
			}
			im := newImage(t, "new-"+fault.Code, newLayer(t, "new", 32<<10))
			f.HTTP.Clear()
			for _, b := range append([][]byte{im.Config}, layerBlobs(im)...) {
				if err := l.pushBlob(t, rc, repo, b, uploadMonolithicPost); err != nil {
					t.Fatal(err)
				}
			}
			f.HTTP.Fail(s3test.OpPutObject, fault, -1)
			mustBeUnavailable(t, "a manifest PUT with every PutObject answered "+fault.Code,
				l.putManifest(t, rc, repo, "new", im.Manifest))

			// Reads: a manifest and a blob by GET, a blob by HEAD.
			f.HTTP.Clear()
			f.HTTP.Fail(s3test.OpGetObject, fault, -1)
			_, err := rc.getBlob(repo, base.Layers[0].Digest)
			mustBeUnavailable(t, "GET of a blob with every GetObject answered "+fault.Code, err)
			_, _, err = rc.getManifest(repo, "base")
			mustBeUnavailable(t, "GET of a manifest with every GetObject answered "+fault.Code, err)
			f.HTTP.Clear()
			f.HTTP.Fail(s3test.OpHeadObject, fault, -1)
			_, _, err = rc.do(rc.newRequest("HEAD", "/v2/"+repo+"/blobs/"+base.Layers[0].Digest, nil), http.StatusOK)
			mustBeUnavailable(t, "HEAD of a blob with every HeadObject answered "+fault.Code, err)

			// /readyz's storage check (a HeadObject) names the failure.
			rep := waitReadyz(t, reg.URL(""), http.StatusServiceUnavailable, 10*time.Second, failing("storage", "temporarily unavailable"))
			if r := storageReason(rep); !strings.Contains(r, "StatusCode: "+fmt.Sprint(fault.Status)) {
				t.Errorf("/readyz storage reason %q does not give the store's status %d", r, fault.Status)
			}

			f.HTTP.Clear()
			waitReadyz(t, reg.URL(""), http.StatusOK, 10*time.Second, nil)
			if err := l.pushImage(t, rc, repo, "new", im, uploadChunked); err != nil {
				t.Fatalf("the same push once the store recovered: %v", err)
			}
			for _, b := range l.refused {
				if err := l.pushBlob(t, rc, repo, b.content, uploadChunked); err != nil {
					t.Fatalf("a refused push, again once the store recovered: %v", err)
				}
			}
			l.check(t, rc)
		})
	}
}

func storageReason(rep readyzReport) string {
	for _, c := range rep.Checks {
		if c.Name == "storage" {
			return c.Reason
		}
	}
	return ""
}

// TestS3ChunkedUploadResumesAfterFault sends a chunked upload whose middle
// chunk meets a sick store (503 SlowDown answers, then a connection cut
// mid-body): that PATCH is refused with 503, the session still holds the
// chunks before it, and the client resumes from the offset the registry
// reports to the right digest.
func TestS3ChunkedUploadResumesAfterFault(t *testing.T) {
	t.Parallel()
	_, f, rc := startFaultyRegistry(t)
	l := newLedger()
	const repo = "faults/resume"
	faults := []struct {
		name         string
		inject, heal func()
	}{
		{"SlowDown", func() { f.HTTP.Fail(s3test.OpPutObject, s3test.SlowDown, -1) }, f.HTTP.Clear},
		{"a connection cut mid-body", func() {
			f.TCP.Add(t, s3test.Toxic{Name: "cut", Type: "limit_data", Stream: "upstream", Attributes: map[string]int64{"bytes": 16 << 10}})
		}, func() { f.TCP.Remove(t, "cut") }},
	}
	for _, fault := range faults {
		content := randomBytes(300 << 10)
		chunk := len(content) / 3
		loc, err := rc.startUpload(repo)
		if err != nil {
			t.Fatal(err)
		}
		patch := func(from, to int) (string, error) {
			req := rc.newRequest("PATCH", loc, bytes.NewReader(content[from:to]))
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", from, to-1))
			resp, _, err := rc.do(req, http.StatusAccepted)
			if err != nil {
				return "", err
			}
			return rc.resolve(resp.Header.Get("Location"))
		}
		if loc, err = patch(0, chunk); err != nil {
			t.Fatal(err)
		}
		fault.inject()
		_, err = patch(chunk, 2*chunk)
		mustBeUnavailable(t, "a PATCH meeting "+fault.name, err)
		fault.heal()

		// The client asks where the upload stands and resumes from there.
		resp, _, err := rc.do(rc.newRequest("GET", loc, nil), http.StatusNoContent)
		if err != nil {
			t.Fatal(err)
		}
		var last int
		if _, err := fmt.Sscanf(resp.Header.Get("Range"), "0-%d", &last); err != nil || last+1 != chunk {
			t.Fatalf("after %s the upload holds Range %q, want 0-%d (the chunk before the fault)", fault.name, resp.Header.Get("Range"), chunk-1)
		}
		if loc, err = patch(chunk, len(content)); err != nil {
			t.Fatalf("resuming after %s: %v", fault.name, err)
		}
		dgst := sha256Digest(content)
		if _, _, err := rc.do(rc.newRequest("PUT", withQuery(loc, "digest", dgst), nil), http.StatusCreated); err != nil {
			t.Fatalf("completing the resumed upload: %v", err)
		}
		l.blobs[repo+"@"+dgst] = ackedBlob{repo: repo, ref: dgst, content: content}
	}
	l.check(t, rc)
}

// TestS3TCPFaults drives one registry through Toxiproxy's faults on its S3
// connections in turn (latency, a slow link, connections cut mid-body or reset
// at random, a black hole) while pushing and pulling: every push is a 201 with
// the right content or a 503 UNAVAILABLE, in bounded time; /readyz fails
// during the black hole and recovers after it; at the end a full consistency
// check reads back everything acknowledged.
func TestS3TCPFaults(t *testing.T) {
	t.Parallel()
	reg, f, rc := startFaultyRegistry(t)
	l := newLedger()
	const repo = "faults/tcp"
	n := 0
	image := func() image {
		n++
		return newImage(t, fmt.Sprint("tcp-", n), newLayer(t, "l", 48<<10))
	}

	t.Run("latency", func(t *testing.T) {
		f.TCP.Add(t, s3test.Toxic{Name: "latency", Type: "latency", Attributes: map[string]int64{"latency": 60, "jitter": 20}})
		defer f.TCP.Remove(t, "latency")
		if err := l.pushImage(t, rc, repo, "latency", image(), uploadChunked); err != nil {
			t.Fatalf("a push through 60 ms of latency: %v", err)
		}
	})

	t.Run("a slow link", func(t *testing.T) {
		// 192 KiB at 64 KiB/s: about 3 s of a steady trickle, under a 1 s
		// inactivity timeout.
		big := randomBytes(192 << 10)
		if err := l.pushBlob(t, rc, repo, big, uploadPostPut); err != nil {
			t.Fatal(err)
		}
		f.TCP.Add(t, s3test.Toxic{Name: "slow", Type: "bandwidth", Attributes: map[string]int64{"rate": 64}})
		defer f.TCP.Remove(t, "slow")
		if _, err := rc.getBlob(repo, sha256Digest(big)); err != nil {
			t.Fatalf("a pull over a slow but steady link: %v", err)
		}
	})

	t.Run("connections cut mid-body", func(t *testing.T) {
		f.TCP.Add(t, s3test.Toxic{Name: "cut", Type: "limit_data", Stream: "upstream", Attributes: map[string]int64{"bytes": 24 << 10}})
		defer f.TCP.Remove(t, "cut")
		for mode := range numUploadModes {
			mustBeUnavailable(t, fmt.Sprintf("a %s push of 96 KiB through connections cut after 24 KiB", mode),
				l.pushBlob(t, rc, repo, randomBytes(96<<10), mode))
		}
	})

	t.Run("connections reset at random", func(t *testing.T) {
		f.TCP.Add(t, s3test.Toxic{Name: "reset", Type: "reset_peer", Toxicity: 0.3, Attributes: map[string]int64{"timeout": 20}})
		defer f.TCP.Remove(t, "reset")
		for i := range 6 {
			err := l.pushImage(t, rc, repo, fmt.Sprint("reset-", i), image(), uploadMode(i%int(numUploadModes)))
			if err != nil {
				mustBeUnavailable(t, "a push through random resets", err)
			}
		}
	})

	t.Run("a black hole", func(t *testing.T) {
		f.TCP.Add(t, s3test.Toxic{Name: "blackhole", Type: "timeout", Attributes: map[string]int64{"timeout": 0}})
		mustBeUnavailable(t, "a push into a black hole", l.pushBlob(t, rc, repo, randomBytes(32<<10), uploadMonolithicPost))
		waitReadyz(t, reg.URL(""), http.StatusServiceUnavailable, 10*time.Second, func(r readyzReport) bool {
			return storageReason(r) != ""
		})
		f.TCP.Remove(t, "blackhole")
		waitReadyz(t, reg.URL(""), http.StatusOK, 10*time.Second, nil)
	})

	for _, b := range l.refused {
		if err := l.pushBlob(t, rc, repo, b.content, uploadPostPut); err != nil {
			t.Fatalf("a refused push, again once the faults are gone: %v", err)
		}
	}
	l.check(t, rc)
}
