// Package tuftest builds small TUF repositories in the layout trustd serves, for
// tests of TUF clients (the verify package, the registry's gate): root → targets
// → org-<org> → repo-<hash>, signed with go-tuf, served by an httptest server.
// Tests change a repository and re-publish it as trustd would, or tamper with
// the files it serves.
package tuftest

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

// Repo is a small TUF repository in the layout trustd serves (consistent
// snapshots under /tuf/), built with go-tuf in memory: root → targets → org-<org>
// → repo-<hash>. Tests change it and re-publish, as trustd would, or tamper with
// the files it serves.
type Repo struct {
	t   testing.TB
	Now time.Time

	mu    sync.Mutex
	files map[string][]byte // by name under /tuf/
	// requireToken, when set, is the bearer token delegated roles need.
	RequireToken string
	// authSeen records the Authorization header of every request, by file name.
	AuthSeen map[string]string

	Keys      map[string]*Key // by role, for top-level roles; by name for others
	Root      *metadata.Metadata[metadata.RootType]
	Targets   *metadata.Metadata[metadata.TargetsType]
	Snapshot  *metadata.Metadata[metadata.SnapshotType]
	Timestamp *metadata.Metadata[metadata.TimestampType]
	Delegated map[string]*metadata.Metadata[metadata.TargetsType]
	// signers of each delegated role (names of keys)
	Signers map[string][]string

	Srv *httptest.Server
}

type Key struct {
	TUF    *metadata.Key
	Signer signature.Signer
	// Private is the key itself, for tests that sign other formats with it.
	Private crypto.Signer
}

func NewKey(t testing.TB) *Key {
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
	return &Key{TUF: k, Signer: s, Private: priv}
}

func (k *Key) ID() string {
	id, _ := k.TUF.ID()
	return id
}

// NewRepo makes a repository with root, targets, snapshot and timestamp keys,
// publishes version 1 of each, and serves it.
func NewRepo(t testing.TB) *Repo {
	t.Helper()
	r := &Repo{
		t: t, Now: time.Now().UTC(), files: map[string][]byte{}, AuthSeen: map[string]string{},
		Keys: map[string]*Key{}, Delegated: map[string]*metadata.Metadata[metadata.TargetsType]{},
		Signers: map[string][]string{},
	}
	r.Root = metadata.Root(r.Now.AddDate(1, 0, 0))
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		k := NewKey(t)
		r.Keys[role] = k
		if err := r.Root.Signed.AddKey(k.TUF, role); err != nil {
			t.Fatal(err)
		}
	}
	r.Root.Signed.ConsistentSnapshot = true
	r.Targets = metadata.Targets(r.Now.AddDate(1, 0, 0))
	r.Snapshot = metadata.Snapshot(r.Now.AddDate(0, 0, 7))
	r.Timestamp = metadata.Timestamp(r.Now.AddDate(0, 0, 1))
	r.SignRoot()
	r.Srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Srv.Close)
	r.Publish("targets")
	return r
}

func (r *Repo) Sign(md interface {
	ClearSignatures()
}, keys ...*Key) {
	r.t.Helper()
	md.ClearSignatures()
	for _, k := range keys {
		var err error
		switch m := md.(type) {
		case *metadata.Metadata[metadata.RootType]:
			_, err = m.Sign(k.Signer)
		case *metadata.Metadata[metadata.TargetsType]:
			_, err = m.Sign(k.Signer)
		case *metadata.Metadata[metadata.SnapshotType]:
			_, err = m.Sign(k.Signer)
		case *metadata.Metadata[metadata.TimestampType]:
			_, err = m.Sign(k.Signer)
		}
		if err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *Repo) SignRoot() {
	r.Sign(r.Root, r.Keys["root"])
	b, err := r.Root.ToBytes(false)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.files[fmt.Sprintf("%d.root.json", r.Root.Signed.Version)] = b
	r.mu.Unlock()
}

// rootBytes is the current root.json, to pin.
func (r *Repo) RootBytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files[fmt.Sprintf("%d.root.json", r.Root.Signed.Version)]
}

