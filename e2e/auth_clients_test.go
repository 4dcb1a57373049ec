package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAuthClients: crane, oras, regctl, skopeo and docker each log in with their own
// login command as a publisher of acme, push, and pull back the same content, against
// one `trustctl up`.
func TestAuthClients(t *testing.T) {
	t.Parallel()
	st := startStack(t, openAll...)
	password := st.addUser(t, "pub", "acme", "publisher")
	admin := st.admin()

	t.Run("crane", func(t *testing.T) {
		t.Parallel()
		crane := newTool(t, "crane")
		crane.runInput(t, password, "auth", "login", st.Addr, "-u", "pub", "--password-stdin")
		l := newLayer(t, "c/one.bin", 64<<10)
		layerPath := filepath.Join(t.TempDir(), "layer.tar.gz")
		os.WriteFile(layerPath, l.Blob, 0o644)
		ref := st.Addr + "/acme/crane:v1"
		crane.run(t, "append", "--oci-empty-base", "-f", layerPath, "-t", ref)
		dgst := strings.TrimSpace(crane.run(t, "digest", ref))
		body, _, err := admin.getManifest("acme/crane", "v1")
		if err != nil {
			t.Fatal(err)
		}
		if sha256Digest(body) != dgst {
			t.Fatalf("crane digest %s, the registry stores %s", dgst, sha256Digest(body))
		}
		tarball := filepath.Join(t.TempDir(), "img.tar")
		crane.run(t, "pull", ref, tarball)
		checkTarLayers(t, readTar(t, tarball), image{Layers: []layer{l}})
	})

	t.Run("oras", func(t *testing.T) {
		t.Parallel()
		oras := newTool(t, "oras")
		oras.runInput(t, password, "login", "--plain-http", "-u", "pub", "--password-stdin", st.Addr)
		content := randomBytes(100 << 10)
		os.WriteFile(filepath.Join(oras.dir, "file.bin"), content, 0o644)
		ref := st.Addr + "/acme/oras:v1"
		out := oras.run(t, "push", "--plain-http", "--format", "json", ref, "file.bin")
		var desc descriptor
		if err := json.Unmarshal([]byte(out), &desc); err != nil || desc.Digest == "" {
			t.Fatalf("oras push --format json: %v\n%s", err, out)
		}
		if body, _, err := admin.getManifest("acme/oras", "v1"); err != nil || sha256Digest(body) != desc.Digest {
			t.Fatalf("oras pushed %s; the registry: %v", desc.Digest, err)
		}
		dir := t.TempDir()
		oras.run(t, "pull", "--plain-http", "-o", dir, ref)
		if got, err := os.ReadFile(filepath.Join(dir, "file.bin")); err != nil || !bytes.Equal(got, content) {
			t.Fatalf("oras pulled different bytes (%v)", err)
		}
	})

	t.Run("regctl", func(t *testing.T) {
		t.Parallel()
		regctl := newTool(t, "regctl")
		regctl.run(t, "registry", "set", "--tls", "disabled", st.Addr)
		regctl.runInput(t, password, "registry", "login", "-u", "pub", "--pass-stdin", st.Addr)
		img := newImage(t, "regctl-auth", newLayer(t, "g/one.bin", 64<<10))
		layout := filepath.Join(t.TempDir(), "layout")
		writeOCILayout(t, layout, "v1", img)
		ref := st.Addr + "/acme/regctl:v1"
		regctl.run(t, "image", "copy", "ocidir://"+layout+":v1", ref)
		if body, _, err := admin.getManifest("acme/regctl", "v1"); err != nil || !bytes.Equal(body, img.Manifest) {
			t.Fatalf("the registry does not hold regctl's manifest: %v", err)
		}
		if got := strings.TrimSpace(regctl.run(t, "image", "digest", ref)); got != img.ManifestDigest {
			t.Fatalf("regctl image digest %s, want %s", got, img.ManifestDigest)
		}
		for d, want := range img.blobs() {
			if got := regctl.run(t, "blob", "get", st.Addr+"/acme/regctl", d); got != string(want) {
				t.Errorf("regctl blob get %s: %d bytes, want %d", d, len(got), len(want))
			}
		}
	})

	t.Run("skopeo", func(t *testing.T) {
		t.Parallel()
		skopeo := newTool(t, "skopeo")
		policy := filepath.Join(skopeo.dir, "policy.json")
		os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644)
		regConf := filepath.Join(skopeo.dir, "registries.conf")
		os.WriteFile(regConf, []byte("unqualified-search-registries = []\n"), 0o644)
		skopeo.env = append(skopeo.env, "CONTAINERS_REGISTRIES_CONF="+regConf,
			"REGISTRY_AUTH_FILE="+filepath.Join(skopeo.dir, "auth.json"))
		skopeo.runInput(t, password, "login", "--tls-verify=false", "-u", "pub", "--password-stdin", st.Addr)
		img := newImage(t, "skopeo-auth", newLayer(t, "k/one.bin", 64<<10))
		layout := filepath.Join(t.TempDir(), "layout")
		writeOCILayout(t, layout, "v1", img)
		ref := "docker://" + st.Addr + "/acme/skopeo:v1"
		skopeo.run(t, "--policy", policy, "copy", "--preserve-digests", "--dest-tls-verify=false", "oci:"+layout+":v1", ref)
		if body, _, err := admin.getManifest("acme/skopeo", "v1"); err != nil || !bytes.Equal(body, img.Manifest) {
			t.Fatalf("the registry does not hold skopeo's manifest: %v", err)
		}
		back := filepath.Join(t.TempDir(), "back")
		skopeo.run(t, "--policy", policy, "copy", "--preserve-digests", "--src-tls-verify=false", ref, "oci:"+back+":v1")
		for d, want := range img.blobs() {
			got, err := os.ReadFile(filepath.Join(back, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("pulled blob %s differs (%v)", d, err)
			}
		}
	})

	t.Run("docker", func(t *testing.T) {
		t.Parallel()
		docker := dockerClient(t)
		// docker needs an image to push: crane, with the admin login trustctl up
		// left in SIGNET_HOME (DOCKER_CONFIG=$SIGNET_HOME, as up suggests), pulls
		// one into a tarball for docker load.
		img := newImage(t, "docker-auth", newLayer(t, "d/one.bin", 64<<10))
		if err := admin.pushImage("acme/docker-src", "v1", img, uploadMonolithicPost); err != nil {
			t.Fatal(err)
		}
		crane := newTool(t, "crane", "DOCKER_CONFIG="+st.Home)
		tarball := filepath.Join(t.TempDir(), "img.tar")
		srcRef := st.Addr + "/acme/docker-src:v1"
		crane.run(t, "pull", srcRef, tarball)
		ref := st.Addr + "/acme/docker:v1"
		t.Cleanup(func() { docker.try("rmi", "-f", srcRef, ref) })
		docker.run(t, "load", "-i", tarball)
		docker.runInput(t, password, "login", "-u", "pub", "--password-stdin", st.Addr)
		docker.run(t, "tag", srcRef, ref)
		out := docker.run(t, "push", ref)
		m := regexp.MustCompile(`digest: (sha256:[0-9a-f]{64})`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("docker push printed no digest:\n%s", out)
		}
		if body, _, err := admin.getManifest("acme/docker", "v1"); err != nil || sha256Digest(body) != m[1] {
			t.Fatalf("docker pushed %s; the registry: %v", m[1], err)
		}
		docker.run(t, "rmi", ref, srcRef)
		docker.run(t, "pull", ref)
		if id := strings.TrimSpace(docker.run(t, "image", "inspect", "--format", "{{.Id}}", ref)); id != img.ConfigDigest {
			t.Fatalf("pulled image ID %s, want %s", id, img.ConfigDigest)
		}
	})
}

