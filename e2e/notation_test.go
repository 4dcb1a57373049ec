package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The notation tests drive the real notation v1.3.2 with Signet keys: notation
// signs through the notation-signet plugin, which loads the key from Signet's
// key store, and `notation verify` checks with the trust store and policy
// `trustctl notation policy` wrote from the trust graph.

var (
	pluginOnce sync.Once
	pluginErr  error
)

// notationPlugin builds cmd/notation-signet next to trustctl, where `trustctl
// notation setup` finds it, once for the package.
func notationPlugin(t *testing.T) {
	t.Helper()
	pluginOnce.Do(func() { _, pluginErr = buildCmd("notation-signet") })
	if pluginErr != nil {
		t.Fatal(pluginErr)
	}
}

// notationUser is one person with notation: a SIGNET_HOME with their keys and a
// notation configuration of their own.
type notationUser struct {
	home, config string
	env          []string
	notation     *tool
}

func newNotationUser(t *testing.T, st *stack, home string, env ...string) *notationUser {
	t.Helper()
	config := filepath.Join(t.TempDir(), "notation")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	env = append([]string{"SIGNET_HOME=" + home, "NOTATION_CONFIG=" + config,
		"NOTATION_USERNAME=admin", "NOTATION_PASSWORD=" + st.AdminPassword}, env...)
	return &notationUser{home: home, config: config, env: env, notation: newTool(t, "notation", env...)}
}

// trustctl runs trustctl as this user, with notation on PATH.
func (u *notationUser) trustctl(args ...string) (string, error) {
	tl := &tool{path: trustctlBin, dir: u.home, env: append([]string{
		"HOME=" + filepath.Dir(u.home),
		"PATH=" + filepath.Dir(u.notation.path) + string(os.PathListSeparator) + os.Getenv("PATH"),
	}, u.env...)}
	return tl.try(args...)
}

