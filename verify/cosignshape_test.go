package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/internal/cosigntest"
	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

// Cosign's optional layer annotations, in the forms cosign writes them (its
// bundle.RekorBundle and bundle.RFC3161Timestamp).
const (
	rekorBundle  = `{"SignedEntryTimestamp":"MEUCIQDx5Y7ShsOBcdbMsrPDGW2ZGb0PgJrYFSn6Z5Pu5bWHWwIgBjgeGa9mL+0zlN+gPmSXfuThpP9Xbwhr5kPaLHjNTyg=","Payload":{"body":"eyJhcGlWZXJzaW9uIjoiMC4wLjEiLCJraW5kIjoiaGFzaGVkcmVrb3JkIn0=","integratedTime":1733212800,"logIndex":151832449,"logID":"c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"}}`
	tsaTimestamp = `{"SignedRFC3161Timestamp":"MIIBzDADAgEAMIIBwwYJKoZIhvcNAQcCoIIBtDCCAbACAQMxDTALBglghkgBZQMEAgEw"}`
)

// certificateFor issues a certificate for pub from a throwaway CA, as a PKI
// would for a key held in hardware, and returns it and the CA's, in PEM.
func certificateFor(t *testing.T, pub any) (cert, ca string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA, never trusted"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "test signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
}

