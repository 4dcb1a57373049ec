package notation

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-core-go/signature/cose"
	"github.com/notaryproject/notation-core-go/signature/jws"
	corex509 "github.com/notaryproject/notation-core-go/x509"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/signet-oss/signet/client/oci"
	"github.com/signet-oss/signet/signer"
)

// ArtifactType is the artifact type of a notation signature manifest.
const ArtifactType = "application/vnd.cncf.notary.signature"

// maxEnvelope bounds the envelope blob read from a registry: notation's own
// envelopes are a few kilobytes.
const maxEnvelope = 1 << 20

// KeyID is the TUF key ID of a certificate's public key, the ID the trust
// graph delegates keys by.
func KeyID(cert *x509.Certificate) (string, error) {
	k, err := metadata.KeyFromPublicKey(cert.PublicKey)
	if err != nil {
		return "", err
	}
	return k.ID()
}

// Trusted is the certificate of one delegated key, and where it came from.
type Trusted struct {
	KeyID       string
	Certificate *x509.Certificate
	// From says where it was read: "key store (NAME)" or "registry
	// (REPO@DIGEST)".
	From string
}

// Collector finds the certificates of a repository's delegated keys: first in
// the local key store, then, for keys whose holder is someone else, in that
// signer's notation signatures in the registry.
type Collector struct {
	// KeyDir is the local key store's directory, and Local its keys
	// (KeyStore.List): their certificates are read from KeyDir.
	KeyDir string
	Local  []signer.KeyInfo
	// Now is the clock certificates are checked with; nil means time.Now.
	Now func() time.Time
	// MaxSubjects bounds how many of a repository's signed manifests are
	// searched for notation signatures; 0 means 64.
	MaxSubjects int
}

// Collect returns a certificate for each key of delegated (TUF key IDs) it
// can find, sorted by key ID, and the IDs it found none for. A certificate is
// taken only if it is a self-signed, non-CA code-signing certificate whose
// public key's TUF key ID is delegated: what it says of issuer or subject is
// never read, and one read from the registry is taken only from an envelope
// whose signature it verifies. repo may be nil (no registry search).
func (c *Collector) Collect(ctx context.Context, delegated []string, repo *oci.Repository, subjects []digest.Digest) ([]Trusted, []string, error) {
	want := map[string]bool{}
	for _, id := range delegated {
		want[id] = true
	}
	found := map[string]Trusted{}
	take := func(cert *x509.Certificate, from string) {
		id, err := KeyID(cert)
		if err != nil || !want[id] {
			return
		}
		if _, ok := found[id]; ok {
			return
		}
		if c.checkCertificate(cert) != nil {
			return
		}
		found[id] = Trusted{KeyID: id, Certificate: cert, From: from}
	}
	for _, info := range c.Local {
		if !want[info.ID] {
			continue
		}
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(info.PublicPEM)
		if err != nil {
			continue
		}
		cert, ok, err := ReadCertificate(c.KeyDir, info.Name, pub)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			take(cert, "key store ("+info.Name+")")
		}
	}
	max := c.MaxSubjects
	if max <= 0 {
		max = 64
	}
	for i, subject := range subjects {
		if repo == nil || len(found) == len(want) || i == max {
			break
		}
		certs, err := signatureCertificates(ctx, repo, subject)
		if err != nil {
			return nil, nil, err
		}
		for _, sc := range certs {
			take(sc.cert, "registry ("+repo.Name+"@"+sc.manifest.String()+")")
		}
	}
	var out []Trusted
	var missing []string
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range want {
			if !yield(id) {
				return
			}
		}
	}) {
		if t, ok := found[id]; ok {
			out = append(out, t)
		} else {
			missing = append(missing, id)
		}
	}
	return out, missing, nil
}

// checkCertificate refuses what notation must not be given to trust: a CA
// certificate (notation would then trust chains it issued, for keys the trust
// graph never delegated) or a certificate notation would not accept as a
// self-signed signing certificate, or one expired.
func (c *Collector) checkCertificate(cert *x509.Certificate) error {
	if cert.IsCA {
		return errors.New("a CA certificate")
	}
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	return corex509.ValidateCodeSigningCertChain([]*x509.Certificate{cert}, &now)
}

