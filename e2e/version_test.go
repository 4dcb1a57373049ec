package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// The binaries under test are stamped as `make build` stamps them, so what
// `--version` prints is tested on a build made the same way.

// stamp is the version and commit of the checkout, as the Makefile reads them.
var stamp = sync.OnceValues(func() (version, commit string) {
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = ".."
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	return git("describe", "--tags", "--always", "--dirty"), git("rev-parse", "HEAD")
})

// goBuildArgs are the arguments of `go build` of pkg into out, with the
// Makefile's -ldflags.
func goBuildArgs(out, pkg string) []string {
	version, commit := stamp()
	const v = "github.com/signet-oss/signet/internal/version."
	return []string{"build", "-ldflags", "-X " + v + "Version=" + version + " -X " + v + "Commit=" + commit, "-o", out, pkg}
}

func TestVersion(t *testing.T) {
	if reference {
		t.Skip("the reference registry is not Signet's")
	}
	if trustctlErr != nil || trustdErr != nil {
		t.Fatal(trustctlErr, trustdErr)
	}
	version, commit := stamp()
	if commit == "" {
		t.Skip("not a git checkout: nothing was stamped")
	}
	for name, bin := range map[string]string{"registry": registryBin, "trustd": trustdBin, "trustctl": trustctlBin} {
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --version: %v\n%s", name, err, out)
		}
		if want := name + " " + version + " (commit " + commit + ","; !strings.HasPrefix(string(out), want) {
			t.Errorf("%s --version = %q, want it to start %q", name, out, want)
		}
		out, err = exec.Command(bin, "version", "--output", "json").Output()
		if err != nil {
			t.Fatalf("%s version --output json: %v\n%s", name, err, out)
		}
		var got struct{ Program, Version, Commit, GoVersion string }
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s version --output json: %v\n%s", name, err, out)
		}
		if got.Program != name || got.Version != version || got.Commit != commit || !strings.HasPrefix(got.GoVersion, "go") {
			t.Errorf("%s version --output json = %+v, want %s %s %s", name, got, name, version, commit)
		}
	}
}