// TestSignatureArtifactShape checks the shape a signature artifact must have
// (the table in verify/cosignshape.go): cosign's own artifacts and every
// variant cosign writes pass; each field a signer does not write is refused.
func TestSignatureArtifactShape(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	payload := cosigntest.Fixture(t, "payload.json")
	b := cosigntest.Blobs{digest.FromBytes(payload): payload}
	pub1, err := cryptoutils.UnmarshalPEMToPublicKey(cosigntest.Fixture(t, "test-cosign-1.pub"))
	if err != nil {
		t.Fatal(err)
	}
	keys := []*metadata.Key{cosigntest.Key(t, "test-cosign-1.pub"), cosigntest.Key(t, "test-cosign-2.pub")}
	cert, ca := certificateFor(t, pub1)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherCert, _ := certificateFor(t, &otherKey.PublicKey)

	// base is cosign's one-signature artifact, decoded for editing.
	base := func() map[string]any {
		var m map[string]any
		if err := json.Unmarshal(cosigntest.Fixture(t, "one-signature.manifest.json"), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	layer := func(m map[string]any, i int) map[string]any { return m["layers"].([]any)[i].(map[string]any) }
	config := func(m map[string]any) map[string]any { return m["config"].(map[string]any) }
	annotate := func(k, v string) func(map[string]any) {
		return func(m map[string]any) { layer(m, 0)["annotations"].(map[string]any)[k] = v }
	}
	set := func(field string, v any) func(map[string]any) { return func(m map[string]any) { m[field] = v } }
	setIn := func(in func(map[string]any) map[string]any, field string, v any) func(map[string]any) {
		return func(m map[string]any) { in(m)[field] = v }
	}
	descriptor := map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 2, "digest": digest.FromString("x").String()}
	emptyConfig := func(m map[string]any) {
		m["config"] = map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}
	}
	// build encodes m, with the config derived from its layers unless keep.
	build := func(m map[string]any, derive bool) []byte {
		if derive {
			withDerivedConfig(t, m)
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	t.Run("admitted", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			edit   func(map[string]any)
			derive bool
		}{
			{"cosign's artifact as cosign wrote it", func(map[string]any) {}, false},
			{"one without the manifest mediaType field", func(m map[string]any) { delete(m, "mediaType") }, false},
			{"one in Docker's media types (COSIGN_DOCKER_MEDIA_TYPES=1)", func(m map[string]any) {
				m["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json"
				config(m)["mediaType"] = "application/vnd.docker.container.image.v1+json"
			}, false},
			{"one with the OCI empty config", emptyConfig, false},
			{"one with a Rekor bundle", annotate(verify.CosignBundleAnnotation, rekorBundle), true},
			{"one with an RFC 3161 timestamp", annotate(verify.CosignTimestampAnnotation, tsaTimestamp), true},
			{"one with the key's certificate and its chain", func(m map[string]any) {
				annotate(verify.CosignCertificateAnnotation, cert)(m)
				annotate(verify.CosignChainAnnotation, ca)(m)
			}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := base()
				tc.edit(m)
				if err := verify.CosignArtifact(ctx, build(m, tc.derive), b.Get, verify.NewKeys(keys...), "acme/app", cosigntest.Digest); err != nil {
					t.Errorf("refused: %v", err)
				}
			})
		}
		if err := verify.CosignArtifact(ctx, cosigntest.Fixture(t, "two-signatures.manifest.json"), b.Get, verify.NewKeys(keys...), "acme/app", cosigntest.Digest); err != nil {
			t.Errorf("cosign's co-signed artifact refused: %v", err)
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			edit   func(map[string]any)
			derive bool
			raw    func(string) string
			want   string
		}{
			{"a subject", set("subject", descriptor), false, nil, `field "subject"`},
			{"manifest annotations", set("annotations", map[string]any{"org.example": "x"}), false, nil, `field "annotations"`},
			{"an artifactType", set("artifactType", "application/example"), false, nil, `field "artifactType"`},
			{"a manifests list", set("manifests", []any{}), false, nil, `field "manifests"`},
			{"an unknown top-level field", set("extra", 1), false, nil, `field "extra"`},
			{"config urls", setIn(config, "urls", []any{"http://example.com/x"}), false, nil, `field "urls"`},
			{"a config platform", setIn(config, "platform", map[string]any{"os": "linux", "architecture": "amd64"}), false, nil, `field "platform"`},
			{"config data", setIn(config, "data", "e30="), false, nil, `field "data"`},
			{"config annotations", setIn(config, "annotations", map[string]any{"a": "b"}), false, nil, `field "annotations"`},
			{"a config artifactType", setIn(config, "artifactType", "application/example"), false, nil, `field "artifactType"`},
			{"a config pointing at another blob", setIn(config, "digest", digest.FromString("any blob").String()), false, nil, "not the one cosign derives"},
			{"a config of another size", setIn(config, "size", 234), false, nil, "not the one cosign derives"},
			{"a config of another media type", setIn(config, "mediaType", "application/octet-stream"), false, nil, "not the application/vnd.oci.image.config.v1+json"},
			{"a Docker config in an OCI manifest", setIn(config, "mediaType", "application/vnd.docker.container.image.v1+json"), false, nil, "not the"},
			{"an OCI config in a Docker manifest", set("mediaType", "application/vnd.docker.distribution.manifest.v2+json"), false, nil, "not the"},
			{"the empty config in a Docker manifest", func(m map[string]any) {
				emptyConfig(m)
				m["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json"
			}, false, nil, "not the"},
			{"an empty config of another digest", func(m map[string]any) {
				emptyConfig(m)
				config(m)["digest"] = digest.FromString("{ }").String()
			}, false, nil, "OCI empty config"},
			{"no config", func(m map[string]any) { delete(m, "config") }, false, nil, "no config"},
			{"layer urls", setIn(func(m map[string]any) map[string]any { return layer(m, 0) }, "urls", []any{"http://example.com/x"}), false, nil, `field "urls"`},
			{"a layer platform", setIn(func(m map[string]any) map[string]any { return layer(m, 0) }, "platform", map[string]any{"os": "linux"}), false, nil, `field "platform"`},
			{"layer data", setIn(func(m map[string]any) map[string]any { return layer(m, 0) }, "data", "e30="), false, nil, `field "data"`},
			{"a layer artifactType", setIn(func(m map[string]any) map[string]any { return layer(m, 0) }, "artifactType", "x/y"), false, nil, `field "artifactType"`},
			{"a layer annotation a signer does not write", annotate("org.opencontainers.image.title", "x"), false, nil, "which a signer does not write"},
			{"a layer of another media type", setIn(func(m map[string]any) map[string]any { return layer(m, 0) }, "mediaType", "application/octet-stream"), true, nil, "a layer of type"},
			{"a bundle that is not cosign's", annotate(verify.CosignBundleAnnotation, `{"SignedEntryTimestamp":"AA==","Payload":{"body":"AA==","integratedTime":1,"logIndex":1,"logID":"ab"},"extra":"x"}`), true, nil, `field "extra"`},
			{"a bundle that is not JSON", annotate(verify.CosignBundleAnnotation, "any bytes at all"), true, nil, "bundle"},
			{"a timestamp that is not cosign's", annotate(verify.CosignTimestampAnnotation, `{"SignedRFC3161Timestamp":"not base64!"}`), true, nil, "base64"},
			{"a certificate that is not PEM", annotate(verify.CosignCertificateAnnotation, "any bytes at all"), true, nil, "certificate"},
			{"a certificate with bytes after it", annotate(verify.CosignCertificateAnnotation, cert+"and more"), true, nil, "not a PEM certificate"},
			{"a certificate for another key", annotate(verify.CosignCertificateAnnotation, otherCert), true, nil, "another key"},
			{"a chain that is not PEM", annotate(verify.CosignChainAnnotation, "any bytes at all"), true, nil, "chain"},
			{"an optional annotation over 64 KiB", annotate(verify.CosignChainAnnotation, strings.Repeat(ca, 64<<10/len(ca)+1)), true, nil, "over 65536"},
			{"a signature that is not base64", annotate(signer.CosignSignatureAnnotation, "not base64!"), true, nil, "not base64"},
			{"two signatures by one key", func(m map[string]any) {
				m["layers"] = append(m["layers"].([]any), layer(m, 0))
			}, true, nil, "same key"},
			{"schemaVersion 1", set("schemaVersion", 1), false, nil, "schemaVersion 1"},
			{"an index media type", set("mediaType", "application/vnd.oci.image.index.v1+json"), false, nil, "not an image manifest"},
			{"a field twice", nil, false, func(s string) string {
				// The second config is the one encoding/json reads; another
				// reader may take the first.
				return strings.Replace(s, `{"config":`, `{"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"`+digest.FromString("{}").String()+`"},"config":`, 1)
			}, "twice"},
			{"a field in another case", nil, false, func(s string) string { return strings.Replace(s, `"config"`, `"Config"`, 1) }, `field "Config"`},
			{"an annotation twice", nil, true, func(s string) string {
				return strings.Replace(s, `"annotations":{`, `"annotations":{"dev.cosignproject.cosign/signature":"AA==",`, 1)
			}, "twice"},
			{"more JSON after the manifest", nil, false, func(s string) string { return s + "{}" }, "more JSON"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := base()
				if tc.edit != nil {
					tc.edit(m)
				}
				manifest := build(m, tc.derive)
				if tc.raw != nil {
					manifest = []byte(tc.raw(string(manifest)))
				}
				err := verify.CosignArtifact(ctx, manifest, b.Get, verify.NewKeys(keys...), "acme/app", cosigntest.Digest)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("VerifyCosignSignature = %v, want an error saying %q", err, tc.want)
				}
			})
		}
	})
}

