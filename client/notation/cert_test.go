package notation_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corex509 "github.com/notaryproject/notation-core-go/x509"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-oss/signet/client/notation"
	"github.com/signet-oss/signet/signer"
)

func TestCertificateIsWhatNotationTakesAsASigningCertificate(t *testing.T) {
	t.Parallel()
	key, err := signer.NewKey("alice", signer.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	cert, err := notation.NewCertificate(key, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"it is self-signed by the key", cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil && bytes.Equal(cert.RawIssuer, cert.RawSubject)},
		{"it certifies the key", cryptoutils.EqualKeys(cert.PublicKey, key.Signer.Public()) == nil},
		{"it is not a CA", cert.BasicConstraintsValid && !cert.IsCA},
		{"its key usage is digitalSignature alone", cert.KeyUsage == x509.KeyUsageDigitalSignature},
		{"its extended key usage is codeSigning alone", len(cert.ExtKeyUsage) == 1 && cert.ExtKeyUsage[0] == x509.ExtKeyUsageCodeSigning},
		{"its subject is CN=the key's name", cert.Subject.String() == "CN=alice"},
		{"it is valid from now, less a little skew", !cert.NotBefore.After(now) && now.Sub(cert.NotBefore) <= 10*time.Minute},
		{"its validity is long but finite", cert.NotAfter.Sub(cert.NotBefore) == notation.CertificateValidity && notation.CertificateValidity >= 5*365*24*time.Hour},
	} {
		if !c.ok {
			t.Errorf("%s: not so (subject %s, key usage %v, extended %v, CA %v, valid %s to %s)", c.name, cert.Subject, cert.KeyUsage, cert.ExtKeyUsage, cert.IsCA, cert.NotBefore, cert.NotAfter)
		}
	}
	// notation's own check of a self-signed signing certificate (its chain
	// of one) passes while it is valid, and fails once it has expired: the
	// certificate's validity is a second expiry.
	if err := corex509.ValidateCodeSigningCertChain([]*x509.Certificate{cert}, &now); err != nil {
		t.Errorf("notation refuses the certificate: %v", err)
	}
	later := cert.NotAfter.Add(time.Hour)
	if err := corex509.ValidateCodeSigningCertChain([]*x509.Certificate{cert}, &later); err == nil {
		t.Error("notation accepts the certificate after it expired")
	}
}

func TestKeysNotationCannotUseAreRefusedSayingWhy(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		alg  signer.Algorithm
		want string
	}{
		{signer.Ed25519, "Ed25519, and notation signs only with RSA and ECDSA keys"},
		{signer.RSAPSS3072, "RSASSA-PSS over SHA-384"},
	} {
		t.Run(string(c.alg), func(t *testing.T) {
			t.Parallel()
			key, err := signer.NewKey("k", c.alg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = notation.NewCertificate(key, time.Now())
			if !errors.Is(err, notation.ErrUnsupportedKey) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("NewCertificate of a %s key: %v, want ErrUnsupportedKey saying %q", c.alg, err, c.want)
			}
			if _, err := notation.Certificate(context.Background(), t.TempDir(), key, time.Now(), false); !errors.Is(err, notation.ErrUnsupportedKey) {
				t.Errorf("Certificate of a %s key: %v, want ErrUnsupportedKey", c.alg, err)
			}
		})
	}
}

func TestCertificateIsMadeOnceAndKeptWithTheKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	key, err := signer.NewKey("alice", "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	first, err := notation.Certificate(ctx, dir, key, now, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("it is kept next to the key, readable by notation's tools as PEM", func(t *testing.T) {
		certs, err := corex509.ReadCertificateFile(filepath.Join(dir, "alice.crt"))
		if err != nil || len(certs) != 1 || !certs[0].Equal(first) {
			t.Fatalf("alice.crt holds %v (%v), want the certificate made", certs, err)
		}
	})
	t.Run("asking again gives the same certificate", func(t *testing.T) {
		again, err := notation.Certificate(ctx, dir, key, now.Add(time.Hour), false)
		if err != nil || !again.Equal(first) {
			t.Fatalf("second Certificate: %v, a new certificate: %v", err, !again.Equal(first))
		}
	})
	t.Run("renew makes a new one, kept from then on", func(t *testing.T) {
		renewed, err := notation.Certificate(ctx, dir, key, now, true)
		if err != nil || renewed.Equal(first) {
			t.Fatalf("renew: %v, same certificate: %v", err, renewed.Equal(first))
		}
		if kept, ok, err := notation.ReadCertificate(dir, "alice", key.Signer.Public()); err != nil || !ok || !kept.Equal(renewed) {
			t.Fatalf("kept %v %v %v, want the renewed one", kept, ok, err)
		}
		first = renewed
	})
	t.Run("an expired one is replaced", func(t *testing.T) {
		fresh, err := notation.Certificate(ctx, dir, key, first.NotAfter.Add(time.Minute), false)
		if err != nil || fresh.Equal(first) || !fresh.NotAfter.After(first.NotAfter) {
			t.Fatalf("after expiry: %v, replaced: %v", err, !fresh.Equal(first))
		}
	})
	t.Run("a key made again under the same name gets its own certificate", func(t *testing.T) {
		other, err := signer.NewKey("alice", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := notation.ReadCertificate(dir, "alice", other.Signer.Public()); ok {
			t.Fatal("the kept certificate is taken as the new key's")
		}
		c, err := notation.Certificate(ctx, dir, other, time.Now(), false)
		if err != nil || cryptoutils.EqualKeys(c.PublicKey, other.Signer.Public()) != nil {
			t.Fatalf("certificate of the new key: %v", err)
		}
	})
}
