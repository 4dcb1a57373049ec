package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The admission tests tell the whole story of the registry's gate (DESIGN.md §3)
// with real clients against an enforcing `trustctl up`: unsigned pushes refused
// and nothing stored, a signed push pulled by every client, tag and repository
// swaps refused, an index admitted as one unit, revocation biting within one
// refresh, and, with the registry and trustd as separate processes, an outage of
// trustd and a flood of unsigned pushes.

// TestGateStory runs issue 6's story on one enforcing stack that refreshes its
// trust metadata every second.
func TestGateStory(t *testing.T) {
	t.Parallel()
	st := startStack(t, "--trust-refresh", "1s")
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "keys", "generate", "bob")
	st.trustctl(t, "org", "create", "acme")
	for _, repo := range []string{"acme/app", "acme/other", "acme/multi"} {
		st.trustctl(t, "org", "delegate", repo, "--key", "alice")
	}
	gateStory(t, st)
}

// Step 9: the conformance suite, no FAIL and no Skip, in an open namespace of an
// enforcing stack with auth on; the rest of the stack stays enforced.
func TestGateConformanceInAnOpenNamespaceWithAuth(t *testing.T) {
	t.Parallel()
	st := startStack(t, "--open", "conformance/**")
	runConformance(t, st.Addr, "OCI_USERNAME=admin", "OCI_PASSWORD="+st.AdminPassword)
	crane := newTool(t, "crane", "DOCKER_CONFIG="+st.Home)
	img := newImage(t, "gate-conformance", newLayer(t, "x.bin", 4<<10))
	if out := crane.mustFail(t, "push", writeLayout(t, img), st.Addr+"/acme/app:v1"); !strings.Contains(out, "DENIED") {
		t.Fatalf("outside the open namespace an unsigned push must be DENIED, got:\n%s", out)
	}
}

