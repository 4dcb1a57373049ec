//go:build cgo

package notation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"math/big"
	"path/filepath"
	"strings"
	"testing"

	"github.com/notaryproject/notation-plugin-framework-go/plugin"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-oss/signet/internal/softhsmtest"
	"github.com/signet-oss/signet/signer"
)

// TestPluginSignsWithATokenKey: the plugin signs with a key held in a PKCS#11
// token (SoftHSM2), the PIN from SIGNET_PKCS11_PIN; a wrong PIN is
// ACCESS_DENIED and the answer does not quote it.
func TestPluginSignsWithATokenKey(t *testing.T) {
	hsm := softhsmtest.New(t)
	t.Setenv("SOFTHSM2_CONF", hsm.Conf)
	const pin = "plugin-token-pin"
	uri := hsm.InitToken(t, "notation", pin)
	home := t.TempDir()
	ks := signer.NewFileKeyStore(filepath.Join(home, "keys"), nil).(signer.TokenKeyStore)
	info, err := ks.GenerateInToken(context.Background(), "release", uri+"&pin-value="+pin, "")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(info.PublicPEM)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`eyJhbGciOiJFUzI1NiJ9.eyJ0YXJnZXRBcnRpZmFjdCI6e319`)
	req := plugin.GenerateSignatureRequest{ContractVersion: "1.0", KeyID: "release", KeySpec: plugin.KeySpecEC256,
		Hash: plugin.HashAlgorithmSHA256, Payload: payload}
	env := []string{"SIGNET_HOME=" + home, hsm.Env()}

	t.Run("it signs in the token", func(t *testing.T) {
		r := pluginRun(t, append(env, signer.PKCS11PINEnv+"="+pin), "generate-signature", req)
		if !r.ok {
			t.Fatalf("generate-signature failed: %s", r.stderr)
		}
		var res plugin.GenerateSignatureResponse
		if err := json.Unmarshal(r.stdout, &res); err != nil || len(res.Signature) != 64 {
			t.Fatalf("answer %s: %v", r.stdout, err)
		}
		h := sha256.Sum256(payload)
		if !ecdsa.Verify(pub.(*ecdsa.PublicKey), h[:], new(big.Int).SetBytes(res.Signature[:32]), new(big.Int).SetBytes(res.Signature[32:])) {
			t.Fatal("the signature does not verify with the token key's public key")
		}
	})
	t.Run("a wrong PIN is ACCESS_DENIED, without the PIN", func(t *testing.T) {
		const wrong = "wrong-plugin-pin"
		e := pluginError(t, pluginRun(t, append(env, signer.PKCS11PINEnv+"="+wrong), "generate-signature", req))
		if e.ErrCode != plugin.ErrorCodeAccessDenied || strings.Contains(e.Message, wrong) {
			t.Errorf("error %+v, want ACCESS_DENIED not quoting the PIN", e)
		}
	})
}
