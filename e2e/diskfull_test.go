package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/tmpfs"
)

// The disk-full tests run the real binaries on a data directory that is a small
// tmpfs of the test's own, fill it with a filler file, and check what a client and
// an operator see: every write is refused at once with 503 UNAVAILABLE, a
// Retry-After and a message that says storage is full; the log says what to do;
// nothing stored before is damaged, nothing half-written becomes visible or stays
// behind; and once the filler is removed, writes succeed again without a restart.

// diskSize is the size of each test's tmpfs: room for a few images and the
// servers' own records.
const diskSize = 8 << 20

// fullDiskLine is what the registry and trustd log for the operator when a write
// finds no space under dir.
func fullDiskLine(dir, what string) string {
	return "storage is full: free space under " + dir + " or grow the volume; " + what + " resume without a restart"
}

// checkOutOfSpace checks that resp, with body, refuses a write for lack of space:
// 503, the UNAVAILABLE code, a Retry-After in seconds, and a message that says so.
func checkOutOfSpace(t *testing.T, what string, resp *http.Response, body []byte, service string) {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("%s on a full disk: %s %s; want 503 UNAVAILABLE", what, resp.Status, body)
		return
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s <= 0 {
		t.Errorf("%s on a full disk: Retry-After %q; want a number of seconds", what, resp.Header.Get("Retry-After"))
	}
	var eb struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if err := json.Unmarshal(body, &eb); err != nil || len(eb.Errors) == 0 {
		t.Errorf("%s on a full disk: body %q is not an error body", what, body)
		return
	}
	e := eb.Errors[0]
	if want := service + " is out of storage space"; e.Code != "UNAVAILABLE" || !strings.Contains(e.Message, want) {
		t.Errorf("%s on a full disk: %s %q; want UNAVAILABLE saying %q", what, e.Code, e.Message, want)
	}
}

// send sends req with a bound on its time (a refusal must come at once, never
// hang) and returns the response with its body read.
func send(t *testing.T, rc *regClient, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	hc := *rc.hc
	hc.Timeout = 30 * time.Second
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// stored is what a registry acknowledged, to check it whole after a fault.
type stored struct {
	blobs     map[string]map[string][]byte // repository → digest → content
	manifests map[string]map[string][]byte // repository → digest → manifest
	tags      map[string]map[string]string // repository → tag → digest
}

func newStored() *stored {
	return &stored{blobs: map[string]map[string][]byte{}, manifests: map[string]map[string][]byte{}, tags: map[string]map[string]string{}}
}

func (s *stored) blob(repo string, content []byte) {
	if s.blobs[repo] == nil {
		s.blobs[repo] = map[string][]byte{}
	}
	s.blobs[repo][sha256Digest(content)] = content
}

func (s *stored) image(repo, tag string, im image) {
	for _, b := range im.blobs() {
		s.blob(repo, b)
	}
	if s.manifests[repo] == nil {
		s.manifests[repo], s.tags[repo] = map[string][]byte{}, map[string]string{}
	}
	s.manifests[repo][im.ManifestDigest] = im.Manifest
	if tag != "" {
		s.tags[repo][tag] = im.ManifestDigest
	}
}

// check reads back through the API every blob, manifest and tag s holds and
// hashes what is served: a full consistency check of what was acknowledged.
func (s *stored) check(t *testing.T, rc *regClient) {
	t.Helper()
	for repo, blobs := range s.blobs {
		for d, content := range blobs {
			got, err := rc.getBlob(repo, d)
			if err != nil {
				t.Errorf("a blob stored before the fault: %v", err)
			} else if !bytes.Equal(got, content) {
				t.Errorf("blob %s of %s: served bytes differ from those pushed", d, repo)
			}
		}
	}
	for repo, manifests := range s.manifests {
		for d, content := range manifests {
			got, hdr, err := rc.getManifest(repo, d)
			if err != nil {
				t.Errorf("a manifest stored before the fault: %v", err)
				continue
			}
			if !bytes.Equal(got, content) || sha256Digest(got) != d || hdr.Get("Docker-Content-Digest") != d {
				t.Errorf("manifest %s of %s: served %s (%d bytes), want the pushed bytes", d, repo, sha256Digest(got), len(got))
			}
		}
		for tag, d := range s.tags[repo] {
			got, _, err := rc.getManifest(repo, tag)
			if err != nil {
				t.Errorf("a tag stored before the fault: %v", err)
			} else if sha256Digest(got) != d {
				t.Errorf("%s:%s resolves to %s, want %s", repo, tag, sha256Digest(got), d)
			}
		}
	}
}

// checkBlobFiles checks the filesystem driver's blob files under data directly:
// each one's content hashes to its name (no partial file became a blob), and the
// driver's temporary directory is empty (no write left a temporary file).
func checkBlobFiles(t *testing.T, data string) {
	t.Helper()
	blobs := filepath.Join(data, "v1", "blobs", "sha256")
	n := 0
	err := filepath.WalkDir(blobs, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != e.Name() {
			t.Errorf("blob file %s holds %d bytes that hash to %x: a partial write became a blob", p, len(b), sum)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no blob files under %s", blobs)
	}
	if left, _ := os.ReadDir(filepath.Join(data, "+tmp")); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", names(left))
	}
}

func names(es []os.DirEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name()
	}
	return out
}

