package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The signed-transfer tests drive `trustctl push`, `copy`, `verify` and `pull`
// against `trustctl up`, with images made by crane, by docker save, and in Go,
// and tamper with the registry's storage (as a thief of its disk or bucket
// would) to check that each attack is caught with its exit code. They never
// push unsigned content over HTTP into an enforced namespace, so they hold
// whether or not the registry's gate enforces signatures.

// verifyResult is trustctl verify's --output json.
type verifyResult struct {
	Verified  bool   `json:"verified"`
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	Reason    string `json:"reason"`
	Code      int    `json:"code"`
}

// trustctlCode runs trustctl as the admin with extra environment and returns
// its exit code and its stdout, followed by the combined output when it failed.
func (st *stack) trustctlCode(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	tl := &tool{path: trustctlBin, dir: st.Home, env: append([]string{
		"HOME=" + filepath.Dir(st.Home), "PATH=" + os.Getenv("PATH"), "SIGNET_HOME=" + st.Home,
		"SIGNET_PASSPHRASE=" + e2ePassphrase,
	}, env...)}
	out, err := tl.try(args...)
	if err == nil {
		return 0, out
	}
	var ce *cmdError
	var ee *exec.ExitError
	if !errors.As(err, &ce) || !errors.As(ce.err, &ee) {
		t.Fatalf("trustctl %s: %v", strings.Join(args, " "), err)
	}
	return ee.ExitCode(), out + "\n" + ce.out
}

// verifyJSON runs trustctl verify --output json on ref and checks its exit
// code and that the JSON agrees with it.
func (st *stack) verifyJSON(t *testing.T, env []string, ref string, want int) verifyResult {
	t.Helper()
	code, out := st.trustctlCode(t, env, "verify", st.Addr+"/"+ref, "--output", "json")
	if code != want {
		t.Fatalf("trustctl verify %s exited %d, want %d:\n%s", ref, code, want, out)
	}
	var res verifyResult
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&res); err != nil {
		t.Fatalf("trustctl verify --output json printed %q: %v", out, err)
	}
	if res.Code != want || res.Verified != (want == 0) || res.Reference != st.Addr+"/"+ref {
		t.Errorf("verify %s: JSON %+v disagrees with exit code %d", ref, res, want)
	}
	return res
}

// pullCode runs trustctl pull of ref into a new directory and returns the exit
// code, the output and the directory.
func (st *stack) pullCode(t *testing.T, ref string) (int, string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pulled")
	code, out := st.trustctlCode(t, nil, "pull", st.Addr+"/"+ref, dir)
	return code, out, dir
}

// registryData is the registry's filesystem storage of the stack.
func (st *stack) registryData() string {
	return filepath.Join(filepath.Dir(st.Home), "data", "registry", "v1")
}

// layoutBlobs reads every blob of an OCI layout, by digest.
func layoutBlobs(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("layout %s holds a leftover %s", dir, e.Name())
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256Digest(b); got != "sha256:"+e.Name() {
			t.Errorf("layout %s: blob %s hashes to %s", dir, e.Name(), got)
		}
		out["sha256:"+e.Name()] = b
	}
	return out
}

// sameBlobs checks that the pulled layout holds every blob of want.
func sameBlobs(t *testing.T, pulled string, want map[string][]byte) {
	t.Helper()
	got := layoutBlobs(t, pulled)
	for d, b := range want {
		if !bytes.Equal(got[d], b) {
			t.Errorf("the pulled layout lacks %s or holds other bytes for it", d)
		}
	}
	if len(got) != len(want) {
		t.Errorf("the pulled layout holds %d blobs, want %d", len(got), len(want))
	}
}