// publish writes a new version of each named targets role (targets or
// delegated), then a new snapshot and timestamp.
func (r *Repo) Publish(roles ...string) {
	r.t.Helper()
	for _, name := range roles {
		var md *metadata.Metadata[metadata.TargetsType]
		var keys []*Key
		if name == "targets" {
			md, keys = r.Targets, []*Key{r.Keys["targets"]}
		} else {
			md = r.Delegated[name]
			for _, k := range r.Signers[name] {
				keys = append(keys, r.Keys[k])
			}
		}
		md.Signed.Version++
		r.Sign(md, keys...)
		b, err := md.ToBytes(false)
		if err != nil {
			r.t.Fatal(err)
		}
		r.mu.Lock()
		r.files[fmt.Sprintf("%d.%s.json", md.Signed.Version, name)] = b
		r.mu.Unlock()
		r.Snapshot.Signed.Meta[name+".json"] = metadata.MetaFile(md.Signed.Version)
	}
	r.Snapshot.Signed.Version++
	r.Sign(r.Snapshot, r.Keys["snapshot"])
	sb, err := r.Snapshot.ToBytes(false)
	if err != nil {
		r.t.Fatal(err)
	}
	r.Timestamp.Signed.Version++
	r.Timestamp.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.Snapshot.Signed.Version)
	r.Timestamp.Signed.Meta["snapshot.json"].Length = int64(len(sb))
	r.Sign(r.Timestamp, r.Keys["timestamp"])
	tb, err := r.Timestamp.ToBytes(false)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.files[fmt.Sprintf("%d.snapshot.json", r.Snapshot.Signed.Version)] = sb
	r.files["timestamp.json"] = tb
	r.mu.Unlock()
}

// delegate has parent delegate name with paths to the keys (named, created on
// first use), threshold 1, terminating; it creates the delegated role if new.
func (r *Repo) Delegate(parent, name string, paths []string, keys ...string) {
	r.t.Helper()
	p := r.Targets
	if parent != "targets" {
		p = r.Delegated[parent]
	}
	if p.Signed.Delegations == nil {
		p.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	d := metadata.DelegatedRole{Name: name, Threshold: 1, Terminating: true, Paths: paths}
	for _, k := range keys {
		if r.Keys[k] == nil {
			r.Keys[k] = NewKey(r.t)
		}
		d.KeyIDs = append(d.KeyIDs, r.Keys[k].ID())
		p.Signed.Delegations.Keys[r.Keys[k].ID()] = r.Keys[k].TUF
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
	if r.Delegated[name] == nil {
		r.Delegated[name] = metadata.Targets(r.Now.AddDate(1, 0, 0))
		r.Delegated[name].Signed.Version = 0
		r.Signers[name] = keys
	}
}

// addTarget adds a target to a delegated role (not yet published).
func (r *Repo) AddTarget(role, path string, manifest []byte, mediaType string, closure ...string) string {
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
	r.Delegated[role].Signed.Targets[path] = tf
	sum := sha256.Sum256(manifest)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (r *Repo) serve(w http.ResponseWriter, req *http.Request) {
	name, ok := strings.CutPrefix(req.URL.Path, "/tuf/")
	if !ok {
		http.NotFound(w, req)
		return
	}
	r.mu.Lock()
	r.AuthSeen[name] = req.Header.Get("Authorization")
	need := r.RequireToken
	b, found := r.files[name]
	r.mu.Unlock()
	role := strings.TrimSuffix(name, ".json")
	if _, after, ok := strings.Cut(role, "."); ok {
		role = after
	}
	if need != "" && !topLevelRoles[role] && req.Header.Get("Authorization") != "Bearer "+need {
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
func (r *Repo) SetFile(name string, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files[name] = b
}

// Seen returns, by file name, the Authorization header each file was last
// fetched with.
func (r *Repo) Seen() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.AuthSeen))
	for k, v := range r.AuthSeen {
		out[k] = v
	}
	return out
}

// Remove stops serving a file.
func (r *Repo) Remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.files, name)
}

// File returns a served file.
func (r *Repo) File(name string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files[name]
}

// topLevelRoles are the roles whose metadata trustd serves to anyone.
var topLevelRoles = map[string]bool{"root": true, "timestamp": true, "snapshot": true, "targets": true}
