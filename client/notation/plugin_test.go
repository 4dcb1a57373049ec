package notation_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/notaryproject/notation-plugin-framework-go/plugin"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-oss/signet/client/notation"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/signer/agent"
)

// writerFunc is an io.Writer of a function.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// The plugin protocol is tested on the built notation-signet, with requests as
// notation v1.3 sends them (its plugin/proto types), on stdin.

// testPassphrase is the password of keys/testdata/test-cosign-1.key, a cosign
// key, which is a Signet key file as it is: tests use it as alice's key so that
// no test process runs scrypt (slow under the race detector); only the plugin
// does, built without it.
const testPassphrase = "pw"

var (
	pluginBuild    sync.Once
	pluginBin      string
	pluginBuildErr error
)

func pluginPath(t *testing.T) string {
	t.Helper()
	pluginBuild.Do(func() {
		dir, err := os.MkdirTemp("", "notation-signet-")
		if err != nil {
			pluginBuildErr = err
			return
		}
		pluginBin = filepath.Join(dir, "notation-signet")
		out, err := exec.Command("go", "build", "-o", pluginBin, "github.com/signet-oss/signet/cmd/notation-signet").CombinedOutput()
		if err != nil {
			pluginBuildErr = errors.New("go build ./cmd/notation-signet: " + err.Error() + "\n" + string(out))
		}
	})
	if pluginBuildErr != nil {
		t.Fatal(pluginBuildErr)
	}
	return pluginBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginBin != "" {
		os.RemoveAll(filepath.Dir(pluginBin))
	}
	os.Exit(code)
}

// pluginRun runs the plugin's command with req on stdin, in a session of its
// own (no controlling terminal), with env as its whole environment besides
// PATH.
func pluginRun(t *testing.T, env []string, command string, req any) pluginResult {
	t.Helper()
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pluginPath(t), command)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return pluginResult{stdout.Bytes(), stderr.Bytes(), err == nil}
}

// pluginResult is what the plugin wrote, and whether it exited 0.
type pluginResult struct {
	stdout, stderr []byte
	ok             bool
}

// pluginError parses the error notation reads from the plugin's stderr.
func pluginError(t *testing.T, r pluginResult) plugin.Error {
	t.Helper()
	if r.ok {
		t.Fatalf("the plugin succeeded, want an error; stdout: %s", r.stdout)
	}
	if len(r.stdout) != 0 {
		t.Errorf("the plugin failed but wrote on stdout: %s", r.stdout)
	}
	var e plugin.Error
	if err := json.Unmarshal(r.stderr, &e); err != nil || e.ErrCode == "" {
		t.Fatalf("stderr is not the plugin spec's error JSON: %q (%v)", r.stderr, err)
	}
	return e
}

// newHome makes a SIGNET_HOME whose key store holds alice, an ECDSA P-256 key
// under testPassphrase, and the public half of edna, an Ed25519 key (all that
// describe-key reads). It returns alice's public key.
func newHome(t *testing.T) (home string, alice *ecdsa.PublicKey) {
	t.Helper()
	home = t.TempDir()
	dir := filepath.Join(home, "keys")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".key", ".pub"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "keys", "testdata", "test-cosign-1"+ext))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "alice"+ext), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	edna, err := signer.NewKey("edna", signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "edna.pub"), edna.PublicPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ks := signer.NewFileKeyStore(dir, nil)
	info, err := ks.Public(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(info.PublicPEM)
	if err != nil {
		t.Fatal(err)
	}
	return home, pub.(*ecdsa.PublicKey)
}

func TestPluginMetadata(t *testing.T) {
	t.Parallel()
	r := pluginRun(t, nil, "get-plugin-metadata", plugin.GetMetadataRequest{})
	if !r.ok {
		t.Fatalf("get-plugin-metadata failed: %s", r.stderr)
	}
	var md plugin.GetMetadataResponse
	if err := json.Unmarshal(r.stdout, &md); err != nil {
		t.Fatal(err)
	}
	// notation requires the name to match the file's (notation-<name>), a
	// semantic version, and the contract version it speaks.
	if md.Name != "signet" || md.Version == "" || !slices.Contains(md.SupportedContractVersions, "1.0") ||
		!slices.Equal(md.Capabilities, []plugin.Capability{plugin.CapabilitySignatureGenerator}) {
		t.Errorf("metadata %+v", md)
	}
}