// uploadData lists the upload sessions' data files under data.
func uploadData(t *testing.T, data string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(data, "v1", "uploads"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if strings.HasSuffix(e.Name(), ".data") {
			out = append(out, e.Name())
		}
	}
	return out
}

// diskFullPush is one way of pushing that a full disk must refuse.
type diskFullPush struct {
	name string
	// push sends the refused request(s) for content and returns the last
	// response, with its body.
	push func(t *testing.T, rc *regClient, repo string, content []byte) (*http.Response, []byte)
}

// patchChunk sends content as a PATCH to the session at loc; ranged says whether
// with a Content-Range (a chunk) or without a length (a stream).
func patchChunk(rc *regClient, loc string, start int, content []byte, ranged bool) *http.Request {
	req := rc.newRequest("PATCH", loc, bytes.NewReader(content))
	req.Header.Set("Content-Type", "application/octet-stream")
	if ranged {
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", start, start+len(content)-1))
		req.ContentLength = int64(len(content))
	} else {
		req.ContentLength = -1
	}
	return req
}

var diskFullPushes = []diskFullPush{
	{"a monolithic POST", func(t *testing.T, rc *regClient, repo string, content []byte) (*http.Response, []byte) {
		req := rc.newRequest("POST", withQuery("/v2/"+repo+"/blobs/uploads/", "digest", sha256Digest(content)), bytes.NewReader(content))
		req.Header.Set("Content-Type", "application/octet-stream")
		return send(t, rc, req)
	}},
	{"a POST then a PUT with the body", func(t *testing.T, rc *regClient, repo string, content []byte) (*http.Response, []byte) {
		loc, err := rc.startUpload(repo)
		if err != nil {
			t.Fatal(err)
		}
		return send(t, rc, rc.newRequest("PUT", withQuery(loc, "digest", sha256Digest(content)), bytes.NewReader(content)))
	}},
	{"a chunked PATCH", func(t *testing.T, rc *regClient, repo string, content []byte) (*http.Response, []byte) {
		loc, err := rc.startUpload(repo)
		if err != nil {
			t.Fatal(err)
		}
		return send(t, rc, patchChunk(rc, loc, 0, content, true))
	}},
	{"a streamed PATCH", func(t *testing.T, rc *regClient, repo string, content []byte) (*http.Response, []byte) {
		loc, err := rc.startUpload(repo)
		if err != nil {
			t.Fatal(err)
		}
		return send(t, rc, patchChunk(rc, loc, 0, content, false))
	}},
}