// writeIndexLayout writes an OCI layout whose root is an index of imgs, one
// platform each.
func writeIndexLayout(t *testing.T, dir, tag string, imgs []image, platforms [][2]string) (indexDigest string) {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	idx := index{SchemaVersion: 2, MediaType: mediaTypeOCIIndex}
	for i, img := range imgs {
		all := img.blobs()
		all[img.ManifestDigest] = img.Manifest
		for d, b := range all {
			if err := os.WriteFile(filepath.Join(blobs, strings.TrimPrefix(d, "sha256:")), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		desc := descriptor{MediaType: mediaTypeOCIManifest, Digest: img.ManifestDigest, Size: int64(len(img.Manifest))}
		desc.Platform = &struct {
			Architecture string `json:"architecture"`
			OS           string `json:"os"`
		}{platforms[i][1], platforms[i][0]}
		idx.Manifests = append(idx.Manifests, desc)
	}
	ib, _ := json.Marshal(idx)
	indexDigest = sha256Digest(ib)
	os.WriteFile(filepath.Join(blobs, strings.TrimPrefix(indexDigest, "sha256:")), ib, 0o644)
	top := index{SchemaVersion: 2, MediaType: mediaTypeOCIIndex, Manifests: []descriptor{{
		MediaType: mediaTypeOCIIndex, Digest: indexDigest, Size: int64(len(ib)),
		Annotations: map[string]string{"org.opencontainers.image.ref.name": tag},
	}}}
	b, _ := json.Marshal(top)
	os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	return indexDigest
}

// pushLayout writes img as a layout and pushes it signed to ref.
func (st *stack) pushLayout(t *testing.T, ref, key string, img image) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	writeOCILayout(t, dir, "", img)
	st.trustctl(t, "push", dir, st.Addr+"/"+ref, "--key", key)
}

// TestSignedPushVerifyPull: `trustctl push` of an OCI layout that crane pulled,
// of a docker save tarball and of a three-platform index; `trustctl verify`
// exits 0 and `trustctl pull` writes a layout with the same blobs.
func TestSignedPushVerifyPull(t *testing.T) {
	t.Parallel()
	st := startStack(t)
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "org", "create", "acme")
	for _, repo := range []string{"acme/app", "acme/docker", "acme/multi"} {
		st.trustctl(t, "org", "delegate", repo, "--key", "alice")
	}

	t.Run("an OCI layout that crane pulled from another registry", func(t *testing.T) {
		plain := startRegistry(t)
		crane := newTool(t, "crane")
		var layers []string
		for i := range 5 {
			p := filepath.Join(t.TempDir(), "layer.tar.gz")
			os.WriteFile(p, newLayer(t, "f"+string(rune('a'+i)), 200<<10).Blob, 0o644)
			layers = append(layers, "-f", p)
		}
		crane.run(t, append([]string{"append", "--oci-empty-base", "-t", plain.Addr + "/src/app:v1"}, layers...)...)
		layout := filepath.Join(t.TempDir(), "oci")
		crane.run(t, "pull", "--format", "oci", plain.Addr+"/src/app:v1", layout)
		want := strings.TrimSpace(crane.run(t, "digest", plain.Addr+"/src/app:v1"))

		out := st.trustctl(t, "push", layout, st.Addr+"/acme/app:v1", "--key", "alice")
		if !strings.Contains(out, "Signed acme/app:v1 as "+want) || !strings.Contains(out, "6 uploaded") {
			t.Errorf("push said %q", out)
		}
		if res := st.verifyJSON(t, nil, "acme/app:v1", 0); res.Digest != want {
			t.Errorf("verify: digest %s, want %s", res.Digest, want)
		}
		code, out, pulled := st.pullCode(t, "acme/app:v1")
		if code != 0 {
			t.Fatalf("pull exited %d: %s", code, out)
		}
		sameBlobs(t, pulled, layoutBlobs(t, layout))
		// crane reads what trustctl pushed, as any client would.
		crane = newTool(t, "crane", "DOCKER_CONFIG="+st.Home)
		if got := strings.TrimSpace(crane.run(t, "digest", st.Addr+"/acme/app:v1")); got != want {
			t.Errorf("crane digest of the pushed image: %s, want %s", got, want)
		}
		// Pushing again uploads nothing.
		if out := st.trustctl(t, "push", layout, st.Addr+"/acme/app:v1", "--key", "alice"); !strings.Contains(out, "0 uploaded") {
			t.Errorf("a second push said %q, want nothing uploaded", out)
		}
	})

	t.Run("a docker save tarball", func(t *testing.T) {
		docker := dockerClient(t)
		rootfs := filepath.Join(t.TempDir(), "rootfs.tar")
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		content := randomBytes(64 << 10)
		tw.WriteHeader(&tar.Header{Name: "app/data.bin", Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg})
		tw.Write(content)
		tw.Close()
		os.WriteFile(rootfs, tb.Bytes(), 0o644)
		name := "signet-e2e/saved:" + localTag()
		docker.run(t, "import", rootfs, name)
		t.Cleanup(func() { docker.try("rmi", name) })
		saved := filepath.Join(t.TempDir(), "saved.tar")
		docker.run(t, "save", "-o", saved, name)

		st.trustctl(t, "push", saved, st.Addr+"/acme/docker:v1", "--key", "alice")
		res := st.verifyJSON(t, nil, "acme/docker:v1", 0)
		code, out, pulled := st.pullCode(t, "acme/docker:v1")
		if code != 0 {
			t.Fatalf("pull exited %d: %s", code, out)
		}
		blobs := layoutBlobs(t, pulled)
		var m manifest
		if err := json.Unmarshal(blobs[res.Digest], &m); err != nil || len(m.Layers) != 1 {
			t.Fatalf("the pulled manifest %s: %s (%v)", res.Digest, blobs[res.Digest], err)
		}
		if got := blobs[m.Layers[0].Digest]; !bytes.Equal(got, tb.Bytes()) {
			t.Errorf("the pulled layer is not the imported rootfs (%d bytes, want %d)", len(got), tb.Len())
		}
		// docker pulls it back from the registry.
		docker.env = append(docker.env, "DOCKER_CONFIG="+st.Home)
		docker.run(t, "pull", st.Addr+"/acme/docker:v1")
		docker.try("rmi", st.Addr+"/acme/docker:v1")
	})

	t.Run("a multi-arch index signs, verifies and pulls as one unit", func(t *testing.T) {
		var imgs []image
		for _, p := range []string{"amd64", "arm64", "s390x"} {
			imgs = append(imgs, newImage(t, "multi-"+p, newLayer(t, p+"/bin", 32<<10)))
		}
		layout := filepath.Join(t.TempDir(), "oci")
		idx := writeIndexLayout(t, layout, "v1", imgs, [][2]string{{"linux", "amd64"}, {"linux", "arm64"}, {"linux", "s390x"}})
		out := st.trustctl(t, "push", layout, st.Addr+"/acme/multi:v1", "--key", "alice", "--output", "json")
		var pr struct {
			Digest string `json:"digest"`
			Signed struct {
				Closure []string `json:"closure"`
			} `json:"signed"`
		}
		if err := json.Unmarshal([]byte(out), &pr); err != nil {
			t.Fatalf("push --output json: %q: %v", out, err)
		}
		if pr.Digest != idx || len(pr.Signed.Closure) != 3 {
			t.Fatalf("push signed %s with closure %v, want %s with the 3 platform manifests", pr.Digest, pr.Signed.Closure, idx)
		}
		for _, img := range imgs {
			if !slices.Contains(pr.Signed.Closure, img.ManifestDigest) {
				t.Errorf("the closure %v lacks %s", pr.Signed.Closure, img.ManifestDigest)
			}
		}
		st.verifyJSON(t, nil, "acme/multi:v1", 0)
		code, out, pulled := st.pullCode(t, "acme/multi:v1")
		if code != 0 {
			t.Fatalf("pull exited %d: %s", code, out)
		}
		sameBlobs(t, pulled, layoutBlobs(t, layout))
		// A child swapped in storage breaks the whole unit.
		child := imgs[1].ManifestDigest
		swapManifest(t, st, "acme/multi", child, imgs[0].Manifest)
		st.verifyJSON(t, nil, "acme/multi:v1", 11)
	})
}