func TestPluginDescribeKey(t *testing.T) {
	t.Parallel()
	home, _ := newHome(t)
	env := []string{"SIGNET_HOME=" + home}
	t.Run("an ECDSA P-256 key is EC-256, read without its passphrase", func(t *testing.T) {
		r := pluginRun(t, env, "describe-key", plugin.DescribeKeyRequest{ContractVersion: "1.0", KeyID: "alice"})
		if !r.ok {
			t.Fatalf("describe-key failed: %s", r.stderr)
		}
		var res plugin.DescribeKeyResponse
		if err := json.Unmarshal(r.stdout, &res); err != nil || res.KeyID != "alice" || res.KeySpec != plugin.KeySpecEC256 {
			t.Errorf("describe-key answered %s (%v)", r.stdout, err)
		}
	})
	for _, c := range []struct {
		name, key, contract string
		code                plugin.ErrorCode
		says                string
	}{
		{"an Ed25519 key is refused, saying notation cannot use it", "edna", "1.0", plugin.ErrorCodeValidation, "Ed25519, and notation signs only with RSA and ECDSA keys"},
		{"a key the store lacks is a validation error", "nobody", "1.0", plugin.ErrorCodeValidation, `no Signet key "nobody"`},
		{"a name that is no key name is a validation error", "../keys/alice", "1.0", plugin.ErrorCodeValidation, "no Signet key"},
		{"another contract version is refused", "alice", "2.0", plugin.ErrorCodeUnsupportedContractVersion, `"2.0"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := pluginError(t, pluginRun(t, env, "describe-key", plugin.DescribeKeyRequest{ContractVersion: c.contract, KeyID: c.key}))
			if e.ErrCode != c.code || !bytes.Contains([]byte(e.Message), []byte(c.says)) {
				t.Errorf("error %+v, want %s saying %q", e, c.code, c.says)
			}
		})
	}
}

func TestPluginGenerateSignature(t *testing.T) {
	t.Parallel()
	home, alice := newHome(t)
	keyDir := filepath.Join(home, "keys")
	keyFile, err := os.ReadFile(filepath.Join(keyDir, "alice.key"))
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`eyJhbGciOiJFUzI1NiJ9.eyJ0YXJnZXRBcnRpZmFjdCI6e319`)
	request := func(config map[string]string) plugin.GenerateSignatureRequest {
		return plugin.GenerateSignatureRequest{ContractVersion: "1.0", KeyID: "alice", KeySpec: plugin.KeySpecEC256,
			Hash: plugin.HashAlgorithmSHA256, Payload: payload, PluginConfig: config}
	}
	// checkSignature checks an answer as notation's envelopes use it: R || S
	// over SHA-256 of the payload, verifying with the leaf certificate's key,
	// which is alice's, and that certificate the one kept with her key.
	checkSignature := func(t *testing.T, out []byte) *x509.Certificate {
		t.Helper()
		var res plugin.GenerateSignatureResponse
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		if res.KeyID != "alice" || res.SigningAlgorithm != plugin.SignatureAlgorithmECDSA_SHA256 || len(res.CertificateChain) != 1 || len(res.Signature) != 64 {
			t.Fatalf("answer: key %q, algorithm %q, %d certificates, %d-byte signature", res.KeyID, res.SigningAlgorithm, len(res.CertificateChain), len(res.Signature))
		}
		cert, err := x509.ParseCertificate(res.CertificateChain[0])
		if err != nil {
			t.Fatal(err)
		}
		pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
		if !ok || !pub.Equal(alice) {
			t.Fatal("the leaf certificate does not certify alice's key")
		}
		h := sha256.Sum256(payload)
		r, s := new(big.Int).SetBytes(res.Signature[:32]), new(big.Int).SetBytes(res.Signature[32:])
		if !ecdsa.Verify(pub, h[:], r, s) {
			t.Fatal("the signature is not R || S over SHA-256 of the payload")
		}
		if kept, ok, err := notation.ReadCertificate(keyDir, "alice", alice); err != nil || !ok || !kept.Equal(cert) {
			t.Fatalf("the chain's certificate is not the one kept with the key (%v)", err)
		}
		return cert
	}

	var first *x509.Certificate
	t.Run("with SIGNET_PASSPHRASE, it signs and returns the chain [the key's certificate]", func(t *testing.T) {
		r := pluginRun(t, []string{"SIGNET_HOME=" + home, "SIGNET_PASSPHRASE=" + testPassphrase}, "generate-signature", request(nil))
		if !r.ok {
			t.Fatalf("generate-signature failed: %s", r.stderr)
		}
		first = checkSignature(t, r.stdout)
	})
	t.Run("with the passphrase in a file named by the plugin config, the same certificate", func(t *testing.T) {
		pass := filepath.Join(t.TempDir(), "pass")
		if err := os.WriteFile(pass, []byte(testPassphrase+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := pluginRun(t, []string{"SIGNET_HOME=" + home}, "generate-signature", request(map[string]string{notation.PassphraseFileConfig: pass}))
		if !r.ok {
			t.Fatalf("generate-signature failed: %s", r.stderr)
		}
		if cert := checkSignature(t, r.stdout); first != nil && !cert.Equal(first) {
			t.Error("a second signature came with another certificate")
		}
	})
	t.Run("a wrong passphrase is ACCESS_DENIED", func(t *testing.T) {
		e := pluginError(t, pluginRun(t, []string{"SIGNET_HOME=" + home, "SIGNET_PASSPHRASE=wrong"}, "generate-signature", request(nil)))
		if e.ErrCode != plugin.ErrorCodeAccessDenied {
			t.Errorf("error %+v, want ACCESS_DENIED", e)
		}
	})
	t.Run("through the signing agent that holds the key, it signs without the passphrase", func(t *testing.T) {
		log := &strings.Builder{}
		var logMu sync.Mutex
		a, err := agent.Listen(agent.Config{
			Socket: filepath.Join(t.TempDir(), "agent", "sock"),
			Open: func(p []byte) signer.KeyStore {
				p = append([]byte{}, p...)
				return signer.NewFileKeyStore(keyDir, func(bool) ([]byte, error) { return p, nil })
			},
			Log: slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
				logMu.Lock()
				defer logMu.Unlock()
				return log.Write(b)
			}), nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); a.Serve(ctx) }()
		defer func() { cancel(); <-done }()
		c, err := agent.Dial(a.Socket())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Add("alice", []byte(testPassphrase)); err != nil {
			t.Fatal(err)
		}
		r := pluginRun(t, []string{"SIGNET_HOME=" + home, "SIGNET_PASSPHRASE=wrong", agent.SocketEnv + "=" + a.Socket()}, "generate-signature", request(nil))
		if !r.ok {
			t.Fatalf("generate-signature through the agent failed: %s", r.stderr)
		}
		checkSignature(t, r.stdout)
		logMu.Lock()
		defer logMu.Unlock()
		if !strings.Contains(log.String(), `key=alice`) || !strings.Contains(log.String(), `for="notation signature"`) {
			t.Errorf("the agent did not log the notation signature:\n%s", log.String())
		}
	})
	t.Run("without a passphrase source or a terminal, it says how to give one, never reading stdin", func(t *testing.T) {
		e := pluginError(t, pluginRun(t, []string{"SIGNET_HOME=" + home}, "generate-signature", request(nil)))
		if e.ErrCode != plugin.ErrorCodeGeneric || !bytes.Contains([]byte(e.Message), []byte("set SIGNET_PASSPHRASE, or pass --plugin-config passphrase-file=PATH")) {
			t.Errorf("error %+v", e)
		}
	})
	t.Run("a key spec or hash other than the key's is a validation error", func(t *testing.T) {
		req := request(nil)
		req.KeySpec, req.Hash = plugin.KeySpecEC384, plugin.HashAlgorithmSHA384
		e := pluginError(t, pluginRun(t, []string{"SIGNET_HOME=" + home, "SIGNET_PASSPHRASE=" + testPassphrase}, "generate-signature", req))
		if e.ErrCode != plugin.ErrorCodeValidation {
			t.Errorf("error %+v, want VALIDATION_ERROR", e)
		}
	})
	t.Run("the private key is written nowhere: the key store holds the sealed key, its public key and the certificate", func(t *testing.T) {
		entries, err := os.ReadDir(keyDir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if want := []string{"alice.crt", "alice.key", "alice.pub", "edna.pub"}; !slices.Equal(names, want) {
			t.Errorf("key store files %v, want %v", names, want)
		}
		if now, err := os.ReadFile(filepath.Join(keyDir, "alice.key")); err != nil || !bytes.Equal(now, keyFile) {
			t.Error("alice.key changed")
		}
	})
}
