package tuf_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/trustd"
	"github.com/signet-oss/signet/trustnames"
)

const (
	adminPassword = "admin-password-for-tests"
	userPassword  = "user-password-for-tests"
)

// key is a test signing key.
type key struct {
	signer signature.Signer
	tuf    *metadata.Key
	id     string
}

func newKey(t testing.TB) *key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadSigner(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	k, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	id, _ := k.ID()
	return &key{signer: s, tuf: k, id: id}
}

// sign signs md with keys (replacing its signatures) and returns its bytes.
func sign[T metadata.Roles](t testing.TB, md *metadata.Metadata[T], keys ...*key) []byte {
	t.Helper()
	md.ClearSignatures()
	for _, k := range keys {
		if _, err := md.Sign(k.signer); err != nil {
			t.Fatal(err)
		}
	}
	b, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// env is trustd on the in-memory driver behind a real HTTP server, with its TUF
// repository initialised: root and targets keys held here.
type env struct {
	t       testing.TB
	d       driver.Driver
	srv     *httptest.Server
	admin   string // admin token for trustd's API
	root    *key
	targets *key
	rootMD  *metadata.Metadata[metadata.RootType]
	rootRaw []byte
	// targetsMD is the current top-level targets, as published.
	targetsMD *metadata.Metadata[metadata.TargetsType]
	// keys holds every org key delegated so far, to rebuild targets.
	keys map[string]*key
}

func testConfig() trustd.Config {
	cfg := trustd.Defaults()
	cfg.Storage.Driver = "inmemory"
	cfg.AdminPassword = adminPassword
	cfg.BcryptCost = 4
	return cfg
}

// newEnv starts trustd on d (a fresh in-memory driver when nil) and initialises
// its TUF repository.
func newEnv(t testing.TB, d driver.Driver, mods ...func(*trustd.Config)) *env {
	t.Helper()
	e := startEnv(t, d, mods...)
	e.init()
	return e
}

func startEnv(t testing.TB, d driver.Driver, mods ...func(*trustd.Config)) *env {
	t.Helper()
	if d == nil {
		d = inmemory.New()
	}
	cfg := testConfig()
	for _, m := range mods {
		m(&cfg)
	}
	s, err := trustd.New(context.Background(), cfg, d, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, d: d, srv: httptest.NewServer(s), root: newKey(t), targets: newKey(t), keys: map[string]*key{}}
	t.Cleanup(e.srv.Close)
	e.admin = e.login("admin", adminPassword)
	return e
}

func (e *env) init() {
	e.t.Helper()
	var online map[string]*metadata.Key
	r := e.do("GET", "/tuf/api/online-keys", "", nil)
	if err := json.Unmarshal(r.body, &online); err != nil || r.status != 200 {
		e.t.Fatalf("online keys: %d %s", r.status, r.body)
	}
	root := metadata.Root(time.Now().Add(365 * 24 * time.Hour))
	for role, k := range map[string]*metadata.Key{"root": e.root.tuf, "targets": e.targets.tuf, "snapshot": online["snapshot"], "timestamp": online["timestamp"]} {
		if err := root.Signed.AddKey(k, role); err != nil {
			e.t.Fatal(err)
		}
	}
	e.rootRaw = sign(e.t, root, e.root)
	e.rootMD = root
	targets := metadata.Targets(time.Now().Add(365 * 24 * time.Hour))
	body, _ := json.Marshal(map[string]json.RawMessage{"root": e.rootRaw, "targets": sign(e.t, targets, e.targets)})
	if r := e.do("POST", "/tuf/api/init", e.admin, body); r.status != 201 {
		e.t.Fatalf("init: %d %s", r.status, r.body)
	}
	e.targetsMD = targets
}

// reply is an HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(method, path, token string, body []byte) reply {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// login returns an access token for trustd's own API.
func (e *env) login(user, password string) string {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/token?service=trustd", nil)
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("login %s: %d", user, resp.StatusCode)
	}
	return tok.AccessToken
}

// mustAPI calls trustd's management API as admin.
func (e *env) mustAPI(want int, method, path string, body any) {
	e.t.Helper()
	b, _ := json.Marshal(body)
	if r := e.do(method, "/api/v1"+path, e.admin, b); r.status != want {
		e.t.Fatalf("%s %s: %d %s", method, path, r.status, r.body)
	}
}

// user makes a person with role in org ("" for none) and returns their token.
func (e *env) user(name, org, role string) string {
	e.t.Helper()
	e.mustAPI(201, "POST", "/users", map[string]string{"name": name, "password": userPassword})
	if role != "" {
		e.mustAPI(200, "PUT", "/orgs/"+org+"/members/"+name, map[string]string{"role": role})
	}
	return e.login(name, userPassword)
}

