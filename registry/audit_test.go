package registry

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/signet-oss/signet/audit"
	"github.com/signet-oss/signet/audit/auditlog"
	"github.com/signet-oss/signet/internal/tuftest"
	"github.com/signet-oss/signet/registry/storage"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/tokenauth"
	"github.com/signet-oss/signet/trustnames"
	"github.com/signet-oss/signet/verify"
)

// audited is a registry with the gate on (acme/app delegated to alice), the
// audit log on, and token auth whose tokens the test issues.
type audited struct {
	gated
	issuer *tokenauth.Issuer
}

func newAudited(t *testing.T) *audited {
	t.Helper()
	g, issuer := newTokenGated(t, true)
	return &audited{gated: *g, issuer: issuer}
}

// newTokenGated is a registry with the gate on (every repository enforced but
// open/**, in a trust graph in which org acme delegates acme/app to alice) and
// token auth whose tokens the test issues with the returned issuer; audited
// turns the audit log on.
func newTokenGated(t *testing.T, audited bool) (*gated, *tokenauth.Issuer) {
	t.Helper()
	repo := tuftest.NewRepo(t)
	repo.Delegate("targets", "org-acme", trustnames.OrgPaths("acme"), "acme-org")
	repo.Delegate("org-acme", trustnames.RoleForRepo("acme/app"), trustnames.RepoPaths("acme/app"), "alice")
	repo.Publish("targets", "org-acme")
	d := inmemory.New()
	store, err := storage.New(t.Context(), d, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	index, err := verify.NewIndex(verify.IndexConfig{TrustdURL: repo.Srv.URL, Root: repo.RootBytes(), Store: store.TrustMetadata(), MinInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := index.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	key, err := tokenauth.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(tokenauth.JWKS(key))
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	api, err := NewServer(store, slog.New(slog.NewTextHandler(io.Discard, nil)), &TokenAuthConfig{JWKS: path})
	if err != nil {
		t.Fatal(err)
	}
	api.EnableGate(index, []string{"open/**"}, nil)
	if audited {
		api.EnableAudit(auditlog.New(d, AuditRoot, "registry"))
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &gated{srv: srv, tuf: repo, index: index, store: store}, &tokenauth.Issuer{Name: "signet-trustd", Key: key, TTL: time.Minute}
}

func (a *audited) token(t *testing.T, sub string, access ...tokenauth.Access) map[string]string {
	t.Helper()
	tok, _, err := a.issuer.Issue(sub, "signet-registry", access)
	if err != nil {
		t.Fatal(err)
	}
	h := bearer(tok)
	h["Content-Type"] = storage.MediaTypeOCIManifest
	h["X-Request-ID"] = "req-" + sub
	return h
}

var auditRead = tokenauth.Access{Type: "registry", Name: "audit", Actions: []string{"read"}}

func TestDenialsAreAuditedAndReadOnlyWithTheAuditScope(t *testing.T) {
	a := newAudited(t)
	pusher := a.token(t, "bob", repoAccess("acme/app", "pull", "push"), repoAccess("open/x", "pull", "push"))
	config, layer := []byte(`{"seed":"u"}`), []byte("layer u")
	cd := pushBlobAuth(t, a.srv, "acme/app", config, pusher)
	ld := pushBlobAuth(t, a.srv, "acme/app", layer, pusher)
	unsigned := imageManifest(cd, ld, len(config), len(layer))
	if r := do(t, a.srv, "PUT", "/v2/acme/app/manifests/v9", pusher, unsigned); r.status != 403 {
		t.Fatalf("the unsigned push: %d %s", r.status, r.body)
	}

	r := do(t, a.srv, "GET", "/signet/v1/audit", a.token(t, "admin", auditRead), nil)
	var page audit.Page
	if err := json.Unmarshal(r.body, &page); err != nil || r.status != 200 {
		t.Fatalf("GET /signet/v1/audit: %d %s", r.status, r.body)
	}
	if len(page.Records) != 1 {
		t.Fatalf("got %d records, want the one denial: %+v", len(page.Records), page.Records)
	}
	rec := page.Records[0]
	want := audit.Record{ID: rec.ID, Time: rec.Time, Source: "registry", Actor: "bob", Action: audit.ActionAdmissionDeny, Org: "acme",
		Repository: "acme/app", Tag: "v9", Digest: digest.FromBytes(unsigned).String(), RequestID: "req-bob", Outcome: audit.OutcomeDenied, Reason: rec.Reason}
	if rec.ID == "" || rec.Time.IsZero() || !strings.Contains(rec.Reason, "is not signed for acme/app:v9") || !equalRecords(rec, want) {
		t.Errorf("the denial's record is\n%+v\nwant\n%+v", rec, want)
	}

	refused := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"no token gets a challenge for the audit scope", nil, 401},
		{"a token without the audit scope is denied", a.token(t, "bob", repoAccess("acme/app", "pull", "push")), 403},
		{"a catalog token is denied", a.token(t, "bob", tokenauth.Access{Type: "registry", Name: "catalog", Actions: []string{"*"}, Patterns: []string{"**"}}), 403},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, a.srv, "GET", "/signet/v1/audit", tc.header, nil)
			if r.status != tc.status {
				t.Fatalf("got %d, want %d: %s", r.status, tc.status, r.body)
			}
			if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, `scope="registry:audit:read"`) {
				t.Errorf("the challenge %q does not ask for registry:audit:read", ch)
			}
		})
	}
	if r := do(t, a.srv, "GET", "/signet/v1/audit?limit=abc", a.token(t, "admin", auditRead), nil); r.status != 400 {
		t.Errorf("a bad limit: %d %s", r.status, r.body)
	}
	if r := do(t, a.srv, "GET", "/signet/v1/audit?repo=acme/other", a.token(t, "admin", auditRead), nil); r.status != 200 || !strings.Contains(string(r.body), `"records":[]`) {
		t.Errorf("a filter that matches nothing: %d %s", r.status, r.body)
	}
}

func equalRecords(a, b audit.Record) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// pushBlobAuth uploads a blob to repo with header's token, in one POST.
func pushBlobAuth(t *testing.T, srv *httptest.Server, repo string, content []byte, header map[string]string) digest.Digest {
	t.Helper()
	d := digest.FromBytes(content)
	h := map[string]string{"Authorization": header["Authorization"], "Content-Type": "application/octet-stream"}
	if r := do(t, srv, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), h, content); r.status != 201 {
		t.Fatalf("pushing a blob: %d %s", r.status, r.body)
	}
	return d
}

func TestAuditIsOpenWithoutAuthentication(t *testing.T) {
	d := inmemory.New()
	store, err := storage.New(t.Context(), d, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	api, err := NewServer(store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := auditlog.New(d, AuditRoot, "registry")
	api.EnableAudit(l)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	if _, err := l.Append(t.Context(), audit.Record{Actor: "anonymous", Action: audit.ActionAdmissionDeny, Repository: "acme/app"}); err != nil {
		t.Fatal(err)
	}
	r := do(t, srv, "GET", "/signet/v1/audit?repo=acme/**", nil, nil)
	var page audit.Page
	if err := json.Unmarshal(r.body, &page); err != nil || r.status != 200 || len(page.Records) != 1 || page.Records[0].Repository != "acme/app" {
		t.Fatalf("GET /signet/v1/audit without auth: %d %s", r.status, r.body)
	}
}