func gateStory(t *testing.T, st *stack) {
	admin := st.admin()
	crane := newTool(t, "crane", "DOCKER_CONFIG="+st.Home)
	signedImg := newImage(t, "gate-signed", newLayer(t, "app/signed.bin", 96<<10), newLayer(t, "app/etc.bin", 8<<10))
	unsigned := newImage(t, "gate-unsigned", newLayer(t, "app/unsigned.bin", 64<<10))

	t.Run("2 unsigned pushes by crane and docker are DENIED and nothing is stored", func(t *testing.T) {
		out := crane.mustFail(t, "push", writeLayout(t, unsigned), st.Addr+"/acme/app:v1")
		if !strings.Contains(out, "DENIED") || !strings.Contains(out, unsigned.ManifestDigest) {
			t.Errorf("crane push of an unsigned image: want DENIED naming %s, got:\n%s", unsigned.ManifestDigest, out)
		}

		docker := dockerClient(t)
		docker.env = append(docker.env, "DOCKER_CONFIG="+st.Home)
		name := "signet-e2e/gate:" + localTag()
		docker.run(t, "import", writeRootfs(t), name)
		ref := st.Addr + "/acme/app:v1"
		docker.run(t, "tag", name, ref)
		t.Cleanup(func() { docker.try("rmi", "-f", name, ref) })
		out = docker.mustFail(t, "push", ref)
		if !strings.Contains(strings.ToLower(out), "denied") || !strings.Contains(out, "is not signed for acme/app:v1") {
			t.Errorf("docker push of an unsigned image: want denied, saying it is not signed for acme/app:v1, got:\n%s", out)
		}

		if _, _, err := admin.do(admin.newRequest("GET", "/v2/acme/app/manifests/v1", nil), http.StatusNotFound); err != nil {
			t.Errorf("the refused tag resolves: %v", err)
		}
		if _, _, err := admin.do(admin.newRequest("GET", "/v2/acme/app/manifests/"+unsigned.ManifestDigest, nil), http.StatusNotFound); err != nil {
			t.Errorf("the refused manifest is served by digest: %v", err)
		}
		// Neither push left a manifest record or a tag in the registry's storage.
		for _, dir := range []string{"_manifests", "_tags", "_referrers", "_admitted"} {
			if files := filesUnder(t, filepath.Join(st.registryData(), "repos", "acme", "app", dir)); len(files) > 0 {
				t.Errorf("refused pushes left %s in storage: %v", dir, files)
			}
		}
	})

	var signedLayout string
	t.Run("3 a signed push is admitted and every client pulls it", func(t *testing.T) {
		signedLayout = writeLayout(t, signedImg)
		out := st.trustctl(t, "push", signedLayout, st.Addr+"/acme/app:v1", "--key", "alice")
		if !strings.Contains(out, "Pushed "+st.Addr+"/acme/app:v1") {
			t.Fatalf("trustctl push said:\n%s", out)
		}
		ref := st.Addr + "/acme/app:v1"
		want := signedImg.ManifestDigest

		t.Run("crane", func(t *testing.T) {
			if got := strings.TrimSpace(crane.run(t, "digest", ref)); got != want {
				t.Errorf("crane digest %s, want %s", got, want)
			}
			dir := filepath.Join(t.TempDir(), "oci")
			crane.run(t, "pull", "--format", "oci", ref, dir)
			if got := layoutDigest(t, dir); got != want {
				t.Errorf("crane pull wrote %s, want %s", got, want)
			}
			sameBlobs(t, dir, layoutBlobs(t, signedLayout))
		})
		t.Run("docker", func(t *testing.T) {
			docker := dockerClient(t)
			docker.env = append(docker.env, "DOCKER_CONFIG="+st.Home)
			t.Cleanup(func() { docker.try("rmi", "-f", ref) })
			if out := docker.run(t, "pull", ref); !strings.Contains(out, want) {
				t.Errorf("docker pull did not report %s:\n%s", want, out)
			}
			if id := strings.TrimSpace(docker.run(t, "image", "inspect", "--format", "{{.Id}}", ref)); id != signedImg.ConfigDigest {
				t.Errorf("docker pulled image ID %s, want %s", id, signedImg.ConfigDigest)
			}
		})
		t.Run("skopeo", func(t *testing.T) {
			skopeo := newTool(t, "skopeo")
			policy := filepath.Join(skopeo.dir, "policy.json")
			os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644)
			dir := filepath.Join(t.TempDir(), "oci")
			skopeo.run(t, "--policy", policy, "copy", "--preserve-digests", "--src-tls-verify=false",
				"--src-creds", "admin:"+st.AdminPassword, "docker://"+ref, "oci:"+dir+":v1")
			if got := layoutDigest(t, dir); got != want {
				t.Errorf("skopeo copy wrote %s, want %s", got, want)
			}
		})
		t.Run("regctl", func(t *testing.T) {
			plain := startRegistry(t)
			regctl := newTool(t, "regctl")
			regctl.run(t, "registry", "set", "--tls", "disabled", st.Addr)
			regctl.run(t, "registry", "set", "--tls", "disabled", plain.Addr)
			regctl.runInput(t, st.AdminPassword, "registry", "login", st.Addr, "--user", "admin", "--pass-stdin")
			regctl.run(t, "image", "copy", ref, plain.Addr+"/copied/app:v1")
			if got := strings.TrimSpace(regctl.run(t, "image", "digest", plain.Addr+"/copied/app:v1")); got != want {
				t.Errorf("regctl image copy wrote %s, want %s", got, want)
			}
		})
		t.Run("trustctl verify", func(t *testing.T) {
			if res := st.verifyJSON(t, nil, "acme/app:v1", 0); res.Digest != want {
				t.Errorf("verify: %s, want %s", res.Digest, want)
			}
		})
		t.Run("cosign verify --key", func(t *testing.T) {
			cosign := newTool(t, "cosign", "DOCKER_CONFIG="+st.Home)
			pub := st.exportKey(t, "alice", cosign.dir)
			out := cosign.run(t, "verify", "--key", pub, "--insecure-ignore-tlog", "--offline", "--allow-insecure-registry", ref)
			if !strings.Contains(out, want) {
				t.Errorf("cosign verify printed no payload naming %s:\n%s", want, out)
			}
		})
	})

	t.Run("4 another digest under the signed tag, and the signed image under another repository, are DENIED", func(t *testing.T) {
		other := newImage(t, "gate-swap", newLayer(t, "app/swap.bin", 16<<10))
		out := crane.mustFail(t, "push", writeLayout(t, other), st.Addr+"/acme/app:v1")
		if !strings.Contains(out, "DENIED") || !strings.Contains(out, "the target names "+signedImg.ManifestDigest) {
			t.Errorf("crane push of digest Y under X's tag: want DENIED naming the signed %s, got:\n%s", signedImg.ManifestDigest, out)
		}
		putDenied(t, admin, "acme/app", "v1", other.Manifest, other.ManifestDigest+" is not signed for acme/app:v1")
		putDenied(t, admin, "acme/app", other.ManifestDigest, other.Manifest, other.ManifestDigest+" is not signed for acme/app")

		out = crane.mustFail(t, "copy", st.Addr+"/acme/app:v1", st.Addr+"/acme/other:v1")
		if !strings.Contains(out, "DENIED") || !strings.Contains(out, "not signed for acme/other:v1") {
			t.Errorf("crane copy of the signed image to acme/other: want DENIED, got:\n%s", out)
		}
		putDenied(t, admin, "acme/other", signedImg.ManifestDigest, signedImg.Manifest, "not signed for acme/other")

		if got := manifestDigest(t, admin, "acme/app", "v1"); got != signedImg.ManifestDigest {
			t.Errorf("acme/app:v1 now resolves to %s, want the signed %s", got, signedImg.ManifestDigest)
		}
		for _, path := range []string{"/v2/acme/other/manifests/v1", "/v2/acme/other/manifests/" + signedImg.ManifestDigest} {
			if _, _, err := admin.do(admin.newRequest("GET", path, nil), http.StatusNotFound); err != nil {
				t.Error(err)
			}
		}
		if files := filesUnder(t, filepath.Join(st.registryData(), "repos", "acme", "other", "_manifests")); len(files) > 0 {
			t.Errorf("refused pushes to acme/other left manifests in storage: %v", files)
		}
	})

	t.Run("5 a multi-arch index is admitted with its children as one signed unit", func(t *testing.T) {
		var imgs []image
		for _, arch := range []string{"amd64", "arm64"} {
			imgs = append(imgs, newImage(t, "gate-"+arch, newLayer(t, arch+"/bin", 16<<10)))
		}
		layout := filepath.Join(t.TempDir(), "oci")
		idx := writeIndexLayout(t, layout, "v1", imgs, [][2]string{{"linux", "amd64"}, {"linux", "arm64"}})
		st.trustctl(t, "push", layout, st.Addr+"/acme/multi:v1", "--key", "alice")
		if got := strings.TrimSpace(crane.run(t, "digest", st.Addr+"/acme/multi:v1")); got != idx {
			t.Errorf("acme/multi:v1 resolves to %s, want the index %s", got, idx)
		}
		for i, arch := range []string{"amd64", "arm64"} {
			if got := strings.TrimSpace(crane.run(t, "digest", "--platform", "linux/"+arch, st.Addr+"/acme/multi:v1")); got != imgs[i].ManifestDigest {
				t.Errorf("linux/%s of acme/multi:v1 is %s, want %s", arch, got, imgs[i].ManifestDigest)
			}
			for d := range imgs[i].blobs() {
				if _, err := admin.getBlob("acme/multi", d); err != nil {
					t.Error(err)
				}
			}
		}
		// A manifest outside the signed closure is no child of the unit.
		stray := newImage(t, "gate-stray", newLayer(t, "stray/bin", 1<<10))
		if err := pushBlobs(admin, "acme/multi", stray); err != nil {
			t.Fatal(err)
		}
		putDenied(t, admin, "acme/multi", stray.ManifestDigest, stray.Manifest, "no signed index lists it")
	})

	t.Run("6 the key revoked: the tag stops resolving after a refresh", func(t *testing.T) {
		st.trustctl(t, "org", "delegate", "acme/app", "--key", "bob")
		deadline := time.Now().Add(15 * time.Second)
		for {
			resp, _, err := admin.do(admin.newRequest("GET", "/v2/acme/app/manifests/v1", nil), http.StatusNotFound, http.StatusOK)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode == http.StatusNotFound {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("acme/app:v1 still resolves 15s after alice's key was revoked (refresh interval 1s)")
			}
			time.Sleep(200 * time.Millisecond)
		}
		crane.mustFail(t, "manifest", st.Addr+"/acme/app:v1")
		if _, _, err := admin.do(admin.newRequest("GET", "/v2/acme/app/manifests/"+signedImg.ManifestDigest, nil), http.StatusNotFound); err != nil {
			t.Errorf("the revoked manifest is still served by digest: %v", err)
		}
		// Only acme/app's delegation changed.
		if _, _, err := admin.getManifest("acme/multi", "v1"); err != nil {
			t.Errorf("acme/multi:v1, still signed by a delegated key: %v", err)
		}
	})
}