type signedCert struct {
	cert     *x509.Certificate
	manifest digest.Digest
}

// signatureCertificates reads the leaf certificates of subject's notation
// signatures in repo, each from an envelope that verifies with it. A signature
// that cannot be read or does not verify is skipped: it is someone else's
// problem, and nothing here trusts it.
func signatureCertificates(ctx context.Context, repo *oci.Repository, subject digest.Digest) ([]signedCert, error) {
	refs, err := referrers(ctx, repo, subject, ArtifactType)
	if err != nil {
		return nil, fmt.Errorf("notation signatures of %s@%s: %w", repo.Name, subject, err)
	}
	var out []signedCert
	for _, d := range refs {
		raw, err := repo.Manifest(ctx, d)
		if err != nil {
			continue
		}
		var m ocispec.Manifest
		if json.Unmarshal(raw, &m) != nil || len(m.Layers) != 1 || m.Subject == nil || m.Subject.Digest != subject {
			continue
		}
		l := m.Layers[0]
		if l.MediaType != jws.MediaTypeEnvelope && l.MediaType != cose.MediaTypeEnvelope || l.Size > maxEnvelope {
			continue
		}
		rc, err := repo.Blob(ctx, l)
		if err != nil {
			continue
		}
		env, err := io.ReadAll(io.LimitReader(rc, maxEnvelope))
		rc.Close()
		if err != nil {
			continue
		}
		e, err := signature.ParseEnvelope(l.MediaType, env)
		if err != nil {
			continue
		}
		content, err := e.Verify()
		if err != nil || len(content.SignerInfo.CertificateChain) != 1 {
			continue
		}
		out = append(out, signedCert{cert: content.SignerInfo.CertificateChain[0], manifest: d.Digest})
	}
	return out, nil
}

// referrers lists the manifests that refer to subject with artifactType ("":
// any): through the registry's referrers API, or, where it has none, from the
// index clients keep under the referrers tag "<alg>-<hex>" instead (notation
// writes that one by default). The descriptors are the registry's word: the
// caller checks each manifest it reads.
func referrers(ctx context.Context, repo *oci.Repository, subject digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	all, err := repo.Referrers(ctx, subject)
	if errors.Is(err, oci.ErrNoReferrersAPI) {
		raw, _, terr := repo.GetManifest(ctx, subject.Algorithm().String()+"-"+subject.Encoded(), oci.MaxManifest)
		if errors.Is(terr, oci.ErrNotFound) {
			return nil, nil
		}
		if terr != nil {
			return nil, terr
		}
		var ix ocispec.Index
		if err := json.Unmarshal(raw, &ix); err != nil {
			return nil, fmt.Errorf("the referrers tag of %s@%s: %w", repo.Name, subject, err)
		}
		all, err = ix.Manifests, nil
	}
	if err != nil {
		return nil, err
	}
	var out []ocispec.Descriptor
	for _, d := range all {
		if artifactType == "" || d.ArtifactType == artifactType {
			out = append(out, d)
		}
	}
	return out, nil
}

// StoreName is the name of the notation trust store trustctl writes for a
// registry scope (host/repo): readable, and unique by a hash of the scope,
// within notation's [a-zA-Z0-9_.-]+.
func StoreName(scope string) string {
	sum := sha256.Sum256([]byte(scope))
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, scope)
	return "signet_" + safe + "_" + hex.EncodeToString(sum[:4])
}

// storeDir is the directory of the named "ca" trust store in configDir.
func storeDir(configDir, name string) string {
	return filepath.Join(configDir, "truststore", "x509", "ca", name)
}

// writeStore replaces the named trust store with exactly certs, each as
// <TUF key ID>.crt: a key no longer delegated leaves with its certificate.
// The new store is written aside and renamed into place.
func writeStore(configDir, name string, certs []Trusted) error {
	dir := storeDir(configDir, name)
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, t := range certs {
		b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: t.Certificate.Raw})
		if err := os.WriteFile(filepath.Join(tmp, t.KeyID+".crt"), b, 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	old := tmp + ".old"
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return os.RemoveAll(old)
}