// TestTrustctlLogin: `trustctl login` keeps a refresh token in docker's config (or
// behind its credential helper) that crane and oras then use, keeps no password
// anywhere, and trustctl refuses with a clear message what the user may not do.
func TestTrustctlLogin(t *testing.T) {
	t.Parallel()
	st := startStack(t, openAll...)
	password := st.addUser(t, "alice", "acme", "publisher")

	for _, c := range []struct {
		name   string
		config string // docker config.json before login
	}{
		{"inline in config.json", `{}`},
		{"through the credential helper credsStore names", `{"credsStore":"e2e"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			dockerConfig := filepath.Join(dir, "docker")
			home := filepath.Join(dir, "signet")
			os.MkdirAll(dockerConfig, 0o700)
			os.WriteFile(filepath.Join(dockerConfig, "config.json"), []byte(c.config), 0o600)
			bin, helperStore := fakeCredentialHelper(t, "e2e")
			path := bin + string(os.PathListSeparator) + os.Getenv("PATH")
			env := []string{"DOCKER_CONFIG=" + dockerConfig, "PATH=" + path}
			ctl := &tool{path: trustctlBin, dir: dir, env: append([]string{"HOME=" + dir, "SIGNET_HOME=" + home}, env...)}
			out := ctl.runInput(t, password+"\n", "login", st.Addr, "-u", "alice", "--password-stdin", "--output", "json")
			var res struct{ Registry, Trustd, User string }
			if err := json.Unmarshal([]byte(out), &res); err != nil || res.Registry != st.Addr || res.Trustd != st.Trustd {
				t.Fatalf("trustctl login --output json: %v\n%s", err, out)
			}
			for _, f := range []string{filepath.Join(dockerConfig, "config.json"), filepath.Join(home, "config.json")} {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(b), password) {
					t.Errorf("%s holds the password", f)
				}
				if fi, _ := os.Stat(f); fi.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
				}
			}
			docker, _ := os.ReadFile(filepath.Join(dockerConfig, "config.json"))
			helperHolds, _ := os.ReadFile(filepath.Join(helperStore, strings.NewReplacer(":", "_", "/", "_").Replace(st.Addr)))
			if strings.Contains(c.config, "credsStore") {
				if strings.Contains(string(docker), "identitytoken") || !strings.Contains(string(helperHolds), `"Secret"`) {
					t.Fatalf("the token is not (only) in the helper: config %s, helper %s", docker, helperHolds)
				}
			} else if !strings.Contains(string(docker), "identitytoken") {
				t.Fatalf("docker config holds no identity token:\n%s", docker)
			}

			crane := newTool(t, "crane", env...)
			l := newLayer(t, "t/one.bin", 16<<10)
			layerPath := filepath.Join(t.TempDir(), "layer.tar.gz")
			os.WriteFile(layerPath, l.Blob, 0o644)
			ref := st.Addr + "/acme/login-" + strings.Fields(c.name)[0] + ":v1"
			crane.run(t, "append", "--oci-empty-base", "-f", layerPath, "-t", ref)
			dgst := strings.TrimSpace(crane.run(t, "digest", ref))
			oras := newTool(t, "oras", env...)
			if raw := oras.run(t, "manifest", "fetch", "--plain-http", ref); sha256Digest([]byte(raw)) != dgst {
				t.Fatalf("oras fetched a manifest hashing to %s, crane pushed %s", sha256Digest([]byte(raw)), dgst)
			}

			// alice is a publisher, not an owner: trustd refuses, and trustctl says why.
			_, err := ctl.tryInput("", "org", "add-member", "acme", "bob", "--role", "reader")
			if err == nil || !strings.Contains(err.Error(), "lacks the right") {
				t.Errorf("a publisher adding a member: %v, want a refusal that says the account lacks the right", err)
			}
		})
	}
}

// fakeCredentialHelper writes docker-credential-<name>, a shell script speaking the
// credential helper protocol over files in a directory, and returns the directory
// to put on PATH and the store directory.
func fakeCredentialHelper(t *testing.T, name string) (bin, store string) {
	t.Helper()
	bin, store = t.TempDir(), t.TempDir()
	script := `#!/bin/sh
store=` + store + `
key() { tr ':/' '__'; }
case "$1" in
store) in=$(cat); url=$(printf '%s' "$in" | sed -e 's/.*"ServerURL":"\([^"]*\)".*/\1/'); printf '%s' "$in" > "$store/$(printf '%s' "$url" | key)" ;;
get) url=$(cat); f="$store/$(printf '%s' "$url" | key)"; if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) url=$(cat); rm -f "$store/$(printf '%s' "$url" | key)" ;;
list) echo '{}' ;;
*) exit 1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-"+name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, store
}
