package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// testRepo is a small TUF repository in the layout trustd serves (consistent
// snapshots under /tuf/), built with go-tuf in memory: root → targets → org-<org>
// → repo-<hash>. Tests change it and re-publish, as trustd would, or tamper with
// the files it serves.
type testRepo struct {
	t   *testing.T
	now time.Time

	mu    sync.Mutex
	files map[string][]byte // by name under /tuf/
	// requireToken, when set, is the bearer token delegated roles need.
	requireToken string
	// authSeen records the Authorization header of every request, by file name.
	authSeen map[string]string

	keys      map[string]*testKey // by role, for top-level roles; by name for others
	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	delegated map[string]*metadata.Metadata[metadata.TargetsType]
	// signers of each delegated role (names of keys)
	signers map[string][]string

	srv *httptest.Server
}

type testKey struct {
	tuf    *metadata.Key
	signer signature.Signer
}

func newTestKey(t *testing.T) *testKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	k, err := metadata.KeyFromPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{tuf: k, signer: s}
}

func (k *testKey) id() string {
	id, _ := k.tuf.ID()
	return id
}

func repoRole(repo string) string {
	sum := sha256.Sum256([]byte(repo))
	return "repo-" + hex.EncodeToString(sum[:])[:32]
}

func orgPaths(org string) []string {
	return []string{org + "/*", org + "/*/*", org + "/*/*/*"}
}

func repoPaths(repo string) []string { return []string{repo + ":*", repo + "@*"} }

// newTestRepo makes a repository with root, targets, snapshot and timestamp keys,
// publishes version 1 of each, and serves it.
func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	r := &testRepo{
		t: t, now: time.Now().UTC(), files: map[string][]byte{}, authSeen: map[string]string{},
		keys: map[string]*testKey{}, delegated: map[string]*metadata.Metadata[metadata.TargetsType]{},
		signers: map[string][]string{},
	}
	r.root = metadata.Root(r.now.AddDate(1, 0, 0))
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		k := newTestKey(t)
		r.keys[role] = k
		if err := r.root.Signed.AddKey(k.tuf, role); err != nil {
			t.Fatal(err)
		}
	}
	r.root.Signed.ConsistentSnapshot = true
	r.targets = metadata.Targets(r.now.AddDate(1, 0, 0))
	r.snapshot = metadata.Snapshot(r.now.AddDate(0, 0, 7))
	r.timestamp = metadata.Timestamp(r.now.AddDate(0, 0, 1))
	r.signRoot()
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.publish("targets")
	return r
}

func (r *testRepo) sign(md interface {
	ClearSignatures()
}, keys ...*testKey) {
	r.t.Helper()
	md.ClearSignatures()
	for _, k := range keys {
		var err error
		switch m := md.(type) {
		case *metadata.Metadata[metadata.RootType]:
			_, err = m.Sign(k.signer)
		case *metadata.Metadata[metadata.TargetsType]:
			_, err = m.Sign(k.signer)
		case *metadata.Metadata[metadata.SnapshotType]:
			_, err = m.Sign(k.signer)
		case *metadata.Metadata[metadata.TimestampType]:
			_, err = m.Sign(k.signer)
		}
		if err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *testRepo) signRoot() {
	r.sign(r.root, r.keys["root"])
	b, err := r.root.ToBytes(false)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.files[fmt.Sprintf("%d.root.json", r.root.Signed.Version)] = b
	r.mu.Unlock()
}

// rootBytes is the current root.json, to pin.
func (r *testRepo) rootBytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files[fmt.Sprintf("%d.root.json", r.root.Signed.Version)]
}

