package signer_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-oss/signet/signer"
)

func TestParsePKCS11URI(t *testing.T) {
	const module = "?module-path=/usr/lib/softhsm/libsofthsm2.so"
	t.Run("the attributes are read, percent-decoded, and String drops pin-value", func(t *testing.T) {
		u, err := signer.ParsePKCS11URI("pkcs11:token=My%20Token;object=release;id=%01%02" + module + "&pin-value=s3cret-1234")
		if err != nil {
			t.Fatal(err)
		}
		if u.Token() != "My Token" || u.Object() != "release" || string(u.ID()) != "\x01\x02" || u.ModulePath() != "/usr/lib/softhsm/libsofthsm2.so" {
			t.Fatalf("parsed token %q object %q id %x module %q", u.Token(), u.Object(), u.ID(), u.ModulePath())
		}
		s := u.String()
		if strings.Contains(s, "s3cret") || strings.Contains(s, "pin-value") {
			t.Errorf("String() = %s keeps the PIN", s)
		}
		if want := "pkcs11:token=My%20Token;object=release;id=%01%02" + module; s != want {
			t.Errorf("String() = %s, want %s", s, want)
		}
		again, err := signer.ParsePKCS11URI(s)
		if err != nil || again.String() != s {
			t.Errorf("String() does not parse back to itself: %v", err)
		}
		if p, err := u.PIN(); err != nil || string(p) != "s3cret-1234" {
			t.Errorf("PIN() = %q, %v", p, err)
		}
	})
	t.Run("the PIN comes from pin-source, else the environment", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "pin")
		if err := os.WriteFile(f, []byte("from-file\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		u, err := signer.ParsePKCS11URI("pkcs11:token=t" + module + "&pin-source=file:" + f)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := u.PIN(); err != nil || string(p) != "from-file" {
			t.Errorf("PIN() from pin-source = %q, %v", p, err)
		}
		if !strings.Contains(u.String(), "pin-source=file:") {
			t.Errorf("String() = %s drops pin-source, which names a file, not a PIN", u)
		}
		t.Setenv(signer.PKCS11PINEnv, "from-env")
		u, _ = signer.ParsePKCS11URI("pkcs11:token=t" + module)
		if p, err := u.PIN(); err != nil || string(p) != "from-env" {
			t.Errorf("PIN() from %s = %q, %v", signer.PKCS11PINEnv, p, err)
		}
	})
	for uri, want := range map[string]string{
		"token=t" + module:                                      `does not start with "pkcs11:"`,
		"pkcs11:token=t":                                        "no module-path",
		"pkcs11:object=k" + module:                              "no token",
		"pkcs11:slot-id=x" + module:                             "slot-id",
		"pkcs11:token=t" + module + "&pinvalue":                 "pin...",
		"pkcs11:token=t;token=u" + module:                       "given twice",
		"pkcs11:token=t" + module + "&pin-value=1&pin-source=f": "both pin-value and pin-source",
	} {
		_, err := signer.ParsePKCS11URI(uri)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePKCS11URI(%s) = %v, want an error saying %q", uri, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "pinvalue") {
			t.Errorf("the error quotes what may be a PIN: %v", err)
		}
	}
}
