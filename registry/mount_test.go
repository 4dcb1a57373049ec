package registry

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// newAuthGated is newAuthServer with the gate on, every repository enforced but
// open/**, in front of a trust graph in which org acme delegates acme/app.
func newAuthGated(t *testing.T) *authServer {
	t.Helper()
	g, issuer := newTokenGated(t, false)
	return &authServer{srv: g.srv, issuer: issuer}
}

// sameUploadAnswer fails t unless a and b are both a plain upload's 202 with
// the same headers (but the session's own ID) and body.
func sameUploadAnswer(t *testing.T, a, b response, repo string) {
	t.Helper()
	for _, r := range []response{a, b} {
		if r.status != http.StatusAccepted || !strings.HasPrefix(r.header.Get("Location"), "/v2/"+repo+"/blobs/uploads/") {
			t.Fatalf("%d Location %q %s, want 202 with a new session of %s", r.status, r.header.Get("Location"), r.body, repo)
		}
		if ch := r.header.Get("WWW-Authenticate"); ch != "" {
			t.Fatalf("a plain upload carries a challenge: %q", ch)
		}
	}
	keys := func(h http.Header) []string {
		var out []string
		for k := range h {
			if k != "Date" && k != "X-Request-Id" {
				out = append(out, k+": "+strings.Join(h.Values(k), ","))
			}
		}
		slices.Sort(out)
		return out
	}
	ka, kb := keys(a.header), keys(b.header)
	for i := range ka {
		if strings.HasPrefix(ka[i], "Location:") || strings.HasPrefix(ka[i], "Docker-Upload-Uuid:") {
			ka[i], kb[i] = ka[i][:strings.Index(ka[i], ":")], kb[i][:strings.Index(kb[i], ":")]
		}
	}
	if !slices.Equal(ka, kb) || string(a.body) != string(b.body) {
		t.Fatalf("the answers differ:\n%q %q\n%q %q", ka, a.body, kb, b.body)
	}
}

func TestAMountWithoutFromNamesNoOtherRepository(t *testing.T) {
	for _, gated := range []bool{false, true} {
		name := map[bool]string{false: "without a gate", true: "in an enforced namespace"}[gated]
		t.Run(name, func(t *testing.T) {
			a := newAuthServer(t)
			if gated {
				a = newAuthGated(t)
			}
			secret := []byte("a blob of a repository the robot may not read")
			owner := a.token(t, "signet-registry", repoAccess("acme/hidden-project", "pull", "push"))
			d := pushBlobAuth(t, a.srv, "acme/hidden-project", secret, bearer(owner))
			missing := digest.FromString("stored nowhere")

			robot := bearer(a.token(t, "signet-registry", repoAccess("acme/app", "pull", "push")))
			present := do(t, a.srv, "POST", "/v2/acme/app/blobs/uploads/?mount="+d.String(), robot, nil)
			absent := do(t, a.srv, "POST", "/v2/acme/app/blobs/uploads/?mount="+missing.String(), robot, nil)
			if strings.Contains(string(present.body)+present.header.Get("WWW-Authenticate"), "hidden-project") {
				t.Fatalf("the answer names the repository holding the blob: %q %s", present.header.Get("WWW-Authenticate"), present.body)
			}
			sameUploadAnswer(t, present, absent, "acme/app")
			if r := do(t, a.srv, "HEAD", "/v2/acme/app/blobs/"+d.String(), robot, nil); r.status != 404 {
				t.Fatalf("the blob leaked into acme/app: HEAD %d", r.status)
			}

			// Named, a source the token was asked about and refused: the same.
			asked := bearer(a.token(t, "signet-registry", repoAccess("acme/app", "pull", "push"), repoAccess("acme/hidden-project")))
			present = do(t, a.srv, "POST", "/v2/acme/app/blobs/uploads/?mount="+d.String()+"&from=acme/hidden-project", asked, nil)
			absent = do(t, a.srv, "POST", "/v2/acme/app/blobs/uploads/?mount="+missing.String()+"&from=acme/hidden-project", asked, nil)
			sameUploadAnswer(t, present, absent, "acme/app")
			// Named, a source the token was never asked about: a challenge
			// for the repository the caller named, whether or not it holds the blob.
			present = do(t, a.srv, "POST", "/v2/acme/app/blobs/uploads/?mount="+d.String()+"&from=acme/hidden-project", robot, nil)
			absent = do(t, a.srv, "POST", "/v2/acme/app/blobs/uploads/?mount="+missing.String()+"&from=acme/hidden-project", robot, nil)
			if present.status != 401 || absent.status != 401 || present.header.Get("WWW-Authenticate") != absent.header.Get("WWW-Authenticate") || string(present.body) != string(absent.body) {
				t.Fatalf("mount from a named source never asked for: %d %q vs %d %q", present.status, present.header.Get("WWW-Authenticate"), absent.status, absent.header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestAMountWithoutFromTakesTheBlobFromARepositoryTheTokenMayPull(t *testing.T) {
	a := newAuthServer(t)
	content := []byte("a shared base layer")
	owner := a.token(t, "signet-registry", repoAccess("acme/base", "pull", "push"))
	d := pushBlobAuth(t, a.srv, "acme/base", content, bearer(owner))
	tok := bearer(a.token(t, "signet-registry", repoAccess("acme/app", "pull", "push"), repoAccess("acme/other"), repoAccess("acme/base", "pull")))
	if r := do(t, a.srv, "POST", "/v2/acme/app/blobs/uploads/?mount="+d.String(), tok, nil); r.status != 201 || r.header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("mount without from, with pull on the source: %d %s", r.status, r.body)
	}
	if r := do(t, a.srv, "GET", "/v2/acme/app/blobs/"+d.String(), tok, nil); r.status != 200 || string(r.body) != string(content) {
		t.Fatalf("the mounted blob: %d", r.status)
	}
}

// In an enforced source, a blob no admitted manifest references is not served, so
// a mount by a caller who may only pull there does not take it (one who may push
// there sees it by HEAD anyway, and mounts it).
func TestAMountNeverTakesABlobTheGateWouldNotServeInTheSource(t *testing.T) {
	a := newAuthGated(t)
	content := []byte("uploaded to acme/src, referenced by nothing admitted")
	pusher := a.token(t, "signet-registry", repoAccess("acme/src", "pull", "push"))
	d := pushBlobAuth(t, a.srv, "acme/src", content, bearer(pusher))
	missing := digest.FromString("stored nowhere either")
	reader := bearer(a.token(t, "signet-registry", repoAccess("acme/app", "pull", "push"), repoAccess("acme/src", "pull")))
	if r := do(t, a.srv, "HEAD", "/v2/acme/src/blobs/"+d.String(), reader, nil); r.status != 404 {
		t.Fatalf("HEAD in the source by a reader: %d, want 404 (not served)", r.status)
	}
	for _, q := range []string{"&from=acme/src", ""} {
		present := do(t, a.srv, "POST", "/v2/acme/app/blobs/uploads/?mount="+d.String()+q, reader, nil)
		absent := do(t, a.srv, "POST", "/v2/acme/app/blobs/uploads/?mount="+missing.String()+q, reader, nil)
		sameUploadAnswer(t, present, absent, "acme/app")
	}
	both := bearer(a.token(t, "signet-registry", repoAccess("acme/app", "pull", "push"), repoAccess("acme/src", "pull", "push")))
	if r := do(t, a.srv, "POST", "/v2/acme/app/blobs/uploads/?mount="+d.String()+"&from=acme/src", both, nil); r.status != 201 {
		t.Fatalf("a mount by a pusher of the source: %d %s", r.status, r.body)
	}
}