// publish writes a new version of each named targets role (targets or
// delegated), then a new snapshot and timestamp.
func (r *testRepo) publish(roles ...string) {
	r.t.Helper()
	for _, name := range roles {
		var md *metadata.Metadata[metadata.TargetsType]
		var keys []*testKey
		if name == "targets" {
			md, keys = r.targets, []*testKey{r.keys["targets"]}
		} else {
			md = r.delegated[name]
			for _, k := range r.signers[name] {
				keys = append(keys, r.keys[k])
			}
		}
		md.Signed.Version++
		r.sign(md, keys...)
		b, err := md.ToBytes(false)
		if err != nil {
			r.t.Fatal(err)
		}
		r.mu.Lock()
		r.files[fmt.Sprintf("%d.%s.json", md.Signed.Version, name)] = b
		r.mu.Unlock()
		r.snapshot.Signed.Meta[name+".json"] = metadata.MetaFile(md.Signed.Version)
	}
	r.snapshot.Signed.Version++
	r.sign(r.snapshot, r.keys["snapshot"])
	sb, err := r.snapshot.ToBytes(false)
	if err != nil {
		r.t.Fatal(err)
	}
	r.timestamp.Signed.Version++
	r.timestamp.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.snapshot.Signed.Version)
	r.timestamp.Signed.Meta["snapshot.json"].Length = int64(len(sb))
	r.sign(r.timestamp, r.keys["timestamp"])
	tb, err := r.timestamp.ToBytes(false)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.files[fmt.Sprintf("%d.snapshot.json", r.snapshot.Signed.Version)] = sb
	r.files["timestamp.json"] = tb
	r.mu.Unlock()
}

// delegate has parent delegate name with paths to the keys (named, created on
// first use), threshold 1, terminating; it creates the delegated role if new.
func (r *testRepo) delegate(parent, name string, paths []string, keys ...string) {
	r.t.Helper()
	p := r.targets
	if parent != "targets" {
		p = r.delegated[parent]
	}
	if p.Signed.Delegations == nil {
		p.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	d := metadata.DelegatedRole{Name: name, Threshold: 1, Terminating: true, Paths: paths}
	for _, k := range keys {
		if r.keys[k] == nil {
			r.keys[k] = newTestKey(r.t)
		}
		d.KeyIDs = append(d.KeyIDs, r.keys[k].id())
		p.Signed.Delegations.Keys[r.keys[k].id()] = r.keys[k].tuf
	}
	replaced := false
	for i := range p.Signed.Delegations.Roles {
		if p.Signed.Delegations.Roles[i].Name == name {
			p.Signed.Delegations.Roles[i], replaced = d, true
		}
	}
	if !replaced {
		p.Signed.Delegations.Roles = append(p.Signed.Delegations.Roles, d)
	}
	if r.delegated[name] == nil {
		r.delegated[name] = metadata.Targets(r.now.AddDate(1, 0, 0))
		r.delegated[name].Signed.Version = 0
		r.signers[name] = keys
	}
}

// addTarget adds a target to a delegated role (not yet published).
func (r *testRepo) addTarget(role, path string, manifest []byte, mediaType string, closure ...string) string {
	r.t.Helper()
	tf, err := metadata.TargetFile().FromBytes(path, manifest, "sha256")
	if err != nil {
		r.t.Fatal(err)
	}
	custom := map[string]any{"mediaType": mediaType}
	if len(closure) > 0 {
		custom["closure"] = closure
	}
	raw, _ := json.Marshal(custom)
	rm := json.RawMessage(raw)
	tf.Custom = &rm
	r.delegated[role].Signed.Targets[path] = tf
	sum := sha256.Sum256(manifest)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (r *testRepo) serve(w http.ResponseWriter, req *http.Request) {
	name, ok := strings.CutPrefix(req.URL.Path, "/tuf/")
	if !ok {
		http.NotFound(w, req)
		return
	}
	r.mu.Lock()
	r.authSeen[name] = req.Header.Get("Authorization")
	need := r.requireToken
	b, found := r.files[name]
	r.mu.Unlock()
	role := strings.TrimSuffix(name, ".json")
	if _, after, ok := strings.Cut(role, "."); ok {
		role = after
	}
	if need != "" && !topLevel[role] && req.Header.Get("Authorization") != "Bearer "+need {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if !found {
		http.NotFound(w, req)
		return
	}
	w.Write(b)
}

// setFile replaces a served file (tampering).
func (r *testRepo) setFile(name string, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files[name] = b
}

func (r *testRepo) file(name string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files[name]
}