// TestDiskFullRegistry runs the registry on a full disk: every kind of push is
// refused with 503 at once, for blobs small (one whole-object write) and large
// (through an upload session), for manifests and for tags; a push that fills the
// disk mid-write leaves nothing behind; the operator is told what to do; what was
// stored before is whole; and once space is freed, the same pushes succeed, an
// interrupted session resumes where it stood, all without a restart.
func TestDiskFullRegistry(t *testing.T) {
	t.Parallel()
	if reference {
		t.Skip("the reference registry answers a full disk with 500")
	}
	data := tmpfs.Mount(t, diskSize)
	reg := startRegistryOn(t, store{Driver: "filesystem", Data: data})
	rc := newRegClient(reg.Addr)
	const repo = "e2e/diskfull"

	// Before the fault: two images, a blob of its own, and a session that holds
	// its first chunk.
	before := newStored()
	for i, mode := range []uploadMode{uploadMonolithicPost, uploadChunked} {
		im := newImage(t, fmt.Sprint("before-", i), newLayer(t, "f.bin", 300<<10), newLayer(t, "g.bin", 8<<10))
		if err := rc.pushImage(repo, fmt.Sprint("v", i), im, mode); err != nil {
			t.Fatal(err)
		}
		before.image(repo, fmt.Sprint("v", i), im)
	}
	lone := randomBytes(1500 << 10) // past the size the registry writes whole
	if err := rc.pushBlob(repo, lone, uploadPostPut); err != nil {
		t.Fatal(err)
	}
	before.blob(repo, lone)
	resumable := randomBytes(600 << 10)
	session, err := rc.startUpload(repo)
	if err != nil {
		t.Fatal(err)
	}
	resp, _, err := rc.do(patchChunk(rc, session, 0, resumable[:200<<10], true), http.StatusAccepted)
	if err != nil {
		t.Fatal(err)
	}
	if session, err = rc.resolve(resp.Header.Get("Location")); err != nil {
		t.Fatal(err)
	}

	// The blobs of an image whose manifest is pushed on the full disk.
	newImg := newImage(t, "after", newLayer(t, "h.bin", 4<<10))
	for _, b := range newImg.blobs() {
		if err := rc.pushBlob(repo, b, uploadMonolithicPost); err != nil {
			t.Fatal(err)
		}
		before.blob(repo, b)
	}

	filler := tmpfs.Fill(t, data, 0)
	small, large := randomBytes(16<<10), randomBytes(1200<<10)

	t.Run("every blob push is refused at once", func(t *testing.T) {
		for _, p := range diskFullPushes {
			for _, content := range [][]byte{small, large} {
				what := fmt.Sprintf("%s of %d bytes", p.name, len(content))
				resp, body := p.push(t, rc, repo, content)
				checkOutOfSpace(t, what, resp, body, "the registry")
				if code, err := rc.blobStatus(repo, sha256Digest(content)); err != nil || code != http.StatusNotFound {
					t.Errorf("after %s was refused, HEAD on its blob: %d %v; want 404", what, code, err)
				}
			}
		}
	})

	t.Run("the final chunk of a session is refused and the session keeps its bytes", func(t *testing.T) {
		req := patchChunk(rc, session, 200<<10, resumable[200<<10:], true)
		req.Method = "PUT"
		req.URL.RawQuery = "digest=" + sha256Digest(resumable)
		resp, body := send(t, rc, req)
		checkOutOfSpace(t, "the PUT of a final chunk", resp, body, "the registry")
		held, next, err := rc.uploadStatus(session)
		if err != nil {
			t.Fatal(err)
		}
		if held != 200<<10 {
			t.Errorf("the session holds %d bytes after its refused final chunk, want the %d it held before", held, 200<<10)
		}
		session = next
	})

	t.Run("manifest and tag pushes are refused and change nothing", func(t *testing.T) {
		old := before.manifests[repo][before.tags[repo]["v0"]]
		for _, c := range []struct{ what, ref string }{
			{"a manifest PUT by tag", "new"},
			{"a manifest PUT by digest", newImg.ManifestDigest},
			{"a PUT that moves a tag", "v0"},
		} {
			req := rc.newRequest("PUT", "/v2/"+repo+"/manifests/"+c.ref, bytes.NewReader(newImg.Manifest))
			req.Header.Set("Content-Type", mediaTypeOCIManifest)
			resp, body := send(t, rc, req)
			checkOutOfSpace(t, c.what, resp, body, "the registry")
		}
		// A tag for a manifest already stored: only the tag needs writing.
		req := rc.newRequest("PUT", "/v2/"+repo+"/manifests/another", bytes.NewReader(old))
		req.Header.Set("Content-Type", mediaTypeOCIManifest)
		resp, body := send(t, rc, req)
		checkOutOfSpace(t, "a new tag of a stored manifest", resp, body, "the registry")
		for _, ref := range []string{"new", "another", newImg.ManifestDigest} {
			if _, _, err := rc.getManifest(repo, ref); err == nil {
				t.Errorf("manifest %s is served after its PUT was refused", ref)
			}
		}
	})

	t.Run("what was stored before is whole", func(t *testing.T) {
		before.check(t, rc)
		checkBlobFiles(t, data)
	})

	t.Run("the operator is told what to do", func(t *testing.T) {
		if want := fullDiskLine(data, "pushes"); !logSays(reg.log, want) {
			t.Errorf("the log does not say %q; its warnings and errors:\n%s", want, problems(reg.log, 20))
		}
		for _, l := range strings.Split(reg.log.String(), "\n") {
			if strings.Contains(l, `msg="request failed"`) {
				t.Errorf("a refusal for lack of space was logged as a failure: %s", l)
			}
		}
	})

	t.Run("a push that fills the disk mid-write leaves nothing behind", func(t *testing.T) {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		filler = tmpfs.Fill(t, data, 256<<10)
		sessions := uploadData(t, data)
		free := tmpfs.Free(t, data)
		for _, p := range diskFullPushes {
			content := randomBytes(1 << 20)
			resp, body := p.push(t, rc, repo, content)
			checkOutOfSpace(t, p.name+" of more than is free", resp, body, "the registry")
			if got := tmpfs.Free(t, data); got != free {
				t.Errorf("after %s was refused, %d bytes are free, %d before: the partial write was kept", p.name, got, free)
			}
		}
		if got := uploadData(t, data); len(got) != len(sessions) {
			t.Errorf("upload data files %v after the refusals, %v before", got, sessions)
		}
		// What fits is stored: the disk is full, not the registry.
		fits := randomBytes(32 << 10)
		if err := rc.pushBlob(repo, fits, uploadMonolithicPost); err != nil {
			t.Errorf("a blob that fits in the space left: %v", err)
		} else {
			before.blob(repo, fits)
		}
		checkBlobFiles(t, data)
	})

	t.Run("pushes succeed again once space is freed, without a restart", func(t *testing.T) {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		for i, mode := range []uploadMode{uploadMonolithicPost, uploadPostPut, uploadChunked, uploadStreamed} {
			content := randomBytes((i + 1) * 300 << 10)
			if err := rc.pushBlob(repo, content, mode); err != nil {
				t.Errorf("%s after space was freed: %v", mode, err)
			}
			before.blob(repo, content)
		}
		resumeUpload(t, rc, repo, session, resumable, 200<<10)
		before.blob(repo, resumable)
		for _, tag := range []string{"new", "v0"} {
			if err := rc.putManifest(repo, tag, mediaTypeOCIManifest, newImg.Manifest); err != nil {
				t.Fatal(err)
			}
			before.image(repo, tag, newImg)
		}
		before.check(t, rc)
		checkBlobFiles(t, data)
	})
}
