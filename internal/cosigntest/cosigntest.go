// Package cosigntest serves what cosign wrote to the tests of the packages
// that write cosign signature artifacts (signer) and check them (verify), so
// both compare against the same bytes: the fixtures in testdata/cosign-v2.6.5
// (signatures and attestations) and testdata/cosign-v3.1.3 (Sigstore bundle
// referrers), whose READMEs say how they were made, and the keys that signed
// them, which are with the project's other test keys in keys/testdata.
// Nothing here is used outside tests.
package cosigntest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/signer"
)

// Ref is the repository, with its registry host, the fixtures were signed in,
// and Digest the manifest digest they sign.
const (
	Ref    = "127.0.0.1:34259/acme/app"
	Digest = digest.Digest("sha256:3586862fbe852ee0c5938511eb0e6fab480a9851a4d937260a4f449bd42f6785")
	// AttestedDigest is the manifest digest the attestation fixtures attest,
	// in the same repository.
	AttestedDigest = digest.Digest("sha256:2252e9d9078c6416937949d4111c7a25cbc760bf40ee1332156e75b042fc4f92")
	// BundledDigest is the manifest digest cosign v3.1.3's bundles
	// (testdata/cosign-v3.1.3) sign and attest, in the same repository.
	BundledDigest = digest.Digest("sha256:b1f07f2e1d28ae310978665bff33c9adaca777adba2624183154d0d86f715525")
)

// Fixture reads a fixture by name: a key ("test-cosign-1.pub") from
// keys/testdata, a name with a directory ("cosign-v3.1.3/sign.bundle.json")
// from testdata, anything else from testdata/cosign-v2.6.5. It fails t when
// the file cannot be read.
func Fixture(t testing.TB, name string) []byte {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cosigntest: cannot locate its own source file")
	}
	dir := filepath.Join(filepath.Dir(file), "testdata", "cosign-v2.6.5")
	switch {
	case strings.Contains(name, "/"):
		dir = filepath.Join(filepath.Dir(file), "testdata")
	case strings.HasPrefix(name, "test-"):
		dir = filepath.Join(filepath.Dir(file), "..", "..", "keys", "testdata")
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Key is the TUF form of a public key cosign generated ("test-cosign-1.pub").
func Key(t testing.TB, name string) *metadata.Key {
	t.Helper()
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(Fixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Blobs serves an artifact's blobs by digest, as a registry would.
type Blobs map[digest.Digest][]byte

// Get returns blob d, or an error when it is not there.
func (b Blobs) Get(d digest.Digest) ([]byte, error) {
	if v, ok := b[d]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("blob %s unknown", d)
}

// Add adds the blobs of a signature artifact and returns b.
func (b Blobs) Add(a *signer.CosignArtifact) Blobs {
	for d, v := range a.Blobs {
		b[d] = v
	}
	return b
}
