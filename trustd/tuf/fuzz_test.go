package tuf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/trustnames"
)

// fuzzState is a committed state with org acme delegating acme/app to pub.
func fuzzState(t testing.TB) (*state, signature.Signer, string) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := signature.LoadSigner(priv, crypto.SHA256)
	k, _ := metadata.KeyFromPublicKey(priv.Public())
	id, _ := k.ID()
	exp := time.Now().Add(24 * time.Hour)
	root := metadata.Root(exp)
	for _, r := range []string{"root", "targets", "snapshot", "timestamp"} {
		root.Signed.AddKey(k, r)
	}
	targets := metadata.Targets(exp)
	targets.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{id: k}, Roles: []metadata.DelegatedRole{
		{Name: "org-acme", KeyIDs: []string{id}, Threshold: 1, Terminating: true, Paths: trustnames.OrgPaths("acme")},
	}}
	org := metadata.Targets(exp)
	org.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{id: k}, Roles: []metadata.DelegatedRole{
		{Name: trustnames.RoleForRepo("acme/app"), KeyIDs: []string{id}, Threshold: 1, Terminating: true, Paths: trustnames.RepoPaths("acme/app")},
	}}
	s := &state{
		root: root, targets: targets,
		snapshot: &snapshotMD{Signed: metadata.SnapshotType{Version: 1, Meta: map[string]*metadata.MetaFiles{
			"targets.json": {Version: 1}, "org-acme.json": {Version: 1},
		}}},
		orgs: map[string]*targetsMD{}, repos: map[string]string{},
	}
	s.indexOrg("org-acme", nil, org)
	return s, signer, id
}

// FuzzPublish feeds untrusted bytes to the upload parser and validation: they
// never panic, and whatever they accept as meeting its threshold verifies with
// go-tuf against the delegating role.
func FuzzPublish(f *testing.F) {
	s, signer, _ := fuzzState(f)
	now := time.Now()
	app := trustnames.RoleForRepo("acme/app")
	good := metadata.Targets(now.Add(time.Hour))
	good.Signed.Targets["acme/app:v1"] = &metadata.TargetFiles{Length: 3, Hashes: metadata.Hashes{"sha256": make([]byte, 32)}}
	good.Sign(signer)
	seed, _ := good.ToBytes(false)
	f.Add(app, seed)
	orgMD, _ := s.orgs["org-acme"].ToBytes(false)
	f.Add("org-acme", orgMD)
	rootMD, _ := s.root.ToBytes(false)
	f.Add("root", rootMD)
	f.Add("targets", []byte(`{"signed":{"_type":"targets","version":2,"expires":"2999-01-01T00:00:00Z","targets":{},"delegations":{"keys":{},"roles":[{"name":"org-x","keyids":[],"threshold":0,"paths":["x/*"]}]}},"signatures":[]}`))
	f.Add(app, []byte(`{"signed":{"_type":"targets"},"signatures":[{"keyid":"00","sig":"zz"}]}`))
	f.Fuzz(func(t *testing.T, role string, data []byte) {
		u, err := parseUpload(role, data)
		if err != nil {
			return
		}
		res, err := s.validate(u, now, map[string]string{})
		if err != nil || !res.met {
			return
		}
		switch u.kind {
		case kindRepo:
			err = s.orgs["org-acme"].VerifyDelegate(u.role, u.targets)
		case kindOrg, kindTargets:
			del := s.targets
			if u.kind == kindTargets {
				err = s.root.VerifyDelegate(u.role, u.targets)
				break
			}
			err = del.VerifyDelegate(u.role, u.targets)
		case kindRoot:
			err = s.root.VerifyDelegate(trustnames.RoleRoot, u.root)
		}
		if err != nil {
			t.Fatalf("accepted %s without a valid signature: %v", role, err)
		}
	})
}
