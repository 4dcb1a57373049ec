// Package testtools installs the real third-party programs that Signet's end-to-end
// tests and benchmarks drive (crane, oras, regctl, cosign v2 and v3, notation, skopeo,
// dockerd, the OCI conformance suite, the reference registry) into a cache outside the
// checkout, so a clean CI run installs them once and a rerun finds them.
//
// The cache is $SIGNET_TOOLS_DIR, else $XDG_CACHE_HOME/signet/tools, else
// ~/.cache/signet/tools. Installs are serialised across processes with a file lock,
// since test packages run in parallel. A missing tool is installed, never skipped.
package testtools

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Go-installed tools, pinned.
var goTools = map[string]string{
	"crane":  "github.com/google/go-containerregistry/cmd/crane@v0.22.1",
	"oras":   "oras.land/oras/cmd/oras@v1.3.6",
	"regctl": "github.com/regclient/regclient/cmd/regctl@v0.11.7",
	"cosign": "github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5",
	// cosign v3, which writes Sigstore bundles as OCI referrers, installed as
	// "cosign" and renamed so it never shadows v2.
	"cosign3": "github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3",
	// A real S3 server (posix backend) for the s3 storage driver's tests.
	"versitygw": "github.com/versity/versitygw/cmd/versitygw@v1.8.0",
	// A TCP fault injector (latency, bandwidth, resets, black holes) between
	// the s3 driver and that server, driven over its HTTP API.
	"toxiproxy-server": "github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0",
	// The reference registry (CNCF Distribution), installed as "registry" and
	// renamed so it never shadows Signet's own binary.
	"distribution-registry": "github.com/distribution/distribution/v3/cmd/registry@v3.1.2",
}

// ConformanceModule is the OCI conformance suite, built from its module source.
const ConformanceModule = "github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111"

// NotationModule is the notation CLI (Notary Project). Its go.mod has replace
// directives, so the module proxy refuses `go install notation@version`: it is
// built from its module source, as the conformance suite is.
const NotationModule = "github.com/notaryproject/notation@v1.3.2"

// Tools built from a downloaded module's source: the module and the package
// inside it ("." for the module's root).
var moduleTools = map[string]struct{ module, pkg string }{
	"oci-conformance": {ConformanceModule, "."},
	"notation":        {NotationModule, "./cmd/notation"},
}

// Debian packages that provide a tool, and the path the package installs it at.
var aptTools = map[string]struct{ pkg, path string }{
	"skopeo":  {"skopeo", "/usr/bin/skopeo"},
	"dockerd": {"docker.io", "/usr/sbin/dockerd"},
	"docker":  {"docker.io", "/usr/bin/docker"},
	// node runs the independent TUF client (tuf-js); npm installs it.
	"node": {"nodejs", "/usr/bin/node"},
	"npm":  {"npm", "/usr/bin/npm"},
	// SoftHSM2, a PKCS#11 token in files: its tool and the module it loads.
	// chromium drives the web UI as a real browser does (headless).
	"chromium":       {"chromium", "/usr/bin/chromium"},
	"softhsm2-util":  {"softhsm2", "/usr/bin/softhsm2-util"},
	"libsofthsm2.so": {"softhsm2", "/usr/lib/softhsm/libsofthsm2.so"},
}

var mu sync.Mutex

// Dir returns the cache directory, creating it.
func Dir() (string, error) {
	dir := os.Getenv("SIGNET_TOOLS_DIR")
	if dir == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("tools cache: %w", err)
			}
			base = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(base, "signet", "tools")
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return "", fmt.Errorf("tools cache: %w", err)
	}
	return dir, nil
}

// Path returns the path of the named tool, installing it first if it is missing.
// Names: crane, oras, regctl, cosign, cosign3, versitygw, toxiproxy-server,
// distribution-registry, oci-conformance, notation, skopeo, dockerd, docker, node,
// npm, chromium, softhsm2-util, libsofthsm2.so.
func Path(name string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	if t, ok := aptTools[name]; ok {
		if _, err := os.Stat(t.path); err == nil {
			return t.path, nil
		}
		unlock, err := lockFile(filepath.Join(dir, ".lock"))
		if err != nil {
			return "", err
		}
		defer unlock()
		if _, err := os.Stat(t.path); err == nil {
			return t.path, nil
		}
		if err := aptInstall(t.pkg); err != nil {
			return "", err
		}
		return t.path, nil
	}
	bin := filepath.Join(dir, "bin", name)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	unlock, err := lockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	switch {
	case moduleTools[name].module != "":
		err = buildModule(moduleTools[name].module, moduleTools[name].pkg, bin)
	case goTools[name] != "":
		err = goInstall(dir, goTools[name], bin)
	default:
		return "", fmt.Errorf("testtools: unknown tool %q", name)
	}
	if err != nil {
		return "", err
	}
	return bin, nil
}

// MustPath is Path for tests and benchmarks: it fails tb when the tool cannot be had.
func MustPath(tb interface {
	Helper()
	Fatalf(string, ...any)
}, name string) string {
	tb.Helper()
	p, err := Path(name)
	if err != nil {
		tb.Fatalf("installing %s: %v", name, err)
	}
	return p
}

func goInstall(dir, pkg, bin string) error {
	tmp, err := os.MkdirTemp(dir, "install-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "install", pkg)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go install %s: %v\n%s", pkg, err, out)
	}
	base := pkg[strings.LastIndex(pkg, "/")+1 : strings.LastIndex(pkg, "@")]
	return os.Rename(filepath.Join(tmp, base), bin)
}

// buildModule downloads module and builds its package pkg as bin, with the
// module's own go.mod and go.sum (and their replace directives).
func buildModule(module, pkg, bin string) error {
	out, err := exec.Command("go", "mod", "download", "-json", module).Output()
	if err != nil {
		return fmt.Errorf("go mod download %s: %v", module, err)
	}
	var src string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, `"Dir": "`); ok {
			src = strings.TrimSuffix(v, `",`)
		}
	}
	if src == "" {
		return fmt.Errorf("go mod download %s: no source directory in %s", module, out)
	}
	tmp := bin + ".tmp"
	cmd := exec.Command("go", "build", "-buildvcs=false", "-o", tmp, pkg)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s from %s: %v\n%s", pkg, module, err, out)
	}
	return os.Rename(tmp, bin)
}

func aptInstall(pkg string) error {
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	install := exec.Command("apt-get", "install", "-y", "--no-install-recommends", pkg)
	install.Env = env
	if _, err := install.CombinedOutput(); err == nil {
		return nil
	}
	update := exec.Command("apt-get", "update")
	update.Env = env
	if out, err := update.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %v\n%s", err, out)
	}
	install = exec.Command("apt-get", "install", "-y", "--no-install-recommends", pkg)
	install.Env = env
	if out, err := install.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install %s: %v\n%s", pkg, err, out)
	}
	return nil
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
