package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-oss/signet/signer"
	"github.com/signet-oss/signet/verify"
)

// TestGateSignatureArtifactsAndMediaTypes plays issue 12's attacks on the
// signature artifact and the media type against an enforcing `trustctl up`,
// as a robot with pull and push on acme/app and no signing key, read back by
// a robot that may only pull; and has the real cosign write artifacts, with
// its optional certificate annotations and in Docker's media types, which the
// gate admits.
func TestGateSignatureArtifactsAndMediaTypes(t *testing.T) {
	t.Parallel()
	st := startStack(t, "--trust-refresh", "1s")
	st.trustctl(t, "keys", "generate", "alice")
	st.trustctl(t, "org", "create", "acme")
	st.trustctl(t, "org", "delegate", "acme/app", "--key", "alice")
	robot := func(name, scope string) *regClient {
		out := st.ctl(t, "", "token", "create", "--org", "acme", "--scope", scope, "--ttl", "1h", "--name", name, "--output", "json")
		var r struct{ Name, Secret string }
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.Secret == "" {
			t.Fatalf("token create: %v\n%s", err, out)
		}
		return st.client(r.Name, r.Secret)
	}
	pusher := robot("pusher", "repository:acme/app:pull,push")
	reader := robot("reader", "repository:acme/app:pull")

	v1 := newImage(t, "sigshape-v1", newLayer(t, "sigshape/v1.bin", 8<<10))
	st.trustctl(t, "push", writeLayout(t, v1), st.Addr+"/acme/app:v1", "--key", "alice")
	sigTag := signer.CosignSignatureTag(digest.Digest(v1.ManifestDigest))

	t.Run("a signature artifact re-used with a config, annotations and a subject of the pusher's is DENIED, and its blob never served", func(t *testing.T) {
		admitted, _, err := pusher.getManifest("acme/app", sigTag)
		if err != nil {
			t.Fatal(err)
		}
		payload := []byte("#!/bin/sh\necho served as if signed\n")
		if err := pusher.pushBlob("acme/app", payload, uploadMonolithicPost); err != nil {
			t.Fatal(err)
		}
		fakeSubject := sha256Digest([]byte("a manifest nobody signed"))
		var m map[string]any
		if err := json.Unmarshal(admitted, &m); err != nil {
			t.Fatal(err)
		}
		m["config"] = map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256Digest(payload), "size": len(payload)}
		m["annotations"] = map[string]any{"org.example.note": "not signed"}
		m["subject"] = map[string]any{"mediaType": mediaTypeOCIManifest, "digest": fakeSubject, "size": 2}
		forged, _ := json.Marshal(m)
		for _, ref := range []string{sigTag, sha256Digest(forged)} {
			putDenied(t, pusher, "acme/app", ref, forged, "in the shape a signer writes")
		}
		if _, _, err := reader.do(reader.newRequest("GET", "/v2/acme/app/blobs/"+sha256Digest(payload), nil), http.StatusNotFound); err != nil {
			t.Errorf("the reader GETs the forged config blob: %v", err)
		}
		if got := manifestDigest(t, reader, "acme/app", sigTag); got != sha256Digest(admitted) {
			t.Errorf("%s serves %s, want the admitted %s", sigTag, got, sha256Digest(admitted))
		}
		_, body, err := reader.do(reader.newRequest("GET", "/v2/acme/app/referrers/"+fakeSubject, nil), http.StatusOK)
		if err != nil || strings.Contains(string(body), sha256Digest(forged)) {
			t.Errorf("referrers of the fake subject: %v %s", err, body)
		}
		if _, err := os.Stat(filepath.Join(st.registryData(), "repos", "acme", "app", "_manifests", "sha256", strings.TrimPrefix(sha256Digest(forged), "sha256:"))); !os.IsNotExist(err) {
			t.Errorf("the forged artifact is in storage (%v)", err)
		}
	})

	t.Run("a signed manifest re-PUT by digest as another media type is DENIED, and its tag keeps the signed type", func(t *testing.T) {
		img := newImage(t, "sigshape-untyped", newLayer(t, "sigshape/untyped.bin", 4<<10))
		var m manifest
		json.Unmarshal(img.Manifest, &m)
		m.MediaType = "" // an OCI manifest may leave it out
		img.Manifest, _ = json.Marshal(m)
		img.ManifestDigest = sha256Digest(img.Manifest)
		st.trustctl(t, "push", writeLayout(t, img), st.Addr+"/acme/app:v2", "--key", "alice")
		req := pusher.newRequest("PUT", "/v2/acme/app/manifests/"+img.ManifestDigest, bytes.NewReader(img.Manifest))
		req.Header.Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
		if _, body, err := pusher.do(req, http.StatusForbidden); err != nil || !strings.Contains(string(body), "is signed as "+mediaTypeOCIManifest) {
			t.Errorf("PUT as a Docker manifest: %v %s", err, body)
		}
		for _, ref := range []string{"v2", img.ManifestDigest} {
			_, h, err := reader.getManifest("acme/app", ref)
			if err != nil {
				t.Fatal(err)
			}
			if got := h.Get("Content-Type"); got != mediaTypeOCIManifest {
				t.Errorf("acme/app:%s is served as %s, want the signed %s", ref, got, mediaTypeOCIManifest)
			}
		}
	})

	t.Run("cosign's own artifacts, with its certificate and chain annotations and in Docker's media types, are admitted and verify", func(t *testing.T) {
		cosign := newTool(t, "cosign", "DOCKER_CONFIG="+st.Home, "COSIGN_PASSWORD="+cosignPassword, "COSIGN_YES=true")
		cosign.run(t, "generate-key-pair")
		if code, out := st.trustctlCode(t, []string{"COSIGN_PASSWORD=" + cosignPassword}, "keys", "import", "carol", "--cosign", filepath.Join(cosign.dir, "cosign.key")); code != 0 {
			t.Fatalf("trustctl keys import carol exited %d:\n%s", code, out)
		}
		st.trustctl(t, "org", "delegate", "acme/certified", "--key", "carol")
		img := newImage(t, "sigshape-cosign", newLayer(t, "sigshape/cosign.bin", 4<<10))
		layout := writeLayout(t, img)
		// The target only (trustctl writes no artifact for a manifest not
		// pushed), then the manifest, then cosign signs it.
		st.trustctl(t, "sign", st.Addr+"/acme/certified:v1", "--key", "carol", "--layout", layout)
		admin := st.admin()
		if err := pushBlobs(admin, "acme/certified", img); err != nil {
			t.Fatal(err)
		}
		waitPut(t, admin, "acme/certified", "v1", img.Manifest)
		pubPEM, err := os.ReadFile(filepath.Join(cosign.dir, "cosign.pub"))
		if err != nil {
			t.Fatal(err)
		}
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
		if err != nil {
			t.Fatal(err)
		}
		cert, chain := issueCertificate(t, pub)
		certPath, chainPath := filepath.Join(cosign.dir, "cert.pem"), filepath.Join(cosign.dir, "chain.pem")
		os.WriteFile(certPath, cert, 0o644)
		os.WriteFile(chainPath, chain, 0o644)
		ref := st.Addr + "/acme/certified@" + img.ManifestDigest
		cosign.run(t, "sign", "--key", filepath.Join(cosign.dir, "cosign.key"), "--certificate", certPath, "--certificate-chain", chainPath,
			"--tlog-upload=false", "--allow-insecure-registry", ref)
		raw, _, err := admin.getManifest("acme/certified", signer.CosignSignatureTag(digest.Digest(img.ManifestDigest)))
		if err != nil {
			t.Fatalf("the artifact cosign wrote is not served: %v", err)
		}
		var sig manifest
		json.Unmarshal(raw, &sig)
		if len(sig.Layers) != 1 || sig.Layers[0].Annotations[verify.CosignCertificateAnnotation] == "" || sig.Layers[0].Annotations[verify.CosignChainAnnotation] == "" {
			t.Fatalf("cosign wrote %s, want one layer with its certificate and chain annotations", raw)
		}
		if out, err := cosign.try("verify", "--key", filepath.Join(cosign.dir, "cosign.pub"), "--insecure-ignore-tlog", "--offline", "--allow-insecure-registry", ref); err != nil {
			t.Errorf("cosign verify: %v\n%s", err, out)
		}

		// And without optional annotations, in Docker's media types.
		v2 := newImage(t, "sigshape-cosign-docker", newLayer(t, "sigshape/cosign2.bin", 4<<10))
		st.trustctl(t, "sign", st.Addr+"/acme/certified:v2", "--key", "carol", "--layout", writeLayout(t, v2))
		if err := pushBlobs(admin, "acme/certified", v2); err != nil {
			t.Fatal(err)
		}
		waitPut(t, admin, "acme/certified", "v2", v2.Manifest)
		ref = st.Addr + "/acme/certified@" + v2.ManifestDigest
		docker := &tool{path: cosign.path, dir: cosign.dir, env: append(append([]string{}, cosign.env...), "COSIGN_DOCKER_MEDIA_TYPES=1")}
		docker.run(t, "sign", "--key", filepath.Join(cosign.dir, "cosign.key"), "--tlog-upload=false", "--allow-insecure-registry", ref)
		raw, h, err := admin.getManifest("acme/certified", signer.CosignSignatureTag(digest.Digest(v2.ManifestDigest)))
		if err != nil {
			t.Fatalf("the artifact cosign wrote in Docker's media types is not served: %v", err)
		}
		if h.Get("Content-Type") != "application/vnd.docker.distribution.manifest.v2+json" {
			t.Errorf("cosign's artifact is served as %s, want Docker's manifest type:\n%s", h.Get("Content-Type"), raw)
		}
		if out, err := cosign.try("verify", "--key", filepath.Join(cosign.dir, "cosign.pub"), "--insecure-ignore-tlog", "--offline", "--allow-insecure-registry", ref); err != nil {
			t.Errorf("cosign verify: %v\n%s", err, out)
		}
	})
}

// waitPut PUTs a manifest by tag until the registry has seen its target (it
// refreshes on a miss at most once a second).
func waitPut(t *testing.T, rc *regClient, repo, tag string, body []byte) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		req := rc.newRequest("PUT", "/v2/"+repo+"/manifests/"+tag, bytes.NewReader(body))
		req.Header.Set("Content-Type", mediaTypeOCIManifest)
		resp, out, err := rc.do(req, http.StatusCreated, http.StatusForbidden)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusCreated {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("PUT %s:%s still refused 15s after its target was signed: %s", repo, tag, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// issueCertificate issues a code-signing certificate for pub from a throwaway
// CA (as a PKI would for a key held in hardware): the certificate and the CA's
// chain, in PEM.
func issueCertificate(t *testing.T, pub any) (cert, chain []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e test CA, never trusted"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "e2e signer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, EmailAddresses: []string{"signer@example.com"}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}
