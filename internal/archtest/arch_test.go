// Package archtest holds the test that keeps Signet's layers apart: the
// dependency rules of ARCHITECTURE.md §1, checked against what each package
// really links (go list), so a change that breaks one fails `make test`.
package archtest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/signet-oss/signet/"

// rules: a package under the first path (or the package itself) must not link
// any package under the paths listed after it, but those of allowed.
var rules = []struct {
	pkg       string
	forbidden []string
	allowed   []string
}{
	{"registry", []string{"trustd", "client", "cmd"}, nil},
	{"trustd", []string{"registry", "client", "cmd", "verify", "signer"}, nil},
	// trustd/api is the management API's wire types, which link nothing of the servers.
	{"client", []string{"registry", "trustd", "storage", "audit/auditlog", "cmd"}, []string{"trustd/api"}},
	// The web UI is a client of both servers, mounted by the programs that serve it.
	{"ui", []string{"registry", "trustd", "storage", "audit/auditlog", "cmd"}, []string{"trustd/api"}},
	{"trustd/api", []string{"registry", "trustd/directory", "trustd/tuf", "storage", "audit", "verify", "signer", "tokenauth", "internal", "cmd"}, nil},
	{"storage", []string{"registry", "trustd", "client", "verify", "signer", "tokenauth", "audit", "cmd"}, nil},
	// verify checks the cosign format signer writes, so it reads it from signer; never the reverse.
	{"verify", []string{"registry", "trustd", "client", "storage", "cmd"}, nil},
	{"signer", []string{"registry", "trustd", "client", "storage", "verify", "cmd"}, nil},
	{"tokenauth", []string{"registry", "trustd", "client", "storage", "verify", "signer", "cmd"}, nil},
	{"audit", []string{"registry", "trustd", "client", "verify", "signer", "cmd"}, nil},
	{"reference", []string{"registry", "trustd", "client", "storage", "verify", "signer", "tokenauth", "audit", "trustnames", "internal", "cmd"}, nil},
	{"trustnames", []string{"registry", "trustd", "client", "storage", "verify", "signer", "tokenauth", "audit", "internal", "cmd"}, nil},
	// policy is read by trustd (to validate), the registry and the client (to enforce): a leaf.
	{"policy", []string{"registry", "trustd", "client", "storage", "verify", "signer", "tokenauth", "audit", "trustnames", "internal", "cmd"}, nil},
}

// exact lists packages held to stricter rules than their directory: the audit
// log's records are read by clients, so they link no storage.
var exact = []struct {
	pkg       string
	forbidden []string
}{
	{"audit", []string{"storage"}},
}

// under reports whether path (relative to the module) is dir or inside it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

func TestLayersLinkOnlyWhatTheArchitectureAllows(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, module+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, ok := strings.CutPrefix(fields[0], module)
		if !ok {
			continue
		}
		for _, d := range fields[1:] {
			if rel, ok := strings.CutPrefix(d, module); ok {
				deps[pkg] = append(deps[pkg], rel)
			}
		}
	}
	if len(deps) < 20 {
		t.Fatalf("go list named %d of the module's packages; want them all", len(deps))
	}
	check := func(pkg string, forbidden, allowed []string) {
		for _, d := range deps[pkg] {
			for _, f := range forbidden {
				if under(d, f) && !slices.ContainsFunc(allowed, func(a string) bool { return under(d, a) }) {
					t.Errorf("%s links %s, which it must not (ARCHITECTURE.md §1)", pkg, d)
				}
			}
		}
	}
	checked := 0
	for pkg := range deps {
		for _, r := range rules {
			if under(pkg, r.pkg) {
				check(pkg, r.forbidden, r.allowed)
				checked++
			}
		}
	}
	for _, r := range exact {
		if _, ok := deps[r.pkg]; !ok {
			t.Errorf("no package %s to check", r.pkg)
		}
		check(r.pkg, r.forbidden, nil)
	}
	if checked < 20 {
		t.Errorf("only %d packages fell under a rule", checked)
	}
}

// heavy are what verify must not link: sigstore-go and the Rekor and OpenAPI
// clients it brings. verify checks a Sigstore bundle for its key alone, which
// needs none of them, and trustctl links verify: with sigstore-go, trustctl
// linked 745 packages (493 without), weighed 47 MB (28) and took about 25 ms
// to print its help (15), govalidator compiling its regular expressions at
// init, of the 50 ms `trustctl verify` may take.
var heavy = []string{
	"github.com/sigstore/sigstore-go",
	"github.com/sigstore/rekor",
	"github.com/sigstore/rekor-tiles",
	"github.com/go-openapi",
	"github.com/asaskevich/govalidator",
}

func TestVerifyLinksNoTransparencyLogClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", module+"verify").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, module+"verify") {
		t.Fatalf("go list named no verify among %d packages", len(deps))
	}
	for _, d := range deps {
		for _, h := range heavy {
			if under(d, h) {
				t.Errorf("verify links %s, which it must not: trustctl would carry a transparency log client it never uses", d)
			}
		}
	}
}