// TestGateTrustdDown runs the registry and trustd as separate processes (set up
// by one `trustctl up`, then each started on its data directory), with the
// registry reaching trustd through a proxy that counts its metadata fetches:
// a burst of unsigned pushes costs at most two refreshes; with trustd killed,
// admitted content is still pulled while a push that needs a new signature gets
// 503; with trustd back, pushes work again.
func TestGateTrustdDown(t *testing.T) {
	t.Parallel()
	if trustdErr != nil {
		t.Fatal(trustdErr)
	}
	st := startStack(t)
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")
	v1 := newImage(t, "down-v1", newLayer(t, "down/v1.bin", 64<<10))
	st.trustctl(t, "push", writeLayout(t, v1), st.Addr+"/acme/app:v1", "--key", "alice")
	st.stop()

	// The same state, now as two processes on the addresses the login and the
	// pinned root name.
	data := filepath.Join(filepath.Dir(st.Home), "data")
	var acct struct{ Username, Password string }
	readJSON(t, filepath.Join(data, "registry-account.json"), &acct)
	trustdAddr := strings.TrimPrefix(st.Trustd, "http://")
	td := startTrustdOn(t, filepath.Join(data, "trustd"), trustdAddr, st.AdminPassword)
	proxy := newTrustdProxy(t, td.url)
	reg := startRegistryEnv(t, store{Driver: "filesystem", Data: filepath.Join(data, "registry")},
		[]string{"SIGNET_REGISTRY_PASSWORD=" + acct.Password},
		"--addr", st.Addr, "--trustd", proxy.URL,
		"--trust-root", filepath.Join(data, "registry-root.json"), "--trust-user", acct.Username)
	if reg.Addr != st.Addr {
		t.Fatalf("the registry listens on %s, want %s", reg.Addr, st.Addr)
	}
	admin := st.admin()
	if got := manifestDigest(t, admin, "acme/app", "v1"); got != v1.ManifestDigest {
		t.Fatalf("acme/app:v1 after the restart as two processes: %s, want %s", got, v1.ManifestDigest)
	}

	t.Run("8 a burst of 1,000 unsigned manifest PUTs costs at most 2 trust refreshes", func(t *testing.T) {
		img := newImage(t, "burst", newLayer(t, "burst.bin", 1<<10))
		if err := pushBlobs(admin, "acme/app", img); err != nil {
			t.Fatal(err)
		}
		token := st.token(t, "repository:acme/app:pull,push")
		hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1000}}
		const n = 1000
		bodies := make([][]byte, n)
		for i := range bodies {
			var m manifest
			json.Unmarshal(img.Manifest, &m)
			m.Annotations = map[string]string{"burst": fmt.Sprint(i)}
			bodies[i], _ = json.Marshal(m)
		}
		fetches, logged := proxy.timestamps.Load(), strings.Count(reg.log.String(), `reason=miss`)
		var wg sync.WaitGroup
		statuses := make([]int, n)
		start := time.Now()
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("PUT", reg.URL(fmt.Sprintf("/v2/acme/app/manifests/burst-%d", i)), bytes.NewReader(bodies[i]))
				req.Header.Set("Content-Type", mediaTypeOCIManifest)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := hc.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}()
		}
		wg.Wait()
		took := time.Since(start)
		counts := map[int]int{}
		for _, s := range statuses {
			counts[s]++
		}
		if counts[http.StatusForbidden] != n {
			t.Errorf("burst statuses %v, want %d × 403", counts, n)
		}
		refreshes := proxy.timestamps.Load() - fetches
		t.Logf("%d unsigned PUTs in %v: %d timestamp fetches from trustd, %d log lines with reason=miss",
			n, took.Round(time.Millisecond), refreshes, strings.Count(reg.log.String(), `reason=miss`)-logged)
		if refreshes > 2 {
			t.Errorf("the burst cost %d trust refreshes (GET /tuf/timestamp.json), want at most 2", refreshes)
		}
	})

	// Published just before trustd dies: the registry has not seen it yet.
	v2 := newImage(t, "down-v2", newLayer(t, "down/v2.bin", 32<<10))
	v2Layout := writeLayout(t, v2)
	st.trustctl(t, "sign", st.Addr+"/acme/app:v2", "--key", "alice", "--layout", v2Layout)
	pushToken := st.token(t, "repository:acme/app:pull,push")
	td.kill()

	t.Run("7 trustd killed: admitted content is pulled, a push needing a new signature gets 503", func(t *testing.T) {
		// Tokens issued before the outage keep working: crane uses one directly.
		crane := newTool(t, "crane", "DOCKER_CONFIG="+registryTokenConfig(t, st.Addr, pushToken))
		dir := filepath.Join(t.TempDir(), "oci")
		crane.run(t, "pull", "--format", "oci", st.Addr+"/acme/app:v1", dir)
		if got := layoutDigest(t, dir); got != v1.ManifestDigest {
			t.Errorf("crane pull with trustd down wrote %s, want %s", got, v1.ManifestDigest)
		}
		sameBlobs(t, dir, layoutBlobs(t, writeLayout(t, v1)))

		out := crane.mustFail(t, "push", v2Layout, st.Addr+"/acme/app:v2")
		if !strings.Contains(out, "UNAVAILABLE: trust metadata unavailable") || !strings.Contains(out, "retry when the trust service is back") {
			t.Errorf("crane push of a target published before trustd died: want UNAVAILABLE saying to retry when the trust service is back, got:\n%s", out)
		}
		rc := newRegClient(st.Addr)
		rc.hc = &http.Client{Timeout: time.Minute, Transport: staticBearer(pushToken)}
		req := rc.newRequest("PUT", "/v2/acme/app/manifests/v2", bytes.NewReader(v2.Manifest))
		req.Header.Set("Content-Type", mediaTypeOCIManifest)
		if _, body, err := rc.do(req, http.StatusServiceUnavailable); err != nil {
			t.Error(err)
		} else if !strings.Contains(string(body), "UNAVAILABLE") || !strings.Contains(string(body), "trust metadata unavailable") {
			t.Errorf("PUT acme/app:v2 with trustd down: 503 %s, want UNAVAILABLE saying the trust metadata is unavailable", body)
		}

		v3 := newImage(t, "down-v3", newLayer(t, "down/v3.bin", 1<<10))
		code, out := st.trustctlCode(t, nil, "push", writeLayout(t, v3), st.Addr+"/acme/app:v3", "--key", "alice")
		if code != 13 || !strings.Contains(out, "cannot reach trustd") {
			t.Errorf("trustctl push with trustd down exited %d, want 13 (unreachable) saying it cannot reach trustd:\n%s", code, out)
		}
	})

	t.Run("7 trustd back: pushes work again", func(t *testing.T) {
		td = startTrustdOn(t, filepath.Join(data, "trustd"), trustdAddr, st.AdminPassword)
		crane := newTool(t, "crane", "DOCKER_CONFIG="+st.Home)
		crane.run(t, "push", v2Layout, st.Addr+"/acme/app:v2")
		if got := manifestDigest(t, admin, "acme/app", "v2"); got != v2.ManifestDigest {
			t.Errorf("acme/app:v2 resolves to %s, want %s", got, v2.ManifestDigest)
		}
		v3 := newImage(t, "down-v3b", newLayer(t, "down/v3b.bin", 1<<10))
		st.trustctl(t, "push", writeLayout(t, v3), st.Addr+"/acme/app:v3", "--key", "alice")
		if got := manifestDigest(t, admin, "acme/app", "v3"); got != v3.ManifestDigest {
			t.Errorf("acme/app:v3 resolves to %s, want %s", got, v3.ManifestDigest)
		}
	})
}