func TestNotation(t *testing.T) {
	t.Parallel()
	notationPlugin(t)
	st := startStack(t, "--open", "acme/**")
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "keys", "generate", "mallory")
	st.trustctl(t, "keys", "generate", "edna", "--algorithm", "ed25519")
	// bob keeps his key in a SIGNET_HOME of his own: the admin has only his
	// public key, and will find his certificate in the registry.
	bobHome := filepath.Join(t.TempDir(), "bob")
	bob := newNotationUser(t, st, bobHome, "SIGNET_PASSPHRASE="+e2ePassphrase)
	if out, err := bob.trustctl("keys", "generate", "bob"); err != nil {
		t.Fatal(err, out)
	}
	bobPub := filepath.Join(t.TempDir(), "bob.pub")
	out, err := bob.trustctl("keys", "export", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bobPub, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice", "--key", bobPub)

	// alice signs with her passphrase in a file, which setup hands to
	// notation's key configuration: nothing in notation's environment.
	alice := newNotationUser(t, st, st.Home)
	passFile := filepath.Join(t.TempDir(), "alice.pass")
	if err := os.WriteFile(passFile, []byte(e2ePassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	setup := func(t *testing.T, u *notationUser, key string, extra ...string) {
		t.Helper()
		out, err := u.trustctl(append([]string{"notation", "setup", key}, extra...)...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "Installed the notation plugin signet and added key "+key) {
			t.Fatalf("trustctl notation setup %s said:\n%s", key, out)
		}
	}
	setup(t, alice, "alice", "--passphrase-file", passFile)
	setup(t, bob, "bob")
	malloryUser := newNotationUser(t, st, st.Home, "SIGNET_PASSPHRASE="+e2ePassphrase)
	setup(t, malloryUser, "mallory")
	// Again, for a script: the key is there already, and the answer is JSON.
	setupOut, err := bob.trustctl("notation", "setup", "bob", "-o", "json")
	var again struct {
		Key          string   `json:"key"`
		KeyID        string   `json:"keyId"`
		Commands     []string `json:"commands"`
		Installed    bool     `json:"installed"`
		AlreadyAdded bool     `json:"alreadyAdded"`
	}
	if err != nil || json.Unmarshal([]byte(setupOut), &again) != nil || again.Key != "bob" || again.KeyID == "" ||
		len(again.Commands) != 2 || !again.Installed || !again.AlreadyAdded {
		t.Fatalf("trustctl notation setup bob -o json again: %v\n%s", err, setupOut)
	}

	v1 := st.pushImage(t, "acme/app", "v1")
	st.sign(t, "acme/app:v1", "alice", v1)
	bobOnly := st.pushImage(t, "acme/app", "bob-only")
	malloryOnly := st.pushImage(t, "acme/app", "mallory-only")
	ref := func(d string) string { return st.Addr + "/acme/app@" + d }

	sign := func(t *testing.T, u *notationUser, key, d string, extra ...string) {
		t.Helper()
		u.notation.run(t, append([]string{"sign", "--insecure-registry", "--key", key}, append(extra, ref(d))...)...)
	}
	sign(t, alice, "alice", v1)
	sign(t, bob, "bob", v1, "--signature-format", "cose", "--force-referrers-tag=false")
	sign(t, bob, "bob", bobOnly)
	sign(t, malloryUser, "mallory", malloryOnly)

	// The verifier: a notation configuration of its own, written by trustctl.
	verifier := newNotationUser(t, st, st.Home)
	writePolicy := func(t *testing.T) notationPolicyOutput {
		t.Helper()
		out, err := verifier.trustctl("notation", "policy", st.Addr+"/acme/app", "--dir", verifier.config, "--output", "json")
		if err != nil {
			t.Fatal(err)
		}
		var res notationPolicyOutput
		if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Repositories) != 1 {
			t.Fatalf("trustctl notation policy --output json printed %q: %v", out, err)
		}
		return res
	}
	verify := func(d string) (string, error) {
		return verifier.notation.try("verify", "--insecure-registry", ref(d))
	}
	keyID := func(t *testing.T, name string, home string) string {
		t.Helper()
		u := &notationUser{home: home, notation: verifier.notation, env: []string{"SIGNET_HOME=" + home}}
		out, err := u.trustctl("keys", "list", "--output", "json")
		if err != nil {
			t.Fatal(err)
		}
		var keys []struct{ Name, ID string }
		json.Unmarshal([]byte(out), &keys)
		for _, k := range keys {
			if k.Name == name {
				return k.ID
			}
		}
		t.Fatalf("no key %s in %s", name, out)
		return ""
	}
	aliceID, bobID := keyID(t, "alice", st.Home), keyID(t, "bob", bobHome)

	t.Run("the trust store holds exactly the delegated keys' certificates, bob's read from his signature", func(t *testing.T) {
		res := writePolicy(t).Repositories[0]
		from := map[string]string{}
		for _, tr := range res.Trusted {
			from[tr.KeyID] = tr.From
		}
		if len(from) != 2 || !strings.HasPrefix(from[aliceID], "key store (alice)") || !strings.HasPrefix(from[bobID], "registry (acme/app@") {
			t.Fatalf("trusted %+v, want alice's from the key store and bob's from the registry", res.Trusted)
		}
		files, err := os.ReadDir(filepath.Join(verifier.config, "truststore", "x509", "ca", res.Store))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range files {
			names = append(names, f.Name())
		}
		if want := []string{aliceID + ".crt", bobID + ".crt"}; !slices.Equal(names, slices.Sorted(slices.Values(want))) {
			t.Errorf("trust store files %v, want %v", names, want)
		}
	})

	t.Run("notation verify passes for signatures by delegated keys, JWS and COSE", func(t *testing.T) {
		for _, d := range []string{v1, bobOnly} {
			if out, err := verify(d); err != nil {
				t.Errorf("notation verify %s: %v", d, err)
			} else if !strings.Contains(out, "Successfully verified") {
				t.Errorf("notation verify %s printed:\n%s", d, out)
			}
		}
	})

	t.Run("a signature by an undelegated key fails notation verify", func(t *testing.T) {
		if out, err := verify(malloryOnly); err == nil {
			t.Fatalf("notation verify accepted mallory's signature:\n%s", out)
		}
	})

	t.Run("an Ed25519 key is refused with a clear error", func(t *testing.T) {
		out, err := alice.trustctl("notation", "setup", "edna", "--print")
		if err == nil || !strings.Contains(err.Error(), "Ed25519, and notation signs only with RSA and ECDSA keys") {
			t.Fatalf("trustctl notation setup of an Ed25519 key: %v\n%s", err, out)
		}
	})

	t.Run("bob's revocation reaches notation verify when the policy is written again", func(t *testing.T) {
		st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")
		if _, err := verify(bobOnly); err != nil {
			t.Fatalf("before the policy is written again, notation verify still trusts bob (its documented limit): %v", err)
		}
		res := writePolicy(t).Repositories[0]
		if len(res.Trusted) != 1 || res.Trusted[0].KeyID != aliceID {
			t.Fatalf("trusted %+v after bob was revoked, want alice alone", res.Trusted)
		}
		if out, err := verify(bobOnly); err == nil {
			t.Fatalf("notation verify accepted bob's signature after his key was revoked and the policy written again:\n%s", out)
		}
		if _, err := verify(v1); err != nil {
			t.Errorf("alice's signature no longer verifies: %v", err)
		}
	})
}

// notationPolicyOutput is what trustctl notation policy --output json prints.
type notationPolicyOutput struct {
	Dir          string `json:"dir"`
	Repositories []struct {
		Scope   string `json:"scope"`
		Store   string `json:"trustStore"`
		Trusted []struct {
			KeyID string `json:"keyID"`
			From  string `json:"from"`
		} `json:"trusted"`
		Missing []string `json:"missing"`
	} `json:"repositories"`
}

// TestNotationInAnEnforcedRepository has the registry's gate admit what
// notation v1.3.2 pushes when it signs with a delegated key through the
// plugin, in both of its modes (the referrers-tag index it writes by default,
// and the referrers API), and refuse a signature by an undelegated key.
func TestNotationInAnEnforcedRepository(t *testing.T) {
	t.Parallel()
	notationPlugin(t)
	st := startStack(t, "--trust-refresh", "1s")
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "keys", "generate", "mallory")
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")
	signer := newNotationUser(t, st, st.Home, "SIGNET_PASSPHRASE="+e2ePassphrase)
	for _, key := range []string{"alice", "mallory"} {
		if out, err := signer.trustctl("notation", "setup", key); err != nil {
			t.Fatal(err, out)
		}
	}
	push := func(t *testing.T, tag string) string {
		t.Helper()
		img := newImage(t, "notation-enforced-"+tag, newLayer(t, "app/"+tag, 4<<10))
		st.trustctl(t, "push", writeLayout(t, img), st.Addr+"/acme/app:"+tag, "--key", "alice")
		return img.ManifestDigest
	}
	ref := func(d string) string { return st.Addr + "/acme/app@" + d }
	tagIndex := func(t *testing.T, d string) int {
		t.Helper()
		raw, _, err := st.admin().getManifest("acme/app", strings.Replace(d, ":", "-", 1))
		if err != nil {
			t.Fatal(err)
		}
		var ix struct {
			Manifests []json.RawMessage `json:"manifests"`
		}
		if err := json.Unmarshal(raw, &ix); err != nil {
			t.Fatal(err)
		}
		return len(ix.Manifests)
	}
	verifier := newNotationUser(t, st, st.Home)
	if out, err := verifier.trustctl("notation", "policy", st.Addr+"/acme/app", "--dir", verifier.config); err != nil {
		t.Fatal(err, out)
	}
	verify := func(t *testing.T, d string) {
		t.Helper()
		out, err := verifier.notation.try("verify", "--insecure-registry", ref(d))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "Successfully verified") {
			t.Fatalf("notation verify printed:\n%s", out)
		}
	}

	t.Run("alice's signatures are admitted with the referrers-tag index notation writes by default, and verify", func(t *testing.T) {
		d := push(t, "tagged")
		signer.notation.run(t, "sign", "--insecure-registry", "--key", "alice", ref(d))
		if n := tagIndex(t, d); n != 1 {
			t.Fatalf("the referrers-tag index lists %d signatures, want 1", n)
		}
		// A second signature makes notation PUT a new index and DELETE the
		// superseded one.
		signer.notation.run(t, "sign", "--insecure-registry", "--key", "alice", "--signature-format", "cose", ref(d))
		if n := tagIndex(t, d); n != 2 {
			t.Fatalf("the referrers-tag index lists %d signatures after a second one, want 2", n)
		}
		verify(t, d)
	})

	t.Run("alice's signature is admitted through the referrers API, and verifies", func(t *testing.T) {
		d := push(t, "api")
		signer.notation.run(t, "sign", "--insecure-registry", "--key", "alice", "--force-referrers-tag=false", ref(d))
		verify(t, d)
	})

	t.Run("a signature by an undelegated key is DENIED in both modes", func(t *testing.T) {
		d := push(t, "mallory")
		for _, mode := range []string{"--force-referrers-tag=true", "--force-referrers-tag=false"} {
			out := signer.notation.mustFail(t, "sign", "--insecure-registry", "--key", "mallory", mode, ref(d))
			if !strings.Contains(out, "403") && !strings.Contains(out, "DENIED") {
				t.Errorf("notation sign by mallory (%s) failed, but not with the gate's denial:\n%s", mode, out)
			}
		}
		if out, err := verifier.notation.try("verify", "--insecure-registry", ref(d)); err == nil {
			t.Fatalf("notation verify passed for an image only mallory tried to sign:\n%s", out)
		}
		if out := verifier.notation.run(t, "ls", "--insecure-registry", ref(d)); strings.Contains(out, "sha256:") && !strings.Contains(out, "no associated signature") {
			t.Errorf("the registry lists a signature of an image only mallory tried to sign:\n%s", out)
		}
	})
}
