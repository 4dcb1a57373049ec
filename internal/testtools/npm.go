package testtools

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// npm packages the tests drive with node, pinned: an independent TUF client
// walks trustd's repository as any conforming client would.
var npmPackages = map[string]bool{
	"tuf-js@6.0.2": true,
}

// NodeModules returns the node_modules directory in which the pinned npm
// package pkg ("name@version") is installed, installing it first if it is
// missing: into <cache>/npm/<name>@<version>, once, under the cache's file lock.
// npm is installed first if it is missing (Path("npm")).
func NodeModules(pkg string) (string, error) {
	if !npmPackages[pkg] {
		return "", fmt.Errorf("testtools: %q is not a pinned npm package", pkg)
	}
	npm, err := Path("npm")
	if err != nil {
		return "", err
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(pkg, "@"), "@")
	if strings.HasPrefix(pkg, "@") {
		name = "@" + name
	}
	mu.Lock()
	defer mu.Unlock()
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	prefix := filepath.Join(dir, "npm", pkg)
	modules := filepath.Join(prefix, "node_modules")
	// .installed, written once npm succeeded, marks a whole install.
	done := filepath.Join(prefix, ".installed")
	if _, err := os.Stat(done); err == nil {
		return modules, nil
	}
	unlock, err := lockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(done); err == nil {
		return modules, nil
	}
	if err := os.RemoveAll(prefix); err != nil {
		return "", err
	}
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command(npm, "install", "--prefix", prefix, "--no-audit", "--no-fund", "--no-save", "--loglevel=error", pkg)
	cmd.Dir = prefix
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm install %s: %v\n%s", pkg, err, out)
	}
	if _, err := os.Stat(filepath.Join(modules, name, "package.json")); err != nil {
		return "", fmt.Errorf("npm install %s left no %s: %w", pkg, name, err)
	}
	if err := os.WriteFile(done, []byte(pkg+"\n"), 0o644); err != nil {
		return "", err
	}
	return modules, nil
}

// MustNodeModules is NodeModules for tests: it fails tb when the package
// cannot be had.
func MustNodeModules(tb interface {
	Helper()
	Fatalf(string, ...any)
}, pkg string) string {
	tb.Helper()
	p, err := NodeModules(pkg)
	if err != nil {
		tb.Fatalf("installing %s: %v", pkg, err)
	}
	return p
}