// trustdProxy forwards to trustd and counts the timestamp fetches, one per trust
// refresh. When trustd is down it drops the connection, as trustd's own closed
// port would.
type trustdProxy struct {
	URL        string
	timestamps atomic.Int64
}

func newTrustdProxy(t *testing.T, trustdURL string) *trustdProxy {
	t.Helper()
	target, err := url.Parse(trustdURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &trustdProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }}
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if conn, _, herr := http.NewResponseController(w).Hijack(); herr == nil {
			conn.Close()
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/timestamp.json") {
			p.timestamps.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// token returns a registry token for scope, issued to the admin by the stack.
func (st *stack) token(t *testing.T, scope string) string {
	t.Helper()
	bt := &bearerTransport{user: "admin", password: st.AdminPassword, tokens: map[string]string{}}
	tok, err := bt.token(map[string]string{"realm": st.URL("/token"), "service": "signet-registry", "scope": scope})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// registryTokenConfig writes a docker config directory whose login for host is
// a registry token, used as is, without a token exchange.
func registryTokenConfig(t *testing.T, host, token string) string {
	t.Helper()
	dir := t.TempDir()
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"registrytoken": token}}})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// putDenied PUTs a manifest and requires 403 DENIED with a message holding want.
func putDenied(t *testing.T, rc *regClient, repo, ref string, body []byte, want string) {
	t.Helper()
	req := rc.newRequest("PUT", "/v2/"+repo+"/manifests/"+ref, bytes.NewReader(body))
	req.Header.Set("Content-Type", mediaTypeOCIManifest)
	_, resp, err := rc.do(req, http.StatusForbidden)
	if err != nil {
		t.Error(err)
		return
	}
	var eb struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(resp, &eb) != nil || len(eb.Errors) != 1 || eb.Errors[0].Code != "DENIED" || !strings.Contains(string(resp), want) {
		t.Errorf("PUT /v2/%s/manifests/%s: 403 %s; want DENIED saying %q", repo, ref, resp, want)
	}
}