// put publishes a role's bytes with token.
func (e *env) put(role string, data []byte, token string) reply {
	e.t.Helper()
	return e.do("PUT", "/tuf/api/metadata/"+role, token, data)
}

func (e *env) mustPut(want int, role string, data []byte, token string) reply {
	e.t.Helper()
	r := e.put(role, data, token)
	if r.status != want {
		e.t.Fatalf("PUT %s: got %d, want %d: %s", role, r.status, want, r.body)
	}
	return r
}

// delegation is a delegated role for the builders below.
type delegation struct {
	name      string
	paths     []string
	keys      []*key
	threshold int
}

func orgDelegation(org string, threshold int, keys ...*key) delegation {
	return delegation{name: trustnames.RoleForOrg(org), paths: trustnames.OrgPaths(org), keys: keys, threshold: threshold}
}

func repoDelegation(repo string, threshold int, keys ...*key) delegation {
	return delegation{name: trustnames.RoleForRepo(repo), paths: trustnames.RepoPaths(repo), keys: keys, threshold: threshold}
}

// role builds targets metadata: version, delegations, targets.
func role(version int64, ds []delegation, targets map[string]*metadata.TargetFiles) *metadata.Metadata[metadata.TargetsType] {
	md := metadata.Targets(time.Now().Add(365 * 24 * time.Hour).UTC().Truncate(time.Second))
	md.Signed.Version = version
	if targets != nil {
		md.Signed.Targets = targets
	}
	if len(ds) > 0 {
		md.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}, Roles: []metadata.DelegatedRole{}}
		for _, d := range ds {
			dr := metadata.DelegatedRole{Name: d.name, Threshold: d.threshold, Terminating: true, Paths: d.paths, KeyIDs: []string{}}
			for _, k := range d.keys {
				md.Signed.Delegations.Keys[k.id] = k.tuf
				dr.KeyIDs = append(dr.KeyIDs, k.id)
			}
			md.Signed.Delegations.Roles = append(md.Signed.Delegations.Roles, dr)
		}
	}
	return md
}

// manifest is a fake manifest and its target entry.
func target(content string) *metadata.TargetFiles {
	sum := sha256.Sum256([]byte(content))
	custom := json.RawMessage(`{"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
	return &metadata.TargetFiles{Length: int64(len(content)), Hashes: metadata.Hashes{"sha256": sum[:]}, Custom: &custom}
}

func targets(kv ...any) map[string]*metadata.TargetFiles {
	m := map[string]*metadata.TargetFiles{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(*metadata.TargetFiles)
	}
	return m
}

// org creates org in trustd, delegates it from targets to keys (a new targets
// version, held until the org role has its first version) and publishes the org
// role's version 1 with ds (held in turn while ds name roles without metadata:
// their first versions publish it).
func (e *env) org(org string, orgKeys []*key, threshold int, ds ...delegation) {
	e.t.Helper()
	e.mustAPI(201, "POST", "/orgs", map[string]string{"name": org})
	var all []delegation
	if e.targetsMD.Signed.Delegations != nil {
		for _, r := range e.targetsMD.Signed.Delegations.Roles {
			all = append(all, delegation{name: r.Name, paths: r.Paths, threshold: r.Threshold, keys: e.keysOf(r)})
		}
	}
	for _, k := range orgKeys {
		e.keys[k.id] = k
	}
	all = append(all, orgDelegation(org, threshold, orgKeys...))
	// While an earlier org waits for its first version, the targets version
	// that delegates it is held, not published: the next one replaces it.
	var published struct{ Version int64 }
	jsonUnmarshal(e.do("GET", "/tuf/api/roles/targets", "", nil).body, &published)
	t := role(published.Version+1, all, nil)
	e.mustPut(202, "targets", sign(e.t, t, e.targets), e.admin)
	e.targetsMD = t
	if orgKeys != nil {
		want := 201
		if len(ds) > 0 {
			want = 202
		}
		e.mustPut(want, trustnames.RoleForOrg(org), sign(e.t, role(1, ds, nil), orgKeys[:threshold]...), e.admin)
	}
}

// keysOf returns the test keys of a delegation of targets.
func (e *env) keysOf(r metadata.DelegatedRole) []*key {
	var out []*key
	for _, id := range r.KeyIDs {
		out = append(out, e.keys[id])
	}
	return out
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

func jsonUnmarshal(b []byte, v any) { json.Unmarshal(b, v) }
