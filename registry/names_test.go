package registry

import (
	"context"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// In an enforced namespace, a name no delegation can ever cover is refused with
// NAME_INVALID at every request, blob uploads first; a name merely not delegated
// yet keeps taking blobs (a signed push uploads them before it publishes).
func TestNamesNoDelegationCanCoverAreRefusedAtTheFirstRequest(t *testing.T) {
	g := newGated(t)
	content := []byte("bytes no manifest could reference")
	d := digest.FromBytes(content)
	manifest := imageManifest(d, d, len(content), len(content))
	refused := []struct {
		name, repo, why string
	}{
		{"a name deeper than any org pattern", "acme/a/b/c/d", "acme/a/b/c/d has 5 components; enforced repositories have at most 4"},
		{"a name of one component", "app", "app has 1 component; enforced repositories have at least 2"},
		{"a first component that is never an org name", "acme--corp/app", "acme--corp/app: its first component"},
	}
	requests := []struct {
		method, path string
		body         []byte
	}{
		{"POST", "/blobs/uploads/", nil},
		{"POST", "/blobs/uploads/?digest=" + d.String(), content},
		{"POST", "/blobs/uploads/?mount=" + d.String() + "&from=acme/app", nil},
		{"PATCH", "/blobs/uploads/some-session", content},
		{"PUT", "/blobs/uploads/some-session?digest=" + d.String(), content},
		{"PUT", "/manifests/v1", manifest},
		{"GET", "/manifests/v1", nil},
		{"HEAD", "/blobs/" + d.String(), nil},
		{"GET", "/tags/list", nil},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			for _, req := range requests {
				h := map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
				r := do(t, g.srv, req.method, "/v2/"+c.repo+req.path, h, req.body)
				if r.status != 400 {
					t.Fatalf("%s %s: %d %s, want 400 NAME_INVALID", req.method, req.path, r.status, r.body)
				}
				if req.method == "HEAD" {
					continue
				}
				if code := errorCode(t, r); code != "NAME_INVALID" || !strings.Contains(string(r.body), c.why) {
					t.Fatalf("%s %s: %s %s, want NAME_INVALID saying %q", req.method, req.path, code, r.body, c.why)
				}
			}
			if _, err := g.store.StatBlob(context.Background(), c.repo, d); err == nil {
				t.Fatalf("a blob was stored under %s", c.repo)
			}
		})
	}
	accepted := []struct{ name, repo string }{
		{"a four-component name not delegated yet", "acme/a/b/c"},
		{"a repository of an org that does not exist yet", "newco/app"},
		{"a deep name in an open namespace", "open/a/b/c/d/e"},
	}
	for _, c := range accepted {
		t.Run(c.name+" takes blobs", func(t *testing.T) {
			if r := do(t, g.srv, "POST", "/v2/"+c.repo+"/blobs/uploads/?digest="+d.String(), nil, content); r.status != 201 {
				t.Fatalf("POST %s: %d %s, want 201", c.repo, r.status, r.body)
			}
		})
	}
}