// TestCheckCosignArtifactReportsEachSignature: with one of two signers' keys
// gone, the artifact no longer verifies as a whole, and each signature says
// whether it does on its own, with its key and its signature in a form that
// an ECDSA variant of it shares.
func TestCheckCosignArtifactReportsEachSignature(t *testing.T) {
	t.Parallel()
	payload := cosigntest.Fixture(t, "payload.json")
	b := cosigntest.Blobs{digest.FromBytes(payload): payload}
	first := cosigntest.Key(t, "test-cosign-1.pub")
	sigs, err := verify.CheckCosignArtifact(context.Background(), cosigntest.Fixture(t, "two-signatures.manifest.json"), b.Get, verify.NewKeys(first), "acme/app", cosigntest.Digest)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := first.ID()
	if len(sigs) != 2 || sigs[0].Err != nil || sigs[0].KeyID != id || sigs[1].Err == nil || sigs[1].KeyID != "" {
		t.Fatalf("signatures %+v, want the first by %s and the second by no key given", sigs, id)
	}
	if err := sigs.Verified(); err == nil || !strings.Contains(err.Error(), "signature 1") {
		t.Errorf("Verified = %v, want signature 1 named", err)
	}
}

// FuzzSignatureArtifactShape feeds the shape check untrusted manifests: it must
// never panic, and whatever it accepts has only the fields a signer writes and
// the config cosign derives from its layers, or the empty one.
func FuzzSignatureArtifactShape(f *testing.F) {
	for _, name := range []string{"one-signature.manifest.json", "two-signatures.manifest.json"} {
		f.Add(cosigntest.Fixture(f, name))
	}
	f.Add([]byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":240,"digest":"sha256:52d29ae9ffb52e4127d53a563bcef60c57fc1165d85fb9887bd2adf08a05cbbc","annotations":{"dev.cosignproject.cosign/signature":"AA==","subject":"x"}}],"subject":{}}`))
	payload := cosigntest.Fixture(f, "payload.json")
	key := cosigntest.Key(f, "test-cosign-1.pub")
	blob := cosigntest.Blobs{digest.FromBytes(payload): payload}.Get
	allowedIn := func(t *testing.T, raw json.RawMessage, what string, allowed ...string) map[string]json.RawMessage {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("accepted, but %s is not an object: %v", what, err)
		}
		for k := range m {
			if !slices.Contains(allowed, k) {
				t.Fatalf("accepted with a field %q in %s", k, what)
			}
		}
		return m
	}
	f.Fuzz(func(t *testing.T, manifest []byte) {
		if _, err := verify.CheckCosignArtifact(context.Background(), manifest, blob, verify.NewKeys(key), "acme/app", cosigntest.Digest); err != nil {
			return
		}
		m := allowedIn(t, manifest, "the manifest", "schemaVersion", "mediaType", "config", "layers")
		var layers []json.RawMessage
		if err := json.Unmarshal(m["layers"], &layers); err != nil || len(layers) == 0 {
			t.Fatalf("accepted with layers %s", m["layers"])
		}
		for i, l := range layers {
			d := allowedIn(t, l, fmt.Sprintf("layer %d", i), "mediaType", "size", "digest", "annotations")
			allowedIn(t, d["annotations"], fmt.Sprintf("layer %d's annotations", i), signer.CosignSignatureAnnotation,
				verify.CosignBundleAnnotation, verify.CosignCertificateAnnotation, verify.CosignChainAnnotation, verify.CosignTimestampAnnotation)
		}
		c := allowedIn(t, m["config"], "the config", "mediaType", "size", "digest")
		var cd digest.Digest
		json.Unmarshal(c["digest"], &cd)
		derived, err := signer.CosignConfig(layers)
		if err != nil {
			t.Fatal(err)
		}
		if cd != digest.FromBytes(derived) && cd != "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" {
			t.Fatalf("accepted with config %s, neither the derived %s nor the empty one", cd, digest.FromBytes(derived))
		}
	})
}
