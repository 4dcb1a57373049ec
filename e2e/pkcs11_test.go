package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-oss/signet/internal/softhsmtest"
)

// TestTokenKeys drives keys in a PKCS#11 token (SoftHSM2, a token directory
// under the test's temporary directory) through the built trustctl and a real
// `trustctl up`: a publisher key generated in the token is delegated acme/hsm,
// trustctl push signs with it, the registry admits the image and the real
// cosign verifies it with the exported public key; an org whose org key is in
// the token delegates a repository; notation signs with the token key through
// the plugin; a wrong PIN fails with exit 1 and a clear message, once, and the
// token takes the right PIN after it; no command writes the private key out.
func TestTokenKeys(t *testing.T) {
	t.Parallel()
	began := time.Now()
	hsm := softhsmtest.New(t)
	const pin = "e2e-token-pin-4711"
	uri := hsm.InitToken(t, "signet-e2e", pin)
	env := []string{hsm.Env(), "SIGNET_PKCS11_PIN=" + pin}
	st := startStack(t)
	ctl := func(t *testing.T, env []string, args ...string) string {
		t.Helper()
		code, out := st.trustctlCode(t, env, args...)
		if code != 0 {
			t.Fatalf("trustctl %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
	push := func(t *testing.T, env []string, repo, tag, key string) (string, int, string) {
		t.Helper()
		img := newImage(t, repo+":"+newPassword(), newLayer(t, "f.bin", 512))
		dir := filepath.Join(t.TempDir(), "oci")
		writeOCILayout(t, dir, "", img)
		code, out := st.trustctlCode(t, env, "push", dir, st.Addr+"/"+repo+":"+tag, "--key", key)
		return img.ManifestDigest, code, out
	}

	ctl(t, env, "keys", "generate", "publisher", "--pkcs11", uri)
	ctl(t, nil, "org", "create", "acme")
	ctl(t, nil, "org", "delegate", "acme/hsm", "--key", "publisher")

	t.Run("a wrong PIN fails once with exit 1 and a clear message that does not quote it", func(t *testing.T) {
		const wrong = "wrong-token-pin-0000"
		_, code, out := push(t, []string{hsm.Env(), "SIGNET_PKCS11_PIN=" + wrong}, "acme/hsm", "v1", "publisher")
		if code != 1 || !strings.Contains(out, `token "signet-e2e": wrong PIN`) || strings.Contains(out, wrong) {
			t.Fatalf("push with a wrong PIN: exit %d, want 1 with a message naming the token and not the PIN:\n%s", code, out)
		}
		t.Logf("push with a wrong PIN: exit %d\n%s", code, out)
	})
	t.Run("push signs in the token, the registry admits, cosign verifies with the exported key", func(t *testing.T) {
		d, code, out := push(t, env, "acme/hsm", "v1", "publisher")
		if code != 0 {
			t.Fatalf("push with the right PIN after a wrong one: exit %d\n%s", code, out)
		}
		if raw, _, err := st.admin().getManifest("acme/hsm", "v1"); err != nil || sha256Digest(raw) != d {
			t.Fatalf("the registry serves acme/hsm:v1 as %v, %v; want the pushed manifest", err, sha256Digest(raw))
		}
		cosign := newTool(t, "cosign", "DOCKER_CONFIG="+st.Home)
		pub := st.exportKey(t, "publisher", cosign.dir)
		vout, err := cosign.try("verify", "--key", pub, "--insecure-ignore-tlog", "--offline", "--allow-insecure-registry", st.Addr+"/acme/hsm@"+d)
		if err != nil {
			t.Fatalf("cosign verify --key %s: %v", filepath.Base(pub), err)
		}
		if !strings.Contains(vout, d) {
			t.Errorf("cosign verify printed no payload naming %s:\n%s", d, vout)
		}
	})
	t.Run("an org whose org key is in the token delegates a repository", func(t *testing.T) {
		ctl(t, env, "keys", "generate", "beta-org", "--pkcs11", strings.Replace(uri, "?", ";object=beta-org?", 1))
		ctl(t, env, "org", "create", "beta", "--key", "beta-org")
		ctl(t, env, "org", "delegate", "beta/app", "--key", "publisher")
		if _, code, out := push(t, env, "beta/app", "v1", "publisher"); code != 0 {
			t.Fatalf("push to beta/app, delegated by the token's org key: exit %d\n%s", code, out)
		}
	})
	t.Run("notation signs through the plugin in the token, the gate admits it, notation verifies", func(t *testing.T) {
		notationPlugin(t)
		d, code, out := push(t, env, "acme/hsm", "notation", "publisher")
		if code != 0 {
			t.Fatalf("push: exit %d\n%s", code, out)
		}
		publisher := newNotationUser(t, st, st.Home, append([]string{"SIGNET_PASSPHRASE=" + e2ePassphrase}, env...)...)
		if out, err := publisher.trustctl("notation", "setup", "publisher"); err != nil {
			t.Fatal(err, out)
		}
		publisher.notation.run(t, "sign", "--insecure-registry", "--key", "publisher", st.Addr+"/acme/hsm@"+d)
		verifier := newNotationUser(t, st, st.Home)
		if out, err := verifier.trustctl("notation", "policy", st.Addr+"/acme/hsm", "--dir", verifier.config); err != nil {
			t.Fatal(err, out)
		}
		if out := verifier.notation.run(t, "verify", "--insecure-registry", st.Addr+"/acme/hsm@"+d); !strings.Contains(out, "Successfully verified") {
			t.Fatalf("notation verify printed:\n%s", out)
		}
	})
	t.Run("no command writes the private key out", func(t *testing.T) {
		out := ctl(t, nil, "keys", "export", "publisher")
		if !strings.HasPrefix(out, "-----BEGIN PUBLIC KEY-----") || strings.Contains(out, "PRIVATE") {
			t.Errorf("keys export printed:\n%s", out)
		}
		for _, name := range []string{"publisher", "beta-org"} {
			if _, err := os.Stat(filepath.Join(st.Home, "keys", name+".key")); err == nil {
				t.Errorf("the key store holds a private key file for the token key %s", name)
			}
			b, err := os.ReadFile(filepath.Join(st.Home, "keys", name+".pkcs11"))
			if err != nil || strings.Contains(string(b), pin) || !strings.Contains(string(b), "pkcs11:token=signet-e2e") {
				t.Errorf("%s.pkcs11: %v\n%s", name, err, b)
			}
		}
		list := ctl(t, nil, "keys", "list")
		if !strings.Contains(list, "publisher") || !strings.Contains(list, "token") {
			t.Errorf("keys list does not show publisher as a token key:\n%s", list)
		}
	})
	t.Logf("the token suite took %s", time.Since(began).Round(time.Millisecond))
}
