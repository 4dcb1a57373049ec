package trustd_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/internal/tuftest"
	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/trustd"
	"github.com/signet-oss/signet/trustnames"
)

// killedAtCommit fails writes of the TUF head while armed: a publish that
// dies at its commit point.
type killedAtCommit struct {
	driver.Driver
	armed atomic.Bool
}

func (d *killedAtCommit) PutContentIf(ctx context.Context, p string, data []byte, c driver.Condition) (string, error) {
	if d.armed.Load() && strings.HasSuffix(p, "/tuf/head.json") {
		return "", errors.New("killed before the commit point")
	}
	return d.Driver.PutContentIf(ctx, p, data, c)
}

func signTUF[T metadata.Roles](t *testing.T, md *metadata.Metadata[T], k *tuftest.Key) []byte {
	t.Helper()
	md.ClearSignatures()
	if _, err := md.Sign(k.Signer); err != nil {
		t.Fatal(err)
	}
	b, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// targetsVersion is a targets-type role version delegating each of names
// (roles) to paths[name] with key k, and signing tgts.
func targetsVersion(version int64, k *tuftest.Key, paths map[string][]string, tgts map[string]*metadata.TargetFiles) *metadata.Metadata[metadata.TargetsType] {
	md := metadata.Targets(time.Now().Add(365 * 24 * time.Hour).UTC().Truncate(time.Second))
	md.Signed.Version = version
	if tgts != nil {
		md.Signed.Targets = tgts
	}
	if len(paths) > 0 {
		md.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{k.ID(): k.TUF}}
		for name, p := range paths {
			md.Signed.Delegations.Roles = append(md.Signed.Delegations.Roles, metadata.DelegatedRole{Name: name, Threshold: 1, Terminating: true, Paths: p, KeyIDs: []string{k.ID()}})
		}
	}
	return md
}

// tuf sends a request to trustd's TUF API with token.
func (e *env) tuf(method, path, token string, body []byte) reply {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+"/tuf"+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return e.do(req)
}

func (e *env) mustTUF(want int, method, path, token string, body []byte) reply {
	e.t.Helper()
	r := e.tuf(method, path, token, body)
	if r.status != want {
		e.t.Fatalf("%s /tuf%s: got %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

func TestAReleaseByReleaseReadyIsAudited(t *testing.T) {
	d := &killedAtCommit{Driver: inmemory.New()}
	var later atomic.Int64 // how far trustd's clock is ahead
	e := newEnvWith(t, testConfig(), d, func(s *trustd.Server) {
		s.SetClock(func() time.Time { return time.Now().Add(time.Duration(later.Load())) })
	})
	admin := e.fixture()
	bob := e.login("bob", userPassword)
	rootKey, targetsKey, orgKey, pub := tuftest.NewKey(t), tuftest.NewKey(t), tuftest.NewKey(t), tuftest.NewKey(t)

	var online map[string]*metadata.Key
	json.Unmarshal(e.mustTUF(http.StatusOK, "GET", "/api/online-keys", "", nil).body, &online)
	root := metadata.Root(time.Now().Add(365 * 24 * time.Hour))
	for r, k := range map[string]*metadata.Key{"root": rootKey.TUF, "targets": targetsKey.TUF, "snapshot": online["snapshot"], "timestamp": online["timestamp"]} {
		if err := root.Signed.AddKey(k, r); err != nil {
			t.Fatal(err)
		}
	}
	body, _ := json.Marshal(map[string]json.RawMessage{"root": signTUF(t, root, rootKey), "targets": signTUF(t, targetsVersion(1, nil, nil, nil), targetsKey)})
	e.mustTUF(http.StatusCreated, "POST", "/api/init", admin, body)
	orgRole, appRole := trustnames.RoleForOrg("acme"), trustnames.RoleForRepo("acme/app")
	e.mustTUF(http.StatusAccepted, "PUT", "/api/metadata/targets", admin, signTUF(t, targetsVersion(2, orgKey, map[string][]string{orgRole: trustnames.OrgPaths("acme")}, nil), targetsKey))
	e.mustTUF(http.StatusCreated, "PUT", "/api/metadata/"+orgRole, admin, signTUF(t, targetsVersion(1, nil, nil, nil), orgKey))
	e.mustTUF(http.StatusAccepted, "PUT", "/api/metadata/"+orgRole, admin, signTUF(t, targetsVersion(2, pub, map[string][]string{appRole: trustnames.RepoPaths("acme/app")}, nil), orgKey))

	// acme/app's first version completes the set, and its publish dies at the
	// commit point: ReleaseReady releases what it left.
	sum := sha256.Sum256([]byte("manifest"))
	tgts := map[string]*metadata.TargetFiles{"acme/app:v1": {Length: 8, Hashes: metadata.Hashes{"sha256": sum[:]}}}
	d.armed.Store(true)
	e.mustTUF(http.StatusInternalServerError, "PUT", "/api/metadata/"+appRole, bob, signTUF(t, targetsVersion(1, nil, nil, tgts), pub))
	d.armed.Store(false)
	// Run's next tick, past the time a publish gets to commit its own release.
	later.Store(int64(time.Minute))
	if n, err := e.server.ReleaseReady(context.Background()); err != nil || n != 1 {
		t.Fatalf("ReleaseReady: released %d, %v; want 1", n, err)
	}

	page, _ := e.auditPage(http.StatusOK, admin, url.Values{"actor": {"@trustd"}, "limit": {"1000"}})
	var got []string
	for _, r := range page.Records {
		got = append(got, strings.TrimSpace(strings.Join([]string{r.Action, r.Role, r.Repository + ":" + r.Tag, r.Org}, " ")))
		if r.Action == "role.publish" && r.Role == orgRole && (r.Version != 2 || !strings.Contains(r.Detail, "released")) {
			t.Errorf("the release's record: %+v, want org-acme version 2, released", r)
		}
		if r.Action == "target.publish" && r.Version != 1 {
			t.Errorf("the target's record: %+v, want acme/app's version 1", r)
		}
	}
	want := []string{
		"role.publish " + orgRole + " : acme",
		"role.publish " + appRole + " acme/app: acme", // named by its repository, not only its hash
		"delegation.add " + appRole + " acme/app: acme",
		"target.publish " + appRole + " acme/app:v1 acme",
	}
	if !slices.Equal(got, want) {
		t.Errorf("records by trustd:\n got %q\nwant %q", got, want)
	}
}