// pushBlobs uploads an image's config and layers, which any pusher may.
func pushBlobs(rc *regClient, repo string, img image) error {
	for _, b := range img.blobs() {
		if err := rc.pushBlob(repo, b, uploadMonolithicPost); err != nil {
			return err
		}
	}
	return nil
}

// manifestDigest is the digest of the manifest repo:ref serves.
func manifestDigest(t *testing.T, rc *regClient, repo, ref string) string {
	t.Helper()
	body, _, err := rc.getManifest(repo, ref)
	if err != nil {
		t.Fatal(err)
	}
	return sha256Digest(body)
}

// layoutDigest is the digest of the one manifest an OCI layout's index.json lists.
func layoutDigest(t *testing.T, dir string) string {
	t.Helper()
	var idx index
	readJSON(t, filepath.Join(dir, "index.json"), &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("%s/index.json lists %d manifests, want 1", dir, len(idx.Manifests))
	}
	return idx.Manifests[0].Digest
}

// filesUnder lists the files under dir (none when it does not exist).
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() {
			out = append(out, strings.TrimPrefix(p, dir+"/"))
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// writeRootfs writes a one-file root filesystem tarball for docker import.
func writeRootfs(t *testing.T) string {
	t.Helper()
	l := newLayer(t, "gate/data.bin", 32<<10)
	p := filepath.Join(t.TempDir(), "rootfs.tar.gz")
	if err := os.WriteFile(p, l.Blob, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