// swapManifest replaces the stored bytes of manifest d of repo by other, as a
// thief of the registry's storage would.
func swapManifest(t *testing.T, st *stack, repo, d string, other []byte) {
	t.Helper()
	p := filepath.Join(st.registryData(), "repos", repo, "_manifests", "sha256", strings.TrimPrefix(d, "sha256:"))
	old, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("the registry's record of %s@%s: %v", repo, d, err)
	}
	mediaType, _, _ := bytes.Cut(old, []byte("\n"))
	if err := os.WriteFile(p, append(append(mediaType, '\n'), other...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSignedTamperCases: each attack on what the registry serves, or on the
// trust graph, is caught by verify or pull with its own exit code.
func TestSignedTamperCases(t *testing.T) {
	t.Parallel()
	st := startStack(t)
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "keys", "generate", "mallory")
	st.trustctl(t, "org", "create", "acme")
	for _, repo := range []string{"acme/app", "acme/other"} {
		st.trustctl(t, "org", "delegate", repo, "--key", "alice")
	}
	st.trustctl(t, "org", "delegate", "acme/gone", "--key", "mallory")

	t.Run("a blob altered in storage: pull exits 11 and keeps nothing of it", func(t *testing.T) {
		img := newImage(t, "blob", newLayer(t, "a", 256<<10), newLayer(t, "b", 1<<10))
		st.pushLayout(t, "acme/app:blob", "alice", img)
		st.verifyJSON(t, nil, "acme/app:blob", 0)
		d := img.Layers[0].Digest
		hex := strings.TrimPrefix(d, "sha256:")
		p := filepath.Join(st.registryData(), "blobs", "sha256", hex[:2], hex)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("the registry's bytes of %s: %v", d, err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, pulled := st.pullCode(t, "acme/app:blob")
		if code != 11 || !strings.Contains(out, d) {
			t.Fatalf("pull of a tampered blob exited %d, want 11 naming %s:\n%s", code, d, out)
		}
		if _, err := os.Stat(filepath.Join(pulled, "blobs", "sha256", hex)); err == nil {
			t.Errorf("the tampered blob was written to the layout")
		}
		if _, err := os.Stat(filepath.Join(pulled, "index.json")); err == nil {
			t.Errorf("a failed pull wrote index.json")
		}
		// verify checks manifests only: the tag is still signed and served as signed.
		st.verifyJSON(t, nil, "acme/app:blob", 0)
	})

	t.Run("a manifest swapped behind a tag: verify exits 11", func(t *testing.T) {
		img := newImage(t, "swap", newLayer(t, "a", 1<<10))
		st.pushLayout(t, "acme/app:swap", "alice", img)
		other := newImage(t, "swapped-in", newLayer(t, "evil", 1<<10))
		swapManifest(t, st, "acme/app", img.ManifestDigest, other.Manifest)
		res := st.verifyJSON(t, nil, "acme/app:swap", 11)
		if !strings.Contains(res.Reason, img.ManifestDigest) {
			t.Errorf("the reason does not name the signed digest: %q", res.Reason)
		}
		code, out, _ := st.pullCode(t, "acme/app:swap")
		if code != 11 {
			t.Errorf("pull exited %d, want 11: %s", code, out)
		}
	})

	img := newImage(t, "v1", newLayer(t, "a", 1<<10))
	st.pushLayout(t, "acme/app:v1", "alice", img)

	t.Run("a signature for the same digest under another repository name is not accepted: 10", func(t *testing.T) {
		st.verifyJSON(t, nil, "acme/other:v1", 10)
		st.verifyJSON(t, nil, "acme/other@"+img.ManifestDigest, 10)
		// Under its own name, the digest is signed by the tag that names it.
		st.verifyJSON(t, nil, "acme/app@"+img.ManifestDigest, 0)
	})

	t.Run("a target signed by an undelegated key: 10", func(t *testing.T) {
		// mallory's key is not delegated for acme/app: trustctl refuses to sign.
		out := st.trustctlFails(t, "push", writeLayout(t, img), st.Addr+"/acme/app:mallory", "--key", "mallory")
		if !strings.Contains(out, "not delegated for acme/app") {
			t.Errorf("push with an undelegated key: %s", out)
		}
		st.verifyJSON(t, nil, "acme/app:mallory", 10)
		// What mallory signed while delegated stops verifying once her key is
		// replaced by alice's.
		st.pushLayout(t, "acme/gone:v1", "mallory", img)
		st.verifyJSON(t, nil, "acme/gone:v1", 0)
		st.trustctl(t, "org", "delegate", "acme/gone", "--key", "alice")
		st.verifyJSON(t, nil, "acme/gone:v1", 10)
	})

	t.Run("a stale timestamp: 12", func(t *testing.T) {
		later := "SIGNET_VERIFY_NOW=" + time.Now().Add(25*time.Hour).UTC().Format(time.RFC3339)
		st.verifyJSON(t, []string{later}, "acme/app:v1", 12)
		st.verifyJSON(t, nil, "acme/app:v1", 0)
	})

	t.Run("trustd unreachable while the registry answers: 13", func(t *testing.T) {
		// The registry, seen through a proxy whose signet.json names a trustd
		// that is down; the consumer pinned the same root for the proxy's name.
		target, _ := url.Parse(st.URL(""))
		rp := httputil.NewSingleHostReverseProxy(target)
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/.well-known/signet.json" {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"trustd":"http://127.0.0.1:1"}`))
				return
			}
			rp.ServeHTTP(w, r)
		}))
		defer proxy.Close()
		host := strings.TrimPrefix(proxy.URL, "http://")
		home := filepath.Join(t.TempDir(), "consumer")
		root, err := os.ReadFile(filepath.Join(st.Home, "trust", st.Addr, "root.json"))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(home, "trust", host), 0o700)
		os.WriteFile(filepath.Join(home, "trust", host, "root.json"), root, 0o600)
		tl := &tool{path: trustctlBin, dir: home, env: []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "SIGNET_HOME=" + home}}
		_, err = tl.try("verify", host+"/acme/app:v1")
		var ce *cmdError
		var ee *exec.ExitError
		if !errors.As(err, &ce) || !errors.As(ce.err, &ee) || ee.ExitCode() != 13 {
			t.Fatalf("verify with trustd down: %v, want exit 13", err)
		}
	})

	t.Run("the whole stack down: 13", func(t *testing.T) {
		st.stop()
		st.verifyJSON(t, nil, "acme/app:v1", 13)
	})
}

// writeLayout writes img as an OCI layout in a new directory and returns it.
func writeLayout(t *testing.T, img image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	writeOCILayout(t, dir, "", img)
	return dir
}
